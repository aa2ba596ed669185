"""Runs a task's tool on a docket worker, in this process or any other that loaded the server.

The docket stores the tool's name, its arguments and who called it (JSON; sealed when
encryption is on). The worker looks the tool up on its own copy of the server — as the caller,
so ``auth=`` checks and ``get_access_token()`` see the caller's identity and scopes — and runs
it with a :class:`WorkerContext`, whose progress goes to the docket (and from there to every
client watching, on any replica).

The caller's bearer token itself is never stored: only what was derived from it when the task
was created (client id, scopes, subject, claims, expiry). Authorisation is decided at creation
time, and the worker re-checks the tool's own ``auth=`` against that snapshot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import mcp_types
from fastmcp import Context, FastMCP
from fastmcp.exceptions import FastMCPError
from fastmcp.server.auth import AccessToken
from fastmcp.server.context import reset_transport, set_transport
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.elicitation import (
    CancelledElicitation,
    DeclinedElicitation,
    handle_elicit_accept,
    parse_elicit_response_type,
)
from fastmcp.tools.base import ToolResult
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from pydantic import ValidationError

from .. import sdk
from ..engine import current_task
from ..engine.serialization import to_json_text

TOOL_FUNCTION = "mcp-tasks:call-tool"
"""The docket function every task runs: ``(tool name, arguments, caller) -> CallToolResult``."""

REDACTED = "(not stored)"
"""What a restored access token holds in place of the bearer token, which is never stored."""


def caller_snapshot() -> dict[str, Any]:
    """Who is calling, as the worker needs it later: the transport (stdio is trusted by
    fastmcp's component auth) and the access token's details, without the token itself."""
    token = get_access_token()
    return {
        "transport": sdk.current_transport(),
        "token": token.model_dump(mode="json", exclude={"token"}) if token else None,
    }


@contextlib.contextmanager
def acting_as(caller: dict[str, Any] | None) -> Iterator[None]:
    """Run the block with the caller's transport and identity restored (fastmcp reads both
    from context variables: the transport's and the SDK's ``auth_context_var``)."""
    if not caller:
        yield
        return
    details = caller.get("token")
    user = AuthenticatedUser(AccessToken(token=REDACTED, **details)) if details else None
    transport = set_transport(caller.get("transport"))  # type: ignore[arg-type]
    auth = auth_context_var.set(user)
    try:
        yield
    finally:
        auth_context_var.reset(auth)
        reset_transport(transport)


class WorkerContext(Context):
    """The ``Context`` a tool sees when it runs as a task.

    fastmcp's own progress path sends a notification tied to the original request, which has
    long been answered by the time a task runs; ours records progress on the docket instead.
    """

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        await current_task().report_progress(progress, total, message)

    async def elicit(
        self,
        message: str,
        response_type: Any,
        *,
        response_title: str | None = None,
        response_description: str | None = None,
    ) -> Any:
        """Ask the client for input from inside a task: the task shows ``input_required``
        with an ``elicitation/create`` input request until a client answers it (2026:
        ``tasks/update``; 2025-11-25: the server elicits over ``tasks/result``)."""
        config = parse_elicit_response_type(
            response_type, response_title=response_title, response_description=response_description
        )
        request = {
            "method": "elicitation/create",
            "params": {"mode": "form", "message": message, "requestedSchema": config.schema},
        }
        answer = await current_task().ask(request)
        action = answer.get("action") if isinstance(answer, dict) else None
        if action == "accept":
            return handle_elicit_accept(config, answer.get("content"))
        if action == "decline":
            return DeclinedElicitation()
        return CancelledElicitation()


async def call_tool(
    server: FastMCP,
    name: str,
    arguments: dict[str, Any],
    caller: dict[str, Any] | None = None,
    *,
    max_result_bytes: int | None = None,
) -> dict[str, Any]:
    """Run one tool and answer its CallToolResult as a wire dict. A tool that raises gives an
    ``isError`` result, exactly as the same call without a task would; so does a result
    larger than ``max_result_bytes`` (JSON), which is not stored."""
    with acting_as(caller):
        result = await _call_as_caller(server, name, arguments, max_result_bytes)
    if result.get("isError"):
        with contextlib.suppress(LookupError):  # outside a task: nothing to mark
            current_task().mark_errored()  # the docket's statistics count it as failed
    return result


async def _call_as_caller(
    server: FastMCP, name: str, arguments: dict[str, Any], max_result_bytes: int | None
) -> dict[str, Any]:
    tool = await server.get_tool(name)  # None as well when the caller may not use it
    if tool is None:
        return error_result(f"Unknown tool: {name}")
    async with WorkerContext(fastmcp=server):
        try:
            result = await tool.run(arguments)
        except (FastMCPError, ValidationError) as exc:
            return error_result(str(exc))
        except Exception as exc:
            # Word it as fastmcp words the same failure of a call made without a task.
            if sdk.masks_error_details(server):
                return error_result(f"Error calling tool {name!r}")
            return error_result(f"Error calling tool {name!r}: {exc}")
    wire = to_wire(result)
    if max_result_bytes is not None:
        size = len(to_json_text(wire).encode())
        if size > max_result_bytes:
            return error_result(
                f"The result of tool {name!r} is too large: {size} bytes "
                f"(the maximum is {max_result_bytes})"
            )
    return wire


def to_wire(result: ToolResult) -> dict[str, Any]:
    converted = result.to_mcp_result()
    if isinstance(converted, mcp_types.CallToolResult):
        call = converted
    elif isinstance(converted, tuple):
        content, structured = converted
        call = mcp_types.CallToolResult(content=list(content), structured_content=structured)
    else:
        call = mcp_types.CallToolResult(content=list(converted))
    return call.model_dump(by_alias=True, mode="json", exclude_none=True)


def error_result(message: str) -> dict[str, Any]:
    """A CallToolResult saying the call failed, as ``to_wire`` would write it (the 2026-07-28
    ``CallToolResult`` requires ``resultType``; the 2025-11-25 answer drops it)."""
    return {
        "content": [{"type": "text", "text": message}],
        "isError": True,
        "resultType": "complete",
    }
