"""Protocol 2025-11-25 (SEP-1686) on the low-level server.

fastmcp drops ``params.task`` before its interceptors run, and mcp's runner only accepts a
``CallToolResult`` for ``tools/call`` at this version — but the low-level middleware chain
owns the final result. So this middleware advertises ``capabilities.tasks`` in
``initialize``, and for a task-augmented ``tools/call`` it notes the request's ``task`` in a
context variable and calls on: the call goes through fastmcp's own middleware chain (its
policies, rate limits, logging, argument rewriting apply exactly as to any call), and
:meth:`Tasks.intercept_tool_call`, the last gate before the tool body, creates the task from
the note instead of running the tool. The middleware then answers the nested
``{"task": {...}}`` for it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastmcp import FastMCP
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND
from redis.exceptions import RedisError

from .. import sdk
from ..engine import TaskNotFound
from ..engine.codec import CipherError
from ..protocol import EXTENSION_ID, LEGACY_VERSION, legacy
from ..protocol.view import TaskView
from .identity import listing_of, owner_of

if TYPE_CHECKING:
    from .extension import Tasks

_MARK = "_mcp_tasks_legacy_middleware"
STORE_UNAVAILABLE = "The task store is unavailable right now; try again shortly"
STORE_ERRORS: tuple[type[BaseException], ...] = (RedisError,)
"""What the docket raises when Redis is unreachable, loading or failing (redis-py wraps
socket errors in its own ConnectionError and TimeoutError)."""
log = logging.getLogger("mcp_tasks.server")


@dataclass
class TaskRequest:
    """A 2025-11-25 ``tools/call`` that asked to run as a task, on its way through fastmcp."""

    tool: str
    ttl_ms: int
    poll_ms: int
    owner: str | None
    listing: str | None
    view: TaskView | None = None
    """Set by the interceptor once the task exists."""


pending_task: ContextVar[TaskRequest | None] = ContextVar("mcp_tasks_pending", default=None)


def install(server: FastMCP, tasks: Tasks) -> None:
    """Add the middleware to the server's low-level middleware chain, once."""
    lowlevel = sdk.low_level_server(server)
    if any(getattr(m, _MARK, False) for m in lowlevel.middleware):
        return

    served = {binding.method: binding.protocol_versions for binding in tasks.methods()}

    async def middleware(ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        if not _about_tasks(ctx, served):
            return await dispatch(ctx, call_next)  # not ours: its errors are not the store's
        try:
            return await dispatch(ctx, call_next)
        except STORE_ERRORS as exc:
            # Unhandled, the SDK would send the exception's text (Redis host and port
            # included) as error code 0, and log a traceback per request during an outage.
            log.warning("%s: the task store is unavailable (%s)", ctx.method, type(exc).__name__)
            raise MCPError(code=INTERNAL_ERROR, message=STORE_UNAVAILABLE) from None
        except CipherError as exc:
            raise MCPError(code=INTERNAL_ERROR, message=str(exc)) from None
        except TaskNotFound as exc:
            # A task that expired while its request was being handled answers like an
            # unknown one; an engine exception never reaches the wire as code 0.
            from .extension import shown  # it imports this module

            task_id = str(exc.args[0]) if exc.args else ""
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown task: {shown(task_id)}") from None

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
                from .extension import shown  # it imports this module

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
                ttl_ms=tasks.actual_ttl_ms(task.get("ttl")),
                poll_ms=tasks.poll_ms_for(tool),
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
            tasks.follow_for_legacy_client(request.view.task_id, ctx)
            return legacy.create_result(request.view)
        return await call_next(ctx)

    setattr(middleware, _MARK, True)
    lowlevel.middleware.append(middleware)


def _about_tasks(ctx: ServerRequestContext[Any, Any], served: Collection[str]) -> bool:
    """Whether a request touches the task store: tasks/*, a listen, a task-augmented call."""
    if ctx.method in served or ctx.method == "subscriptions/listen":
        return True
    if ctx.method != "tools/call":
        return False
    if ctx.protocol_version == LEGACY_VERSION:
        return isinstance((ctx.params or {}).get("task"), dict)
    from .extension import read_opt_in  # it imports this module

    return read_opt_in(ctx) is not None


def _check_dialect(ctx: ServerRequestContext[Any, Any], versions: Collection[str] | None) -> None:
    """Judge a tasks/* request by its dialect before the SDK validates its params: a method
    the dialect does not serve is -32601, and a 2026 caller that did not opt in is -32021,
    however malformed the rest of the request (the SDK would answer -32602 first)."""
    from .extension import missing_capability, read_opt_in  # it imports this module

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
