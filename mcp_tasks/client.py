"""A small task client on fastmcp's ``Client``: call a tool as a task and follow it.

It speaks the 2026-07-28 extension ``io.modelcontextprotocol/tasks`` (SEP-2663) to any server
that serves it, ours or another's::

    from fastmcp import Client
    from mcp_tasks.client import TasksClient

    tasks = TasksClient()
    async with Client(url, extensions=[tasks]) as client:
        task = await tasks.call_tool(client, "sleep", {"seconds": 5})
        async for state in task.follow():        # pushed (subscriptions/listen), else polled
            print(state.status, state.status_message)
        print(state.result)

``TasksClient`` opts the connection in, so a plain ``client.call_tool`` of a task tool also
works: the server answers with a task, which the extension resolves by polling to the tool's
ordinary result. ``tasks.call_tool`` returns the handle at once instead; ``tasks.handle(client,
task_id)`` makes one later from a task id, on another connection too (detach and resume).
The same calls work on a 2025-11-25 connection (SEP-1686): the task is created with
``params.task``, read with ``tasks/get`` and, once it has ended, ``tasks/result``; its changes
are polled there (``follow(push=True)`` falls back to polling: that dialect pushes
``notifications/tasks/status`` only to a message handler of the client's own), and input is
asked through the client's ``elicitation_handler`` while ``tasks/result`` waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import mcp_types
from fastmcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, NotificationBinding, ResultClaim
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from . import sdk
from .protocol import EXTENSION_ID, LEGACY_VERSION
from .protocol.modern import Ack, CreatedTask, TaskState
from .protocol.requests import (
    CancelTaskRequest,
    GetTaskRequest,
    TaskIdParams,
    UpdateParams,
    UpdateTaskRequest,
)

DEFAULT_POLL_SECONDS = 1.0


class ListenRefused(Exception):
    """The server refused ``subscriptions/listen`` (it has no push): poll instead."""


class TasksClient(ClientExtension):
    """The client half of ``io.modelcontextprotocol/tasks``: opt in, and turn the server's
    ``notifications/tasks`` into :meth:`TaskHandle.follow` events."""

    identifier = EXTENSION_ID

    def __init__(self) -> None:
        self._followers: dict[str, list[asyncio.Queue[TaskState]]] = {}

    def claims(self) -> Sequence[ResultClaim[Any]]:
        return (
            ResultClaim(
                result_type="task",
                model=CreatedTask,
                resolve=self._resolve,
                protocol_versions=frozenset(MODERN_PROTOCOL_VERSIONS),
            ),
        )

    def notifications(self) -> Sequence[NotificationBinding[Any]]:
        return [
            NotificationBinding(
                method="notifications/tasks", params_type=TaskState, handler=self._pushed
            )
        ]

    async def _pushed(self, state: TaskState) -> None:
        for queue in self._followers.get(state.task_id, ()):
            queue.put_nowait(state)

    def subscribe(self, task_id: str) -> asyncio.Queue[TaskState]:
        """A queue of the ``notifications/tasks`` pushed for ``task_id`` from now on."""
        queue: asyncio.Queue[TaskState] = asyncio.Queue()
        self._followers.setdefault(task_id, []).append(queue)
        return queue

    def unsubscribe(self, task_id: str, queue: asyncio.Queue[TaskState]) -> None:
        followers = self._followers.get(task_id, [])
        if queue in followers:
            followers.remove(queue)
        if not followers:
            self._followers.pop(task_id, None)

    async def call_tool(
        self, client: Client[Any], name: str, arguments: dict[str, Any] | None = None
    ) -> TaskHandle:
        """Call ``name`` as a task and return its handle at once. A call the server runs
        inline instead is a ``RuntimeError``: the tool is not a task tool on that server, or
        the connection did not negotiate 2026-07-28."""
        if client.protocol_version == LEGACY_VERSION:
            params = {"name": name, "arguments": arguments or {}, "task": {}}
            created = (await raw_request(client, "tools/call", params)).get("task")
            if not isinstance(created, dict):
                raise RuntimeError(f"tool {name!r} did not run as a task (declared task=True?)")
            return TaskHandle(client, created["taskId"], created.get("pollInterval"), self)
        answer = await client.session.call_tool(name, arguments or {}, allow_claimed=True)
        if not isinstance(answer, CreatedTask):
            raise RuntimeError(
                f"tool {name!r} did not run as a task (a task=True tool on a 2026-07-28 "
                f"connection? this one negotiated {client.protocol_version})"
            )
        return TaskHandle(client, answer.task_id, answer.poll_interval_ms, self)

    def handle(self, client: Client[Any], task_id: str) -> TaskHandle:
        """A handle for a task created earlier, on this connection or another."""
        return TaskHandle(client, task_id, None, self)

    async def _resolve(self, created: CreatedTask, ctx: ClaimContext) -> mcp_types.CallToolResult:
        """A plain ``call_tool`` that became a task: poll it to the tool's own result."""
        handle = TaskHandle(ctx.session, created.task_id, created.poll_interval_ms)
        state = await handle.wait(push=False)
        if state.status == "completed" and state.result is not None:
            return mcp_types.CallToolResult.model_validate(state.result)
        reason = (state.error or {}).get("message") or f"the task was {state.status}"
        text = mcp_types.TextContent(type="text", text=str(reason))
        return mcp_types.CallToolResult(content=[text], is_error=True)


class TaskHandle:
    """One task on the server: read, follow, answer, cancel."""

    def __init__(
        self,
        client: Client[Any] | ClientSession,
        task_id: str,
        poll_interval_ms: int | None = None,
        tasks: TasksClient | None = None,
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

    async def _legacy_status(self) -> TaskState:
        fields = await raw_request(self.session, "tasks/get", {"taskId": self.task_id})
        state = TaskState.model_validate(
            {**fields, "pollIntervalMs": fields.get("pollInterval")}, by_alias=True
        )
        while state.status == "input_required":
            # The server asks its question on the tasks/result stream (the client's
            # elicitation_handler answers it); tasks/result then waits for the end.
            try:
                await raw_request(self.session, "tasks/result", {"taskId": self.task_id})
            except MCPError:
                await asyncio.sleep((self.poll_interval_ms or DEFAULT_POLL_SECONDS * 1000) / 1000)
            fields = await raw_request(self.session, "tasks/get", {"taskId": self.task_id})
            state = TaskState.model_validate(
                {**fields, "pollIntervalMs": fields.get("pollInterval")}, by_alias=True
            )
        if state.status in ("completed", "failed"):
            try:  # what the call itself would have answered: the result, or its error
                result = await raw_request(self.session, "tasks/result", {"taskId": self.task_id})
                state.result = {k: v for k, v in result.items() if k != "_meta"}
            except MCPError as exc:
                state.error = {"code": exc.error.code, "message": exc.error.message}
        return state

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
        if push and self.tasks is not None and not self.legacy:
            try:
                async for state in self._pushed():
                    yield state
                return
            except ListenRefused:
                pass  # a server without push: poll it
        last: TaskState | None = None
        while True:
            state = await self.status()
            if state != last:
                yield state
                last = state
            if state.terminal:
                return
            await asyncio.sleep((self.poll_interval_ms or DEFAULT_POLL_SECONDS * 1000) / 1000)

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
        getting: asyncio.Task[TaskState] | None = None
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
                state = getting.result()
                seen = True
                # Another follow() of this task on this client has its own listen stream,
                # whose notifications reach this queue too: yield each state once.
                state.meta = None  # (the stream's subscription id: which stream sent it)
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


CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"


async def raw_request(
    client: Client[Any] | ClientSession,
    method: str,
    params: dict[str, Any],
    *,
    opt_in: bool | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - the SDK's own per-request timeout
) -> dict[str, Any]:
    """Send any JSON-RPC request on an open client and return the raw ``result`` dict (a
    JSON-RPC error raises ``MCPError``), unvalidated: for requests no typed API sends, such
    as a 2025-11-25 task-augmented ``tools/call``, and for probing a server.

    On a 2026-07-28 connection the request carries what the session adds to every request
    (protocol version, client info, capabilities, routing headers); ``opt_in`` then adds
    (True) or removes (False) this connection's opt-in to ``io.modelcontextprotocol/tasks``
    (None: as the client advertises). A 2025-11-25 request goes out as given.
    """
    session = client.session if isinstance(client, Client) else client
    modern = session.protocol_version not in (None, LEGACY_VERSION)

    def adjust(sent: dict[str, Any]) -> None:
        if opt_in is None:
            return
        meta = sent.setdefault("_meta", {})
        capabilities = dict(meta.get(CAPABILITIES_META) or {})
        extensions = dict(capabilities.get("extensions") or {})
        if opt_in:
            extensions[EXTENSION_ID] = {}
        else:
            extensions.pop(EXTENSION_ID, None)
        capabilities["extensions"] = extensions
        meta[CAPABILITIES_META] = capabilities

    answer: dict[str, Any] = await sdk.send_raw_request(
        session,
        method,
        params,
        stamp=modern,
        adjust=adjust if modern else None,
        headers=headers,
        timeout=timeout,
    )
    return answer


__all__ = ["TaskHandle", "TaskState", "TasksClient", "raw_request"]
