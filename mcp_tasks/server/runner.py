"""Runs a task's tool on a docket worker, in this process or any other that loaded the server.

The docket stores only the tool's name and its arguments (JSON). The worker looks the tool up
on its own copy of the server and runs it with a :class:`WorkerContext`, whose progress goes
to the docket (and from there to every client watching, on any replica).
"""

from __future__ import annotations

from typing import Any

import mcp_types
import pydantic_core
from fastmcp import Context, FastMCP
from fastmcp.exceptions import FastMCPError
from fastmcp.server.elicitation import (
    CancelledElicitation,
    DeclinedElicitation,
    handle_elicit_accept,
    parse_elicit_response_type,
)
from fastmcp.tools.base import ToolResult
from pydantic import ValidationError

from ..engine import current_task

TOOL_FUNCTION = "mcp-tasks:call-tool"
"""The docket function every task runs: ``(tool name, arguments) -> CallToolResult``."""


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
    server: FastMCP, name: str, arguments: dict[str, Any], *, max_result_bytes: int | None = None
) -> dict[str, Any]:
    """Run one tool and answer its CallToolResult as a wire dict. A tool that raises gives an
    ``isError`` result, exactly as the same call without a task would; so does a result
    larger than ``max_result_bytes`` (JSON), which is not stored."""
    tool = await server.get_tool(name)
    if tool is None:
        return error_result(f"Unknown tool: {name}")
    async with WorkerContext(fastmcp=server):
        try:
            result = await tool.run(arguments)
        except (FastMCPError, ValidationError) as exc:
            return error_result(str(exc))
        except Exception as exc:
            # Word it as fastmcp words the same failure of a call made without a task.
            if getattr(server, "_mask_error_details", False):
                return error_result(f"Error calling tool {name!r}")
            return error_result(f"Error calling tool {name!r}: {exc}")
    wire = to_wire(result)
    if max_result_bytes is not None:
        size = len(pydantic_core.to_json(wire))
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
    return {"content": [{"type": "text", "text": message}], "isError": True}
