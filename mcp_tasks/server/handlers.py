"""The tasks/* request handlers of both dialects, as plain functions of the task service.

Each answers in the dialect of the connection (``ctx.protocol_version``). They are bound as
fastmcp extension methods by :meth:`Tasks.methods`; errors come from :mod:`.errors`, and any
engine or store exception is translated by the request gate before it reaches the wire.
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import UTC, datetime
from typing import Any

import anyio
import mcp_types
from fastmcp.server.extensions import read_client_extension_settings
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_NAME_HEADER, decode_header_value
from mcp.shared.message import ServerMessageMetadata
from mcp_types import HEADER_MISMATCH, INVALID_PARAMS

from ..engine import IndexPosition, TaskNotFound
from ..engine.keys import is_task_key
from ..protocol import EXTENSION_ID, LEGACY_VERSION, RELATED_TASK_META, legacy, modern
from ..protocol.requests import ListParams, TaskIdParams, UpdateParams
from ..protocol.view import TaskView
from .errors import missing_capability, shown
from .identity import listing_of, owner_of
from .service import TaskService, view_of

Ctx = ServerRequestContext[Any, Any]
LIST_PAGE = 50
TERMINAL = ("completed", "failed", "cancelled")


async def get(service: TaskService, ctx: Ctx, params: TaskIdParams) -> Any:
    view = await service.load(params.task_id, caller(ctx, params.task_id))
    if view.status == "working" and service.config.settle > 0:
        view = await settled(service, view)
    if ctx.protocol_version == LEGACY_VERSION:
        return legacy.task_fields(view)
    return modern.detailed(view).wire()


async def settled(service: TaskService, view: TaskView) -> TaskView:
    """A task polled within its first second that is still working gets ``settle``
    (20 ms by default) to change status before the answer goes out: most quick tasks end
    in that time, so a polling client's first ``tasks/get`` already finds the result
    instead of sleeping its poll interval. Pushed, not polled; older tasks are answered
    at once."""
    age = (datetime.now(UTC) - view.created_at).total_seconds()
    if age > 1.0:
        return view
    with anyio.move_on_after(service.config.settle), contextlib.suppress(TaskNotFound):
        async for state in service.docket.watch(view.task_id):
            current = view_of(state)
            if current.status != "working":
                return current
    return view


async def cancel(service: TaskService, ctx: Ctx, params: TaskIdParams) -> Any:
    view = await service.load(params.task_id, caller(ctx, params.task_id))
    legacy_dialect = ctx.protocol_version == LEGACY_VERSION
    if legacy_dialect and view.status in TERMINAL:
        raise MCPError(
            code=INVALID_PARAMS, message=f"Task {params.task_id} is already {view.status}"
        )
    # The engine decides atomically: yes (the task will end cancelled, whatever its run
    # does meanwhile) or no (it had already ended).
    accepted = await service.docket.cancel(params.task_id)
    if legacy_dialect and not accepted:
        ended = await service.load(params.task_id, view.owner)
        raise MCPError(
            code=INVALID_PARAMS, message=f"Task {params.task_id} is already {ended.status}"
        )
    if not legacy_dialect:
        return {}
    # The legacy dialect answers with the task, cancelled before the reply: a running
    # task's worker stops it within milliseconds, so wait for that (briefly). A worker that
    # is gone records it only after redelivery; the accepted cancel decides the outcome
    # all the same (finish.lua), so the reply says so.
    with contextlib.suppress(TimeoutError):
        await service.docket.wait(params.task_id, timeout=5)
    ended = await service.load(params.task_id, view.owner)
    if ended.status not in TERMINAL:
        ended = dataclasses.replace(ended, status="cancelled", status_message=None)
    return legacy.task_fields(ended)


async def update(service: TaskService, ctx: Ctx, params: UpdateParams) -> Any:
    await service.load(params.task_id, caller(ctx, params.task_id))
    await service.docket.answer(params.task_id, params.input_responses)  # unknown: ignored
    return {}


async def result(service: TaskService, ctx: Ctx, params: TaskIdParams) -> Any:
    view = await service.load(params.task_id, caller(ctx, params.task_id))
    if view.status not in TERMINAL:
        view = await follow_to_the_end(service, ctx, view)
    if view.status == "completed":
        return legacy.payload(view)
    if view.status == "cancelled":
        raise MCPError(code=-32603, message=f"Task {view.task_id} was cancelled")
    error = view.error or {"code": -32603, "message": "the task failed"}
    raise MCPError(code=error["code"], message=error["message"])


async def follow_to_the_end(service: TaskService, ctx: Ctx, view: TaskView) -> TaskView:
    """Wait (pushed, not polled) until the task ends; when it asks for input, elicit it
    from the client on this tasks/result request's stream, with related-task meta."""
    async for state in service.docket.watch(view.task_id):
        current = view_of(state)
        if current.status in TERMINAL:
            return current
        for question_id, request in (current.input_requests or {}).items():
            answer = await legacy_elicit(ctx, current.task_id, request)
            await service.docket.answer(current.task_id, {question_id: answer})
    raise TaskNotFound(view.task_id)  # pragma: no cover - watch ends on a terminal state


async def list_tasks(service: TaskService, ctx: Ctx, params: ListParams) -> Any:
    listing = listing_of(ctx)
    after = position_of(params.cursor)
    if listing is None:
        return legacy.list_result([], None)
    states, position = await service.docket.list_index(listing, after, LIST_PAGE)
    views = [view_of(state) for state in states]
    cursor = legacy.encode_cursor(position.created_ms, position.key) if position else None
    return legacy.list_result(views, cursor)


def position_of(cursor: str | None) -> IndexPosition | None:
    """An opaque tasks/list cursor back to an index position; anything else is -32602."""
    if cursor is None:
        return None
    try:
        created_ms, key = legacy.decode_cursor(cursor)
    except ValueError:
        created_ms, key = 0, ""
    if not is_task_key(key):
        raise MCPError(code=INVALID_PARAMS, message=f"Invalid cursor: {shown(cursor)}")
    return IndexPosition(created_ms, key)


def caller(ctx: Ctx, task_id: str | None = None) -> str | None:
    """Who is asking: their owner identity, once a 2026 request has shown its opt-in and a
    consistent ``Mcp-Name``."""
    if ctx.protocol_version != LEGACY_VERSION:
        if read_opt_in(ctx) is None:
            raise missing_capability(f"{ctx.method} needs the {EXTENSION_ID} extension")
        check_name_header(ctx, task_id)
    return owner_of(ctx)


def read_opt_in(ctx: Ctx) -> dict[str, Any] | None:
    return read_client_extension_settings(ctx, EXTENSION_ID)


def check_name_header(ctx: Ctx, task_id: str | None) -> None:
    """Streamable HTTP clients name the task in ``Mcp-Name`` so a load balancer can route
    on it; a header that names another task than the body is rejected (-32020)."""
    headers = getattr(ctx.request, "headers", None)
    if task_id is None or headers is None:
        return
    named = decode_header_value(headers.get(MCP_NAME_HEADER))
    if named is not None and named != task_id:
        raise MCPError(
            code=HEADER_MISMATCH,
            message=f"Mcp-Name header {shown(named)!r} does not match params.taskId "
            f"{shown(task_id)!r}",
        )


async def legacy_elicit(ctx: Ctx, task_id: str, request: dict[str, Any]) -> dict[str, Any]:
    """Send a task's ``elicitation/create`` to a 2025-11-25 client and return its answer."""
    if request.get("method") != "elicitation/create":
        return {"action": "cancel"}
    params = dict(request.get("params") or {})
    params["_meta"] = {**(params.get("_meta") or {}), RELATED_TASK_META: {"taskId": task_id}}
    try:
        answer = await ctx.session.send_request(
            mcp_types.ElicitRequest(
                params=mcp_types.ElicitRequestFormParams.model_validate(params)
            ),
            mcp_types.ElicitResult,
            metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
        )
    except MCPError:
        return {"action": "cancel"}
    return answer.model_dump(by_alias=True, mode="json", exclude_none=True)
