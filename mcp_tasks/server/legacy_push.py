"""2025-11-25 push: ``notifications/tasks/status`` and ``notifications/progress`` to the
connection that created a task, while it is open.

Every legacy task a connection creates is followed, whether or not its client reads
notifications (an HTTP client without a GET stream never sees them; the server cannot
tell), so following must cost next to nothing until the task changes: one small
:class:`Follower` per task in a dict, and the task's channel on the docket's event hub
while it is followed here (so a replica hears only the tasks its own connections created).
No coroutine waits per task and no task state is held between events; an
event of a followed task reads that task once (events arriving meanwhile are folded into one
more read), and a progress event is read only for a follower that has a progress token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcp.server.context import ServerRequestContext

from .. import sdk
from ..engine import ExecutionState, TaskProgress
from ..engine.events import RESYNC, Event
from ..protocol import legacy
from .errors import STORE_ERRORS
from .service import TaskService, view_of

log = logging.getLogger("mcp_tasks.server")

PROGRESS_EVENT = "progress"
"""The docket's event status for a progress report (no status change)."""


@dataclass(eq=False, slots=True)
class Follower:
    """One connection following one task: where to send, and what it was last told."""

    connection: Any
    token: Any
    status: str = "working"  # what the create result told the client
    progress: TaskProgress | None = None

    async def send(self, state: ExecutionState) -> None:
        view = view_of(state)
        if view.status == "completed" and self.token is not None and self.status != "completed":
            await _finish_progress(self.connection, self.token, self.progress)
        if view.status != self.status:
            self.status = view.status
            await self.connection.notify("notifications/tasks/status", legacy.task_fields(view))
        if (
            self.token is not None
            and state.progress is not None
            and state.progress != self.progress
        ):
            self.progress = state.progress
            params: dict[str, Any] = {
                "progressToken": self.token,
                "progress": state.progress.current,
            }
            if state.progress.total is not None:
                params["total"] = state.progress.total
            if state.progress.message:
                params["message"] = state.progress.message
            await self.connection.notify("notifications/progress", params)


async def _finish_progress(connection: Any, token: Any, last: TaskProgress | None) -> None:
    """A completed task's progress reads 100 %: its last report (say 9 of 10, made before the
    last step) would otherwise leave a client's bar short of the end."""
    if last is None or last.total is None or last.current >= last.total:
        return
    params = {"progressToken": token, "progress": last.total, "total": last.total}
    await connection.notify("notifications/progress", params)


@dataclass
class LegacyRelays:
    """The followed 2025-11-25 tasks of this process, by task id."""

    service: Callable[[], TaskService]
    followed: dict[str, list[Follower]] = field(default_factory=dict)
    running: set[asyncio.Task[None]] = field(default_factory=set)
    _reading: set[str] = field(default_factory=set)
    _again: set[str] = field(default_factory=set)

    def follow(self, task_id: str, ctx: ServerRequestContext[Any, Any]) -> None:
        """Push this task's changes to the connection that created it while it is open."""
        connection = sdk.connection_of(ctx.session)
        if connection is None:
            return
        token = (ctx.meta or {}).get("progress_token")
        follower = Follower(connection, token)
        if task_id not in self.followed:
            self.followed[task_id] = []
            self.service().docket.hub.add_task_listener(task_id, self._on_event)
        self.followed[task_id].append(follower)
        # A connection's followers go with it: one clean-up per connection, not per task.
        mine: set[tuple[str, Follower]] | None = connection.state.get("mcp_tasks_followed")
        if mine is None:
            mine = connection.state["mcp_tasks_followed"] = set()
            connection.exit_stack.callback(self._forget, mine)
        mine.add((task_id, follower))
        # One read now: a quick task may have changed before this follower was registered.
        self._spawn(self._start_and_read(task_id))

    async def close(self) -> None:
        for task_id in list(self.followed):
            self._unfollow(task_id)
        for task in list(self.running):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.followed.clear()

    def _forget(self, mine: set[tuple[str, Follower]]) -> None:
        for task_id, follower in mine:
            self._drop(task_id, follower)
        mine.clear()

    def _drop(self, task_id: str, follower: Follower) -> None:
        followers = self.followed.get(task_id)
        if followers is not None:
            with contextlib.suppress(ValueError):
                followers.remove(follower)
            if not followers:
                self._unfollow(task_id)

    def _unfollow(self, task_id: str) -> None:
        self.followed.pop(task_id, None)
        with contextlib.suppress(Exception):  # (its docket may be closed already)
            self.service().docket.hub.remove_task_listener(task_id, self._on_event)

    async def _start_and_read(self, task_id: str) -> None:
        await self.service().docket.hub.ready(task_id)
        await self._read(task_id)

    def _on_event(self, event: Event) -> None:
        if event.status == RESYNC:  # messages were lost in an outage: read it afresh
            self._kick(event.key)
            return
        followers = self.followed.get(event.key)
        if not followers:
            return
        if event.status == PROGRESS_EVENT and all(f.token is None for f in followers):
            return  # nobody here shows progress, and a progress report changes no status
        self._kick(event.key)

    def _kick(self, task_id: str) -> None:
        if task_id in self._reading:
            self._again.add(task_id)  # the read under way may predate this event
        else:
            self._spawn(self._read(task_id))

    async def _read(self, task_id: str) -> None:
        """Read the task and tell its followers, again while events came in meanwhile; through
        a store outage too (it resumes from the task's state once Redis answers)."""
        if task_id in self._reading:
            self._again.add(task_id)
            return
        self._reading.add(task_id)
        delay = 0.05
        try:
            while task_id in self.followed:
                self._again.discard(task_id)
                try:
                    state = await self.service().docket.get(task_id)
                except STORE_ERRORS:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                if state is None or state.terminal:
                    followers = self.followed.get(task_id, [])
                    self._unfollow(task_id)
                else:  # (its connection may have closed during the read)
                    followers = list(self.followed.get(task_id, ()))
                if state is not None:
                    for follower in followers:
                        try:
                            await follower.send(state)
                        except Exception as exc:  # a closed connection: drop that follower
                            log.debug("task notification not sent: %s", exc)
                            self._drop(task_id, follower)
                if task_id not in self._again:
                    return
        finally:
            self._reading.discard(task_id)
            self._again.discard(task_id)  # (an unfollowed task is read no more)

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self.running.add(task)
        task.add_done_callback(self.running.discard)
