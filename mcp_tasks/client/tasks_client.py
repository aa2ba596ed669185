"""``TasksClient``: the client half of ``io.modelcontextprotocol/tasks`` on a fastmcp
``Client``, and the router of what a server pushes to the handles that follow a task."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import mcp_types
from fastmcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, NotificationBinding, ResultClaim
from mcp.client.session import MessageHandlerFnT
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from ..protocol import EXTENSION_ID, LEGACY_VERSION
from ..protocol.modern import CreatedTask, TaskState
from .raw import raw_request
from .task_handle import Pushed, TaskHandle, legacy_fields

KEPT_TOKENS = 10_000


class TasksClient(ClientExtension):
    """The client half of ``io.modelcontextprotocol/tasks``: opt in, and turn the server's
    ``notifications/tasks`` into :meth:`TaskHandle.follow` events."""

    identifier = EXTENSION_ID

    def __init__(self) -> None:
        self._followers: dict[str, list[asyncio.Queue[Pushed]]] = {}
        self._tokens: dict[str, str] = {}
        """2025-11-25 progress tokens of this client's latest tasks (``KEPT_TOKENS`` of
        them, oldest dropped first: a long-lived client must not grow), to their task ids."""
        """2025-11-25 progress tokens of the tasks this client created, to their task ids."""

    def connect(self, target: Any, **options: Any) -> Client[Any]:
        """A fastmcp ``Client`` for ``target`` with this extension on it and its
        :meth:`message_handler` in front of any given one (``Client``'s options pass through)."""
        extensions = [self, *(options.pop("extensions", None) or ())]
        handler = self.message_handler(options.pop("message_handler", None))
        return Client(target, extensions=extensions, message_handler=handler, **options)

    def message_handler(self, inner: MessageHandlerFnT | None = None) -> MessageHandlerFnT:
        """A ``message_handler`` for the client: hands 2025-11-25 progress of this client's
        tasks to their followers, and every message on to ``inner``."""

        async def handle(message: Any) -> None:
            if isinstance(message, mcp_types.ProgressNotification):
                task_id = self._tokens.get(str(message.params.progress_token))
                if task_id is not None:
                    self._deliver(task_id, message.params)
            if inner is not None:
                await inner(message)

        return handle

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
        # notifications/tasks (2026-07-28) and notifications/tasks/status (2025-11-25) are
        # extension methods to mcp's core tables, so they reach bindings; each connection
        # receives only its own dialect's.
        return [
            NotificationBinding(
                method="notifications/tasks", params_type=TaskState, handler=self._pushed
            ),
            NotificationBinding(
                method="notifications/tasks/status", params_type=TaskState, handler=self._pushed
            ),
        ]

    async def _pushed(self, state: TaskState) -> None:
        self._deliver(state.task_id, legacy_fields(state))

    def _deliver(self, task_id: str, item: Pushed) -> None:
        for queue in self._followers.get(task_id, ()):
            queue.put_nowait(item)

    def subscribe(self, task_id: str) -> asyncio.Queue[Pushed]:
        """A queue of what is pushed for ``task_id`` from now on: states, and 2025-11-25
        progress."""
        queue: asyncio.Queue[Pushed] = asyncio.Queue()
        self._followers.setdefault(task_id, []).append(queue)
        return queue

    def unsubscribe(self, task_id: str, queue: asyncio.Queue[Pushed]) -> None:
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
            token = uuid.uuid4().hex  # the task's progress comes on it for the task's life
            params = {"name": name, "arguments": arguments or {}, "task": {}}
            params["_meta"] = {"progressToken": token}
            created = (await raw_request(client, "tools/call", params)).get("task")
            if not isinstance(created, dict):
                raise RuntimeError(f"tool {name!r} did not run as a task (declared task=True?)")
            self._tokens[token] = created["taskId"]
            if len(self._tokens) > KEPT_TOKENS:  # a task this old still has its statuses
                del self._tokens[next(iter(self._tokens))]
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
