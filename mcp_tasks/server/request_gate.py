"""The gate every task request passes on the low-level server, in both dialects.

It runs before the SDK validates a request's params and before fastmcp's own middleware:

- ``initialize``: advertises ``capabilities.tasks`` to a 2025-11-25 connection.
- ``tasks/*``: judged by dialect first (-32601 for a method the connection's protocol
  version does not serve, -32021 for a 2026 caller that did not opt in), however malformed
  the rest of the request.
- 2025-11-25 ``tools/call`` with ``params.task``: fastmcp drops ``params.task`` before its
  interceptors run, and mcp's runner only accepts a ``CallToolResult`` for ``tools/call`` at
  this version, but this chain owns the final result. So the gate notes the request's
  ``task`` in a context variable and calls on: the call goes through fastmcp's own
  middleware chain (its policies, rate limits, logging, argument rewriting apply exactly as
  to any call), and :meth:`Tasks.intercept_tool_call`, the last gate before the tool body,
  creates the task from the note instead of running the tool. The gate then answers the
  nested ``{"task": {...}}`` for it and starts the legacy push relay.
- Every request that touches the task store (tasks/*, listens, task calls): engine and
  store exceptions become JSON-RPC errors (:func:`.errors.translated`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from fastmcp import FastMCP
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, METHOD_NOT_FOUND

from .. import sdk
from ..protocol import EXTENSION_ID, LEGACY_VERSION, legacy
from ..protocol.view import TaskView
from .config import PollPlan, TasksConfig
from .errors import missing_capability, shown, translated
from .handlers import read_opt_in
from .identity import listing_of, owner_of

MARK = "mcp_tasks_request_gate"


@dataclass
class TaskRequest:
    """A 2025-11-25 ``tools/call`` that asked to run as a task, on its way through fastmcp."""

    tool: str
    ttl_ms: int
    poll: PollPlan
    owner: str | None
    listing: str | None
    view: TaskView | None = None
    """Set by the interceptor once the task exists."""


pending_task: ContextVar[TaskRequest | None] = ContextVar("mcp_tasks_pending", default=None)


def install(
    server: FastMCP,
    config: TasksConfig,
    served: Mapping[str, Collection[str] | None],
    follow: Callable[[str, ServerRequestContext[Any, Any]], None],
) -> None:
    """Add the gate to the server's low-level middleware chain, once. ``served`` maps each
    tasks/* method to the protocol versions that have it; ``follow`` starts the push relay
    of a 2025-11-25 task for the connection that created it."""
    lowlevel = sdk.low_level_server(server)
    if any(getattr(m, MARK, False) for m in lowlevel.middleware):
        return

    async def middleware(ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        if not _about_tasks(ctx, served):
            return await dispatch(ctx, call_next)  # not ours: its errors are not the store's
        with translated(ctx.method):
            return await dispatch(ctx, call_next)

    async def dispatch(ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        if ctx.method == "initialize":
            return _with_capabilities(await call_next(ctx))
        if ctx.method in served:
            _check_dialect(ctx, served[ctx.method])
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
                raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {shown(tool_name)}")
            if mode == "forbidden":
                raise MCPError(
                    code=METHOD_NOT_FOUND,
                    message=f"Tool {tool_name!r} does not support task augmentation",
                )
            if not isinstance(task, dict):
                raise MCPError(code=INVALID_PARAMS, message="params.task must be an object")
            ttl = task.get("ttl")  # the schema's integer; the SDK would take "10" or 2.0
            if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int)):
                raise MCPError(code=INVALID_PARAMS, message="params.task.ttl must be an integer")
            arguments = params.get("arguments") or {}
            if not isinstance(arguments, dict):
                raise MCPError(code=INVALID_PARAMS, message="params.arguments must be an object")
            request = TaskRequest(
                tool_name,
                ttl_ms=config.actual_ttl_ms(task.get("ttl")),
                poll=config.poll_for(tool),
                owner=owner_of(ctx),
                listing=listing_of(ctx),
            )
            marker = pending_task.set(request)
            try:
                answer = await call_next(ctx)
            finally:
                pending_task.reset(marker)
            if request.view is None:
                return answer  # fastmcp middleware answered the call itself: no task
            follow(request.view.task_id, ctx)
            return legacy.create_result(request.view)
        return await call_next(ctx)

    setattr(middleware, MARK, True)
    lowlevel.middleware.append(middleware)


def _about_tasks(ctx: ServerRequestContext[Any, Any], served: Collection[str]) -> bool:
    """Whether a request touches the task store: tasks/*, a listen, a task-augmented call."""
    if ctx.method in served or ctx.method == "subscriptions/listen":
        return True
    if ctx.method != "tools/call":
        return False
    if ctx.protocol_version == LEGACY_VERSION:
        return isinstance((ctx.params or {}).get("task"), dict)
    return read_opt_in(ctx) is not None


def _check_dialect(ctx: ServerRequestContext[Any, Any], versions: Collection[str] | None) -> None:
    """Judge a tasks/* request by its dialect before the SDK validates its params: a method
    the dialect does not serve is -32601, and a 2026 caller that did not opt in is -32021,
    however malformed the rest of the request (the SDK would answer -32602 first)."""
    if versions is not None and ctx.protocol_version not in versions:
        raise MCPError(
            code=METHOD_NOT_FOUND,
            message=f"Method {ctx.method!r} is not available at protocol version "
            f"{ctx.protocol_version!r}.",
        )
    if ctx.protocol_version != LEGACY_VERSION and read_opt_in(ctx) is None:
        raise missing_capability(f"{ctx.method} needs the {EXTENSION_ID} extension")


def _with_capabilities(result: Any) -> Any:
    """``capabilities.tasks``, for a connection that negotiated 2025-11-25 (the only
    handshake version with tasks)."""
    if isinstance(result, dict) and result.get("protocolVersion") == LEGACY_VERSION:
        capabilities = dict(result.get("capabilities") or {})
        capabilities["tasks"] = legacy.CAPABILITIES
        return {**result, "capabilities": capabilities}
    return result
