"""Who a task belongs to."""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastmcp.server.dependencies import get_access_token
from mcp.server.auth.provider import principal_components
from mcp.server.context import ServerRequestContext

from .. import sdk


def listing_of(ctx: ServerRequestContext[Any, Any] | None) -> str | None:
    """Whose task list (2025-11-25 ``tasks/list``) a new task joins: the owner's, or, for a
    caller with no identity, the connection's own — so a list never shows another's tasks."""
    owner = owner_of(ctx)
    if owner is not None or ctx is None:
        return owner
    connection = sdk.connection_of(ctx.session)
    state = getattr(connection, "state", None)
    if not isinstance(state, dict):
        return None
    tag = state.setdefault("mcp_tasks_listing", f"connection:{secrets.token_hex(16)}")
    return str(tag)


def owner_of(ctx: ServerRequestContext[Any, Any] | None) -> str | None:
    """Who a task belongs to: the authenticated principal, else the legacy HTTP session.

    Without either (stdio, in-memory, unauthenticated 2026 traffic) a task is bound to no
    one, and its 128-bit random id is what keeps it private.
    """
    token = get_access_token()
    if token is not None:
        # The SDK's own notion of a principal: (client id, issuer, subject).
        return "principal:" + json.dumps(principal_components(token))
    if ctx is not None:
        connection = sdk.connection_of(ctx.session)
        session_id = getattr(connection, "session_id", None)
        if session_id:
            return f"session:{session_id}"
    return None
