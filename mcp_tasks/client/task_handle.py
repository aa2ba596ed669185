"""``TaskHandle``: one task on a server, read, followed (pushed or polled), answered and
cancelled in whichever dialect its connection negotiated."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import mcp_types
from fastmcp import Client
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

from ..protocol import LEGACY_VERSION
from ..protocol.modern import Ack, TaskState
from ..protocol.requests import (
    CancelTaskRequest,
    GetTaskRequest,
    TaskIdParams,
    UpdateParams,
    UpdateTaskRequest,
)
from ..protocol.view import PROGRESS_META
from .raw import raw_request


class Pushes(Protocol):
    """Where a handle gets what the server pushes for its task (``TasksClient``, which
    receives every notification of the connection and routes it by task id)."""

    def subscribe(self, task_id: str) -> asyncio.Queue[Pushed]: ...

    def unsubscribe(self, task_id: str, queue: asyncio.Queue[Pushed]) -> None: ...


DEFAULT_POLL_SECONDS = 1.0


class ListenRefused(Exception):
    """The server refused ``subscriptions/listen`` (it has no push): poll instead."""


class TaskHandle:
    """One task on the server: read, follow, answer, cancel."""

    def __init__(
        self,
        client: Client[Any] | ClientSession,
        task_id: str,
        poll_interval_ms: int | None = None,
        tasks: Pushes | None = None,
    ) -> None:
        self.session = client.session if isinstance(client, Client) else client
        self.task_id = task_id
        self.poll_interval_ms = poll_interval_ms
        self.tasks = tasks
        self.legacy = self.session.protocol_version == LEGACY_VERSION
        """2025-11-25: tasks/get has no result; tasks/result gives it once the task ended."""

    async def _send(self, request: Any, result: type[Any]) -> Any:
        # The client stamps its capabilities, this extension's opt-in included, on each request.
        return await self.session.send_request(request, result)

    async def status(self) -> TaskState:
        if self.legacy:
            state = await self._legacy_status()
        else:
            state = await self._send(
                GetTaskRequest(params=TaskIdParams(taskId=self.task_id)), TaskState
            )
        if state.poll_interval_ms:
            self.poll_interval_ms = state.poll_interval_ms
        return state

    async def _legacy_get(self) -> TaskState:
        fields = await raw_request(self.session, "tasks/get", {"taskId": self.task_id})
        return legacy_fields(TaskState.model_validate(fields, by_alias=True))

    async def _legacy_result(self) -> dict[str, Any] | MCPError:
        """``tasks/result``: waits for the end, then what the call itself would have
        answered (the tool's result, or the JSON-RPC error)."""
        try:
            result = await raw_request(self.session, "tasks/result", {"taskId": self.task_id})
        except MCPError as exc:
            return exc
        return {k: v for k, v in result.items() if k != "_meta"}

    async def _legacy_status(self) -> TaskState:
        state = await self._legacy_get()
        while state.status == "input_required":
            # The server asks its question on the tasks/result stream (the client's
            # elicitation_handler answers it); tasks/result then waits for the end.
            if isinstance(await self._legacy_result(), MCPError):
                await asyncio.sleep(self._poll_seconds())
            state = await self._legacy_get()
        if state.status in ("completed", "failed"):
            _attach(state, await self._legacy_result())
        return state

    def _poll_seconds(self) -> float:
        return (self.poll_interval_ms or DEFAULT_POLL_SECONDS * 1000) / 1000

    async def cancel(self) -> None:
        """Ask the server to cancel; the task's own status then says how it ended."""
        if self.legacy:
            with contextlib.suppress(MCPError):  # -32602 when it had ended already
                await raw_request(self.session, "tasks/cancel", {"taskId": self.task_id})
            return
        await self._send(CancelTaskRequest(params=TaskIdParams(taskId=self.task_id)), Ack)

    async def answer(self, responses: dict[str, Any]) -> None:
        """Answer open input requests (``tasks/update``), keyed by their ids. (2025-11-25
        asks the client's ``elicitation_handler`` instead, while ``tasks/result`` waits.)"""
        if self.legacy:
            raise RuntimeError("2025-11-25 input goes to the client's elicitation_handler")
        params = UpdateParams(taskId=self.task_id, inputResponses=responses)
        await self._send(UpdateTaskRequest(params=params), Ack)

    async def follow(self, *, push: bool = True) -> AsyncIterator[TaskState]:
        """Each new state until the task has ended: pushed through ``subscriptions/listen``
        when the server offers it (and ``TasksClient`` is on the client), else polled at the
        server's ``pollIntervalMs``."""
        if push and self.tasks is not None and self.legacy:
            async for state in self._legacy_pushed(self.tasks):
                yield state
            return
        if push and self.tasks is not None:
            try:
                async for state in self._pushed():
                    yield state
                return
            except ListenRefused:
                pass  # a server without push: poll it
        async for state in self._polled():
            yield state

    async def _polled(self, last: TaskState | None = None) -> AsyncIterator[TaskState]:
        while True:
            state = await self.status()
            if state != last:
                yield state
                last = state
            if state.terminal:
                return
            await asyncio.sleep(self._poll_seconds())

    async def _legacy_pushed(self, tasks: Pushes) -> AsyncIterator[TaskState]:
        """2025-11-25: ``tasks/result`` answers at the end (asking for input meanwhile, if
        the tool does), while status changes and progress are pushed on the side."""
        queue = tasks.subscribe(self.task_id)
        ending = asyncio.create_task(self._legacy_result())
        getting: asyncio.Task[Pushed] | None = None
        try:
            last = await self._legacy_get()
            if not last.terminal:
                yield last
            while not ending.done():
                getting = asyncio.create_task(queue.get())
                await asyncio.wait([getting, ending], return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    break
                state = _merge(last, getting.result())
                if state.terminal or state == last:
                    continue  # the end is told once tasks/result has answered
                last = state
                yield state
            outcome = await ending
            final = await self._legacy_get()
            if not final.terminal:  # tasks/result gave up early (a timeout, a lost stream)
                async for state in self._polled(last):
                    yield state
                return
            if final.status != "cancelled":
                _attach(final, outcome)
            yield final
        finally:
            ending.cancel()
            if getting is not None:
                getting.cancel()
            tasks.unsubscribe(self.task_id, queue)

    async def _pushed(self) -> AsyncIterator[TaskState]:
        assert self.tasks is not None
        queue = self.tasks.subscribe(self.task_id)
        listen = mcp_types.SubscriptionsListenRequest(
            params=mcp_types.SubscriptionsListenRequestParams(
                notifications=mcp_types.SubscriptionFilter.model_validate(
                    {"taskIds": [self.task_id]}
                )
            )
        )
        stream = asyncio.create_task(
            self.session.send_request(listen, mcp_types.SubscriptionsListenResult)
        )
        getting: asyncio.Task[Pushed] | None = None
        last: TaskState | None = None
        seen = False
        try:
            while True:
                getting = asyncio.create_task(queue.get())
                await asyncio.wait([getting, stream], return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    if stream.exception() is not None and not seen:
                        raise ListenRefused from stream.exception()
                    stream.result()  # a listen that failed after it began raises here
                    state = await self.status()  # the stream ended: the task has ended
                    yield state
                    if state.terminal:
                        return
                    raise RuntimeError("the server ended subscriptions/listen early")
                pushed = getting.result()
                seen = True
                if not isinstance(pushed, TaskState):
                    continue  # (2025-11-25 progress: not sent on this connection)
                state = pushed
                # Another follow() of this task on this client has its own listen stream,
                # whose notifications reach this queue too: yield each state once.
                state.meta = _progress_only(state.meta)  # (not which stream sent it)
                if state == last:
                    continue
                last = state
                yield state
                if state.terminal:
                    return
        finally:
            stream.cancel()
            if getting is not None:
                getting.cancel()
            self.tasks.unsubscribe(self.task_id, queue)

    async def wait(self, *, push: bool = True) -> TaskState:
        """The task's final state."""
        final: TaskState | None = None
        async for state in self.follow(push=push):
            final = state
        assert final is not None
        return final


Pushed = TaskState | mcp_types.ProgressNotificationParams
"""What a follower's queue receives: a pushed state, or (2025-11-25) a progress report."""


def legacy_fields(state: TaskState) -> TaskState:
    """A 2025-11-25 Task read as a state: its ``pollInterval`` is ``pollIntervalMs``."""
    extra = state.model_extra or {}
    if state.poll_interval_ms is None and isinstance(extra.get("pollInterval"), int):
        state.poll_interval_ms = extra["pollInterval"]
    return state


def _progress_only(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    kept = {k: v for k, v in (meta or {}).items() if k == PROGRESS_META}
    return kept or None


def _merge(last: TaskState, pushed: Pushed) -> TaskState:
    """The state after a push: a new state, or the last one with new progress numbers."""
    if isinstance(pushed, TaskState):
        pushed.meta = _progress_only(pushed.meta) or _progress_only(last.meta)
        return pushed
    numbers: dict[str, Any] = {"progress": pushed.progress}
    if pushed.total is not None:
        numbers["total"] = pushed.total
    message = pushed.message or last.status_message
    update = {"meta": {PROGRESS_META: numbers}, "status_message": message}
    return last.model_copy(update=update)


def _attach(state: TaskState, outcome: dict[str, Any] | MCPError) -> None:
    """Put what ``tasks/result`` answered on an ended task's state."""
    if isinstance(outcome, MCPError):
        state.error = {"code": outcome.error.code, "message": outcome.error.message}
    else:
        state.result = outcome
