"""Protocol 2025-11-25 (SEP-1686) on the low-level server.

fastmcp drops ``params.task`` before its interceptors run, and mcp's runner only accepts a
``CallToolResult`` for ``tools/call`` at this version — but a low-level middleware that
answers without calling on owns its result. So this middleware advertises
``capabilities.tasks`` in ``initialize`` and turns a task-augmented ``tools/call`` into a
task, answering the nested ``{"task": {...}}`` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastmcp import FastMCP
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, METHOD_NOT_FOUND

from ..protocol import LEGACY_VERSION, legacy
from .identity import listing_of, owner_of

if TYPE_CHECKING:
    from .extension import Tasks

_MARK = "_mcp_tasks_legacy_middleware"


def install(server: FastMCP, tasks: Tasks) -> None:
    """Add the middleware to the server's low-level middleware chain, once."""
    lowlevel = server._mcp_server
    if any(getattr(m, _MARK, False) for m in lowlevel.middleware):
        return

    async def middleware(ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        if ctx.method == "initialize":
            return _with_capabilities(await call_next(ctx))
        if ctx.method == "tools/call" and ctx.protocol_version == LEGACY_VERSION:
            params = dict(ctx.params or {})
            task = params.get("task")
            tool_name = params.get("name")
            if not isinstance(tool_name, str):
                return await call_next(ctx)
            tool = await server.get_tool(tool_name)
            mode = tool.task_config.mode if tool is not None else "forbidden"
            if task is None:
                if mode == "required":
                    raise MCPError(
                        code=METHOD_NOT_FOUND,
                        message=f"Tool {tool_name!r} must be called as a task",
                    )
                return await call_next(ctx)
            if tool is None:
                raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {tool_name}")
            if mode == "forbidden":
                raise MCPError(
                    code=METHOD_NOT_FOUND,
                    message=f"Tool {tool_name!r} does not support task augmentation",
                )
            if not isinstance(task, dict):
                raise MCPError(code=INVALID_PARAMS, message="params.task must be an object")
            arguments = params.get("arguments") or {}
            if not isinstance(arguments, dict):
                raise MCPError(code=INVALID_PARAMS, message="params.arguments must be an object")
            view = await tasks.create(
                tool_name,
                arguments,
                ttl_ms=tasks.actual_ttl_ms(task.get("ttl")),
                owner=owner_of(ctx),
                listing=listing_of(ctx),
                poll_ms=tasks.poll_ms_for(tool),
            )
            tasks.follow_for_legacy_client(view.task_id, ctx)
            return legacy.create_result(view)
        return await call_next(ctx)

    setattr(middleware, _MARK, True)
    lowlevel.middleware.append(middleware)


def _with_capabilities(result: Any) -> Any:
    if isinstance(result, dict):
        capabilities = dict(result.get("capabilities") or {})
        capabilities["tasks"] = legacy.CAPABILITIES
        return {**result, "capabilities": capabilities}
    return result
