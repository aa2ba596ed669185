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
    if getattr(connection, "session_id", None) is None and stateless_http():
        return None  # its connection lives for this one request: nothing could list it later
    state = getattr(connection, "state", None)
    if not isinstance(state, dict):
        return None
    tag = state.setdefault("mcp_tasks_listing", f"connection:{secrets.token_hex(16)}")
    return str(tag)


def stateless_http() -> bool:
    """Whether this request came over streamable HTTP without a session (``--stateless``,
    or a 2026-07-28 request, which never has one)."""
    return sdk.current_transport() == "streamable-http"


def owner_of(ctx: ServerRequestContext[Any, Any] | None) -> str | None:
    """Who a task belongs to: the authenticated principal, else the legacy HTTP session.

    Without either (stdio, in-memory, unauthenticated 2026 traffic, unauthenticated
    2025-11-25 traffic on a stateless HTTP server) there is no context to bind a task to: it
    is bound to no one, and its 128-bit random id is what keeps it private (the
    2025-11-25 spec's rule when context-binding is unavailable; the README says so).
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
