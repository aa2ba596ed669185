"""Pushing task changes to clients, in each dialect's way, from any replica.

Changes reach this process through the docket's pub/sub channel, so a client connected to
replica A hears about a task that a worker on another machine is running.

- 2025-11-25: while the creating connection is open, ``notifications/tasks/status`` on every
  status change and ``notifications/progress`` on the call's original ``progressToken``.
- 2026-07-28: ``subscriptions/listen`` with ``notifications.taskIds`` is acknowledged, then
  ``notifications/tasks`` (a DetailedTask) follows on every change; the stream ends when
  every task in it has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import mcp_types
from fastmcp import FastMCP
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .. import sdk
from ..engine import ExecutionState, TaskNotFound
from ..protocol import legacy, modern
from ..protocol.modern import TasksNotification
from .errors import STORE_ERRORS, missing_capability
from .handlers import read_opt_in
from .identity import owner_of
from .service import TaskService, view_of, visible

log = logging.getLogger("mcp_tasks.server")

MAX_LISTENED = 1000
"""Task ids one ``subscriptions/listen`` may follow (each costs a Redis read up front)."""


class LegacyRelays:
    """The 2025-11-25 push relays of this process: one per task, while the connection that
    created it is open (its notifications go to that connection only)."""

    def __init__(self, service: Callable[[], TaskService]) -> None:
        self.service = service
        self.running: set[asyncio.Task[None]] = set()

    def follow(self, task_id: str, ctx: ServerRequestContext[Any, Any]) -> None:
        """Push this task's changes to the connection that created it while it is open."""
        connection = sdk.connection_of(ctx.session)
        if connection is None:
            return
        token = (ctx.meta or {}).get("progress_token")
        relay = spawn(self.running, relay_legacy(self.service(), task_id, connection, token))
        # The relays of one connection end with it: one clean-up per connection, not per task.
        relays: set[asyncio.Task[None]] | None = connection.state.get("mcp_tasks_relays")
        if relays is None:
            relays = connection.state["mcp_tasks_relays"] = set()
            connection.exit_stack.callback(_cancel_all, relays)
        relays.add(relay)
        relay.add_done_callback(relays.discard)

    async def close(self) -> None:
        for relay in list(self.running):
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay


def _cancel_all(tasks: set[asyncio.Task[None]]) -> None:
    for task in list(tasks):
        task.cancel()


async def relay_legacy(service: TaskService, task_id: str, connection: Any, token: Any) -> None:
    """Follow one legacy task and notify its creating connection of each change; through a
    task-store outage too (it resumes from the task's state once Redis answers again)."""
    delay = 0.05
    last: list[Any] = [None, None]  # the status and progress last sent
    while True:
        try:
            await _relay_changes(service, task_id, connection, token, last)
            return
        except STORE_ERRORS:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def _relay_changes(
    service: TaskService, task_id: str, connection: Any, token: Any, last: list[Any]
) -> None:
    last_status, last_progress = last
    try:
        async for state in service.docket.watch(task_id):
            view = view_of(state)
            status = view.status  # status changes only; progress has its own notification
            if status == "completed" and token is not None and last_status != status:
                await _finish_progress(connection, token, last_progress)
            if last_status is not None and status != last_status:
                await connection.notify("notifications/tasks/status", legacy.task_fields(view))
            last_status = last[0] = status
            if token is not None and state.progress is not None and state.progress != last_progress:
                last_progress = last[1] = state.progress
                params: dict[str, Any] = {
                    "progressToken": token,
                    "progress": state.progress.current,
                }
                if state.progress.total is not None:
                    params["total"] = state.progress.total
                if state.progress.message:
                    params["message"] = state.progress.message
                await connection.notify("notifications/progress", params)
    except TaskNotFound:
        return


async def _finish_progress(connection: Any, token: Any, last: Any) -> None:
    """A completed task's progress reads 100 %: its last report (say 9 of 10, made before the
    last step) would otherwise leave a client's bar short of the end."""
    if last is None or last.total is None or last.current >= last.total:
        return
    params = {"progressToken": token, "progress": last.total, "total": last.total}
    await connection.notify("notifications/progress", params)


async def listen(
    service: TaskService,
    ctx: ServerRequestContext[Any, Any],
    params: mcp_types.SubscriptionsListenRequestParams,
) -> mcp_types.SubscriptionsListenResult:
    """``subscriptions/listen`` for task ids (2026-07-28)."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        raise MCPError(
            code=mcp_types.METHOD_NOT_FOUND,
            message=f"subscriptions/listen is not a method of protocol {ctx.protocol_version}",
        )
    filter_extra = params.notifications.model_extra or {}
    requested = filter_extra.get("taskIds")
    # The extension's MUST: task notifications only for a caller that opted in.
    if "taskIds" in filter_extra and read_opt_in(ctx) is None:
        raise missing_capability("notifications.taskIds needs the tasks extension")
    if not isinstance(requested, list) or not all(isinstance(t, str) for t in requested):
        raise MCPError(
            code=mcp_types.INVALID_PARAMS,
            message="notifications.taskIds must be a list of task ids",
        )
    if len(requested) > MAX_LISTENED:
        raise MCPError(
            code=mcp_types.INVALID_PARAMS,
            message=f"notifications.taskIds may name at most {MAX_LISTENED} tasks",
        )
    owner = owner_of(ctx)
    states: dict[str, ExecutionState] = {}
    docket = service.docket
    meta = {SUBSCRIPTION_ID_META_KEY: ctx.request_id}
    async with docket.hub.subscription(*requested) as events:
        for task_id in dict.fromkeys(requested):
            state = await docket.get(task_id)
            if state is not None and visible(view_of(state), owner):
                states[task_id] = state
        honored = mcp_types.SubscriptionFilter.model_validate({"taskIds": list(states)})
        await ctx.session.send_notification(
            mcp_types.SubscriptionsAcknowledgedNotification(
                params=mcp_types.SubscriptionsAcknowledgedNotificationParams(
                    notifications=honored, _meta=meta
                )
            ),
            related_request_id=ctx.request_id,
        )

        async def send(state: ExecutionState) -> None:
            params = modern.detailed(view_of(state)).wire()
            params["_meta"] = meta
            await ctx.session.send_notification(
                TasksNotification(params=params),  # type: ignore[arg-type]  # an extension notification
                related_request_id=ctx.request_id,
            )

        for state in states.values():
            await send(state)
        live = {k for k, s in states.items() if not s.terminal}
        while live:
            key = (await events.get()).key
            if key not in live:
                continue
            fresh = await docket.get(key)
            if fresh is None:
                live.discard(key)
                continue
            if fresh != states.get(key):
                states[key] = fresh
                await send(fresh)
            if fresh.terminal:
                live.discard(key)
    return mcp_types.SubscriptionsListenResult(_meta=meta)


def install_listen(server: FastMCP, service: Callable[[], TaskService]) -> None:
    """Register the ``subscriptions/listen`` handler (fastmcp registers none; a spec method
    cannot be an extension MethodBinding, so it goes on the low-level server)."""
    lowlevel = sdk.low_level_server(server)
    with contextlib.suppress(KeyError, AttributeError):
        if lowlevel.get_request_handler("subscriptions/listen") is not None:
            return

    async def handler(
        ctx: ServerRequestContext[Any, Any], params: mcp_types.SubscriptionsListenRequestParams
    ) -> mcp_types.SubscriptionsListenResult:
        return await listen(service(), ctx, params)

    lowlevel.add_request_handler(
        "subscriptions/listen", mcp_types.SubscriptionsListenRequestParams, handler
    )


def spawn(tasks: set[asyncio.Task[None]], coroutine: Any) -> asyncio.Task[None]:
    task: asyncio.Task[None] = asyncio.create_task(coroutine)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task
