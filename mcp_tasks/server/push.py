"""Pushing task changes to clients, in each dialect's way, from any replica.

Changes reach this process through the task's pub/sub channel (subscribed while someone
here follows it), so a client connected to replica A hears about a task that a worker on
another machine is running.

- 2025-11-25: while the creating connection is open, ``notifications/tasks/status`` on every
  status change and ``notifications/progress`` on the call's original ``progressToken``
  (:mod:`.legacy_push`).
- 2026-07-28: ``subscriptions/listen`` with ``notifications.taskIds`` is acknowledged, then
  ``notifications/tasks`` (a DetailedTask) follows on every change; the stream ends when
  every task in it has ended.
"""

from __future__ import annotations

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
from ..engine import ExecutionState
from ..engine.events import next_event
from ..protocol import modern
from ..protocol.modern import TasksNotification
from .errors import missing_capability
from .handlers import read_opt_in
from .identity import owner_of
from .service import TaskService, view_of, visible

log = logging.getLogger("mcp_tasks.server")

MAX_LISTENED = 1000
"""Task ids one ``subscriptions/listen`` may follow (each costs a Redis read up front)."""


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
            params["_meta"] = {**params.get("_meta", {}), **meta}
            await ctx.session.send_notification(
                TasksNotification(params=params),  # type: ignore[arg-type]  # an extension notification
                related_request_id=ctx.request_id,
            )

        for state in states.values():
            await send(state)
        live = {k for k, s in states.items() if not s.terminal}
        while live:
            event = await next_event(events)
            # A key-less resync (silence, see next_event): read every task still live.
            for key in [event.key] if event.key else list(live):
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
