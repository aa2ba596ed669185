"""The ``Tasks`` fastmcp extension: task tools on a docket, served in both task dialects.

One task store (the docket) backs both dialects. Which dialect a request speaks is decided
by the protocol version its connection negotiated:

- 2026-07-28: a ``tools/call`` from a client that opted in to ``io.modelcontextprotocol/tasks``
  becomes a task in :meth:`Tasks.intercept_tool_call`; ``tasks/get`` / ``tasks/cancel`` /
  ``tasks/update`` are method bindings.
- 2025-11-25: fastmcp's interceptors never see the ``task`` parameter, so a low-level
  middleware (:mod:`.legacy`) creates those tasks and advertises ``capabilities.tasks``;
  ``tasks/result`` and ``tasks/list`` are bindings for that version only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import mcp_types
from fastmcp.server.context import Context
from fastmcp.server.extensions import MethodBinding
from fastmcp.tools.base import ToolResult
from fastmcp.utilities.tasks import DEFAULT_POLL_INTERVAL
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_NAME_HEADER, decode_header_value
from mcp.shared.message import ServerMessageMetadata
from mcp_types import HEADER_MISMATCH, INVALID_PARAMS, RequestParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field

from .. import sdk
from ..engine import Docket, IndexPosition, Quota, QuotaExceeded, TaskNotFound, Worker
from ..engine.codec import Codec
from ..engine.keys import check_task_key
from ..engine.serialization import to_json_text
from ..engine.worker import cancel_and_wait
from ..protocol import (
    EXTENSION_ID,
    LEGACY_VERSION,
    MISSING_CAPABILITY,
    RELATED_TASK_META,
    TASK_VERSIONS,
    legacy,
    modern,
)
from ..protocol.view import TaskView
from . import dashboard, legacy_middleware, metrics, push
from .identity import listing_of, owner_of
from .runner import TOOL_FUNCTION, call_tool, caller_snapshot

DEFAULT_URL_ENV = "MCP_TASKS_URL"
LIMIT_REACHED = -32000
"""JSON-RPC error for a task refused by a per-caller limit (an implementation-defined server
error; neither task dialect defines one). ``data`` says which limit and when to retry."""
LIST_PAGE = 50


class TaskIdParams(RequestParams):
    model_config = ConfigDict(populate_by_name=True, extra="allow")
    task_id: str = Field(alias="taskId")


class ListParams(RequestParams):
    model_config = ConfigDict(extra="allow")
    cursor: str | None = None


class UpdateParams(TaskIdParams):
    input_responses: dict[str, Any] = Field(default_factory=dict, alias="inputResponses")


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _switch(value: bool | None, env: str, default: bool = True) -> bool:
    """An on/off option: the argument if given, else the environment variable (0, false,
    no or off; anything else is on), else ``default``."""
    if value is not None:
        return value
    setting = os.environ.get(env)
    if setting is None:
        return default
    return setting.strip().lower() not in ("0", "false", "no", "off")


class Tasks(sdk.BindAwareExtension):
    """Run ``task=True`` tools as tasks on a docket and serve both MCP task dialects.

    ``url`` defaults to the ``MCP_TASKS_URL`` environment variable, else ``memory://``;
    ``name`` (the docket's) to ``MCP_TASKS_NAME``, else ``mcp-tasks``. ``worker=False`` (or
    ``MCP_TASKS_WORKER=0``) makes an API-only replica whose tasks run elsewhere, e.g. in
    ``mcp-tasks worker server.py`` processes.

    Over HTTP the server also serves ``/tasks/``, a live dashboard of the latest tasks of
    every caller (``dashboard=False`` or ``MCP_TASKS_DASHBOARD=0`` to switch it off; it has
    no authentication of its own — see :mod:`.dashboard` for what it shows and what not — so
    on a server with ``auth=`` it is off unless switched on explicitly), and
    ``/metrics`` for Prometheus (``metrics=False`` or ``MCP_TASKS_METRICS=0``; cluster-wide
    figures kept in Redis, see :mod:`.metrics`; like the dashboard, off by default on a
    server with ``auth=``, since custom routes bypass it).
    """

    identifier = EXTENSION_ID

    def __init__(
        self,
        url: str | None = None,
        *,
        name: str | None = None,
        worker: bool | None = None,
        concurrency: int = 10,
        default_ttl: timedelta | float = timedelta(hours=1),
        max_ttl: timedelta | float = timedelta(days=1),
        poll_interval: timedelta | float = timedelta(seconds=1),
        redelivery_timeout: timedelta | float = timedelta(seconds=30),
        max_argument_bytes: int = 1_000_000,
        max_result_bytes: int = 10_000_000,
        max_unfinished_per_caller: int | None = None,
        max_creations_per_minute: int | None = None,
        encryption_key: str | None = None,
        settle: timedelta | float = timedelta(milliseconds=20),
        dashboard: bool | None = None,
        metrics: bool | None = None,
    ) -> None:
        self.url = url or os.environ.get(DEFAULT_URL_ENV) or "memory://"
        self.docket_name = name or os.environ.get("MCP_TASKS_NAME") or "mcp-tasks"
        self.run_worker = _switch(worker, "MCP_TASKS_WORKER")
        self._dashboard_setting = dashboard
        self.dashboard = _switch(dashboard, "MCP_TASKS_DASHBOARD")  # settled when bound
        self._metrics_setting = metrics
        self.metrics = _switch(metrics, "MCP_TASKS_METRICS")  # settled when bound
        self.concurrency = concurrency
        self.default_ttl_ms = int(_seconds(default_ttl) * 1000)
        self.max_ttl_ms = int(_seconds(max_ttl) * 1000)
        self.poll_interval_ms = int(_seconds(poll_interval) * 1000)
        self.redelivery_timeout = redelivery_timeout
        self.max_argument_bytes = max_argument_bytes
        self.max_result_bytes = max_result_bytes
        self.max_unfinished_per_caller = max_unfinished_per_caller
        self.max_creations_per_minute = max_creations_per_minute
        self.codec = Codec(encryption_key) if encryption_key else None
        self.settle = max(_seconds(settle), 0.0)
        if min(max_argument_bytes, max_result_bytes) < 1:
            raise ValueError("max_argument_bytes and max_result_bytes must be positive")
        Quota("check", max_unfinished_per_caller, max_creations_per_minute)  # valid caps?
        if not 0 < self.default_ttl_ms <= self.max_ttl_ms:
            raise ValueError("default_ttl must be positive and at most max_ttl")
        self._docket: Docket | None = None
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._users = 0
        self._relays: set[asyncio.Task[None]] = set()

    # -- lifecycle -----------------------------------------------------------------------

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        return self._lifespan()

    @contextlib.asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        """Open the docket (and start the in-process worker); nested starts share it."""
        if self._docket is not None:
            self._users += 1
            return
        docket = Docket(name=self.docket_name, url=self.url, codec=self.codec)
        await docket.open()
        self._users += 1
        server = self.server

        async def run_tool(
            tool: str, arguments: dict[str, Any], caller: dict[str, Any] | None = None
        ) -> dict[str, Any]:
            return await call_tool(
                server, tool, arguments, caller, max_result_bytes=self.max_result_bytes
            )

        docket.register(run_tool, name=TOOL_FUNCTION)
        self._docket = docket
        legacy_middleware.install(server, self)
        push.install_listen(self)
        if self.run_worker:
            self._worker = Worker(
                docket, concurrency=self.concurrency, redelivery_timeout=self.redelivery_timeout
            )
            await self._worker.start()
            self._worker_task = asyncio.create_task(self._worker.run_forever())

    async def stop(self) -> None:
        self._users -= 1
        if self._users > 0 or self._docket is None:
            return
        for relay in list(self._relays):
            await cancel_and_wait(relay)
        if self._worker is not None:
            await self._worker.stop()
            self._worker = None
        if self._worker_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task
            self._worker_task = None
        await self._docket.close()
        self._docket = None

    def on_registered(self, server: Any) -> None:
        """Add the HTTP routes, before any HTTP app is built."""
        # Custom routes bypass the server's auth: a server that authenticates its callers
        # must not show every caller's activity to anyone unless its operator says so.
        self.dashboard = _switch(
            self._dashboard_setting, "MCP_TASKS_DASHBOARD", default=server.auth is None
        )
        self.metrics = _switch(
            self._metrics_setting, "MCP_TASKS_METRICS", default=server.auth is None
        )
        routes = []
        if self.dashboard:
            routes += dashboard.routes(lambda: self.docket)
        if self.metrics:
            routes += metrics.routes(lambda: self.docket)
        for route in routes:
            server.custom_route(route.path, sorted(route.methods or ()), route.name)(route.endpoint)

    @property
    def docket(self) -> Docket:
        if self._docket is None:
            raise RuntimeError("the Tasks extension is not running (the server has not started)")
        return self._docket

    # -- creating tasks ------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        return {}

    def actual_ttl_ms(self, requested: object) -> int:
        """Honour a requested ttl up to the configured maximum; a bad one gets the default."""
        if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
            return min(requested, self.max_ttl_ms)
        return self.default_ttl_ms

    async def create(
        self,
        tool: str,
        arguments: dict[str, Any],
        *,
        ttl_ms: int,
        owner: str | None,
        listing: str | None = None,
        poll_ms: int | None = None,
    ) -> TaskView:
        """Put a tool call on the docket; when this returns, tasks/get finds the task."""
        poll_ms = poll_ms or self.poll_interval_ms
        size = len(to_json_text(arguments).encode())
        if size > self.max_argument_bytes:
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"Task arguments are too large: {size} bytes "
                f"(the maximum is {self.max_argument_bytes})",
            )
        try:
            execution = await self.docket.add(
                TOOL_FUNCTION,
                ttl=ttl_ms / 1000,
                index=listing,
                meta={"tool": tool, "owner": owner, "ttl": ttl_ms, "poll": poll_ms},
                quota=self.quota_for(owner or listing),
                label=tool,
            )(tool, arguments, caller_snapshot())
        except QuotaExceeded as exc:
            data: dict[str, Any] = {"reason": exc.reason, "limit": exc.limit}
            if exc.retry_after is not None:
                data["retryAfterSeconds"] = exc.retry_after
            message = f"Task limit reached: {exc}"
            raise MCPError(code=LIMIT_REACHED, message=message, data=data) from None

        now = execution.added_at  # exactly the createdAt tasks/get will report
        return TaskView(
            task_id=execution.key,
            status="working",
            status_message=None,
            created_at=now,
            last_updated_at=now,
            ttl_ms=ttl_ms,
            poll_interval_ms=poll_ms,
            result=None,
            error=None,
            owner=owner,
            tool=tool,
        )

    def quota_for(self, caller: str | None) -> Quota | None:
        """The per-caller limits, if any are set: one quota per principal (or legacy
        session/connection); callers with no identity at all share one."""
        if self.max_unfinished_per_caller is None and self.max_creations_per_minute is None:
            return None
        return Quota(
            caller or "anonymous",
            max_unfinished=self.max_unfinished_per_caller,
            max_per_window=self.max_creations_per_minute,
            window=60.0,
        )

    def poll_ms_for(self, tool: Any) -> int:
        """A tool's own ``TaskConfig(poll_interval=...)``, else the extension's interval
        (fastmcp's default of 5 s would make clients poll needlessly slowly)."""
        interval = getattr(getattr(tool, "task_config", None), "poll_interval", None)
        if isinstance(interval, timedelta) and interval != DEFAULT_POLL_INTERVAL:
            return max(int(interval.total_seconds() * 1000), 1)
        return self.poll_interval_ms

    async def intercept_tool_call(
        self, params: Any, context: Context, call_next: Any
    ) -> ToolResult | BaseModel:
        """2026-07-28: the server turns an opted-in call of a task tool into a task.
        2025-11-25: the legacy middleware noted the call's ``task``; create it here, after
        fastmcp's middleware chain, and leave the answer to that middleware."""
        request = context.request_context
        noted = legacy_middleware.pending_task.get()
        if noted is not None and request is not None and noted.tool == params.name:
            legacy_middleware.pending_task.set(None)  # a nested call is not this task
            noted.view = await self.create(
                params.name,
                dict(params.arguments or {}),
                ttl_ms=noted.ttl_ms,
                owner=noted.owner,
                listing=noted.listing,
                poll_ms=noted.poll_ms,
            )
            return ToolResult(content=[])  # replaced by the nested CreateTaskResult
        if request is None or not sdk.is_client_tool_call():
            return await call_next()  # type: ignore[no-any-return]
        if request.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            if request.protocol_version not in TASK_VERSIONS:
                await self._refuse_task_only(context, params.name, request.protocol_version)
            return await call_next()  # type: ignore[no-any-return]
        tool = await context.fastmcp.get_tool(params.name)
        mode = tool.task_config.mode if tool is not None else "forbidden"
        if mode == "forbidden":
            return await call_next()  # type: ignore[no-any-return]
        if context.client_extension_settings(EXTENSION_ID) is None:
            if mode == "required":
                raise missing_capability(f"tool {params.name!r} can only run as a task")
            return await call_next()  # type: ignore[no-any-return]
        view = await self.create(
            params.name,
            dict(params.arguments or {}),
            ttl_ms=self.default_ttl_ms,
            owner=owner_of(None),
            listing=listing_of(None),  # the principal's, so its 2025-11-25 tasks/list shows it
            poll_ms=self.poll_ms_for(tool),
        )
        return modern.create_result(view)

    async def _refuse_task_only(self, context: Context, name: str, version: str) -> None:
        """A protocol version from before tasks cannot call a task-only tool: -32601, as
        2025-11-25 answers a required tool called without a task."""
        tool = await context.fastmcp.get_tool(name)
        if tool is not None and tool.task_config.mode == "required":
            raise MCPError(
                code=mcp_types.METHOD_NOT_FOUND,
                message=f"Tool {name!r} must be called as a task, which protocol version "
                f"{version} does not have",
            )

    # -- reading tasks -------------------------------------------------------------------

    async def load(self, task_id: str, owner: str | None) -> TaskView:
        """The caller's task, or -32602 exactly as for an id that never existed."""
        state = await self.docket.get(task_id)
        view = TaskView.of(state) if state is not None else None
        if view is None or not self.visible(view, owner):
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown task: {shown(task_id)}")
        return view

    @staticmethod
    def visible(view: TaskView, owner: str | None) -> bool:
        """A caller sees its own tasks only (and only tasks made by this extension)."""
        return bool(view.tool) and view.owner == owner

    def listen_owner(self, ctx: ServerRequestContext[Any, Any]) -> str | None:
        return owner_of(ctx)

    def follow_for_legacy_client(self, task_id: str, ctx: ServerRequestContext[Any, Any]) -> None:
        """Push this task's changes to the connection that created it while it is open."""
        connection = sdk.connection_of(ctx.session)
        if connection is None:
            return
        token = (ctx.meta or {}).get("progress_token")
        relay = push.spawn(self._relays, push.relay_legacy(self, task_id, connection, token))
        # The relays of one connection end with it: one clean-up per connection, not per task.
        relays: set[asyncio.Task[None]] | None = connection.state.get("mcp_tasks_relays")
        if relays is None:
            relays = connection.state["mcp_tasks_relays"] = set()
            connection.exit_stack.callback(_cancel_all, relays)
        relays.add(relay)
        relay.add_done_callback(relays.discard)

    def methods(self) -> Sequence[MethodBinding]:
        legacy_only = frozenset({LEGACY_VERSION})
        return [
            MethodBinding("tasks/get", TaskIdParams, self._get, protocol_versions=TASK_VERSIONS),
            MethodBinding(
                "tasks/cancel", TaskIdParams, self._cancel, protocol_versions=TASK_VERSIONS
            ),
            MethodBinding(
                "tasks/update",
                UpdateParams,
                self._update,
                protocol_versions=frozenset(MODERN_PROTOCOL_VERSIONS),
            ),
            MethodBinding(
                "tasks/result", TaskIdParams, self._result, protocol_versions=legacy_only
            ),
            MethodBinding("tasks/list", ListParams, self._list, protocol_versions=legacy_only),
        ]

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> Any:
        view = await self.load(params.task_id, self._caller(ctx, params.task_id))
        if view.status == "working" and self.settle > 0:
            view = await self._settled(view)
        if ctx.protocol_version == LEGACY_VERSION:
            return legacy.task_fields(view)
        return modern.detailed(view).wire()

    async def _settled(self, view: TaskView) -> TaskView:
        """A task polled within its first second that is still working gets ``settle``
        (20 ms by default) to change status before the answer goes out: most quick tasks end
        in that time, so a polling client's first ``tasks/get`` already finds the result
        instead of sleeping its poll interval. Pushed, not polled; older tasks are answered
        at once."""
        age = (datetime.now(UTC) - view.created_at).total_seconds()
        if age > 1.0:
            return view
        with anyio.move_on_after(self.settle), contextlib.suppress(TaskNotFound):
            async for state in self.docket.watch(view.task_id):
                current = TaskView.of(state)
                if current.status != "working":
                    return current
        return view

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> Any:
        view = await self.load(params.task_id, self._caller(ctx, params.task_id))
        legacy_dialect = ctx.protocol_version == LEGACY_VERSION
        if legacy_dialect and view.status in ("completed", "failed", "cancelled"):
            raise MCPError(
                code=INVALID_PARAMS, message=f"Task {params.task_id} is already {view.status}"
            )
        # The engine decides atomically: yes (the task will end cancelled, whatever its run
        # does meanwhile) or no (it had already ended).
        accepted = await self.docket.cancel(params.task_id)
        if legacy_dialect and not accepted:
            ended = await self.load(params.task_id, view.owner)
            raise MCPError(
                code=INVALID_PARAMS, message=f"Task {params.task_id} is already {ended.status}"
            )
        if not legacy_dialect:
            return {}
        # The legacy dialect answers with the task, cancelled before the reply: a running
        # task's worker stops it within milliseconds, so wait for that (briefly).
        with contextlib.suppress(TimeoutError):
            await self.docket.wait(params.task_id, timeout=5)
        return legacy.task_fields(await self.load(params.task_id, view.owner))

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateParams) -> Any:
        await self.load(params.task_id, self._caller(ctx, params.task_id))
        await self.docket.answer(params.task_id, params.input_responses)  # unknown: ignored
        return {}

    async def _result(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> Any:
        view = await self.load(params.task_id, self._caller(ctx, params.task_id))
        if view.status not in ("completed", "failed", "cancelled"):
            view = await self._follow_to_the_end(ctx, view)
        if view.status == "completed":
            return legacy.payload(view)
        if view.status == "cancelled":
            raise MCPError(code=-32603, message=f"Task {view.task_id} was cancelled")
        error = view.error or {"code": -32603, "message": "the task failed"}
        raise MCPError(code=error["code"], message=error["message"])

    async def _follow_to_the_end(
        self, ctx: ServerRequestContext[Any, Any], view: TaskView
    ) -> TaskView:
        """Wait (pushed, not polled) until the task ends; when it asks for input, elicit it
        from the client on this tasks/result request's stream, with related-task meta."""
        async for state in self.docket.watch(view.task_id):
            current = TaskView.of(state)
            if current.status in ("completed", "failed", "cancelled"):
                return current
            for question_id, request in (current.input_requests or {}).items():
                answer = await legacy_elicit(ctx, current.task_id, request)
                await self.docket.answer(current.task_id, {question_id: answer})
        raise TaskNotFound(view.task_id)  # pragma: no cover - watch ends on a terminal state

    async def _list(self, ctx: ServerRequestContext[Any, Any], params: ListParams) -> Any:
        listing = listing_of(ctx)
        after = decode_cursor(params.cursor)
        if listing is None:
            return legacy.list_result([], None)
        states, position = await self.docket.list_index(listing, after, LIST_PAGE)
        views = [TaskView.of(state) for state in states]
        cursor = encode_cursor(position) if position is not None else None
        return legacy.list_result(views, cursor)

    def _caller(
        self, ctx: ServerRequestContext[Any, Any], task_id: str | None = None
    ) -> str | None:
        if ctx.protocol_version != LEGACY_VERSION:
            extension = read_opt_in(ctx)
            if extension is None:
                raise missing_capability(f"{ctx.method} needs the {EXTENSION_ID} extension")
            check_name_header(ctx, task_id)
        return owner_of(ctx)


def shown(value: str, limit: int = 80) -> str:
    """A caller-supplied string as error messages quote it: shortened, so a 100 kB id does
    not come back as a 100 kB error, and repr'd, so control characters stay visible."""
    text = value if value.isprintable() else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_opt_in(ctx: ServerRequestContext[Any, Any]) -> dict[str, Any] | None:
    from fastmcp.server.extensions import read_client_extension_settings

    return read_client_extension_settings(ctx, EXTENSION_ID)


def missing_capability(message: str) -> MCPError:
    return MCPError(
        code=MISSING_CAPABILITY,
        message=message,
        data={"requiredCapabilities": {"extensions": {EXTENSION_ID: {}}}},
    )


def encode_cursor(position: IndexPosition) -> str:
    """tasks/list's opaque cursor: where the page ended (the docket's index position)."""
    return base64.urlsafe_b64encode(f"a:{position.created_ms}:{position.key}".encode()).decode()


def decode_cursor(cursor: str | None) -> IndexPosition | None:
    """An opaque cursor from tasks/list back to an index position; anything else is -32602."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, number, key = text.split(":", 2)
        # Only what encode_cursor makes: plain ASCII digits, short enough for Redis (< 2**63),
        # and a key a task could have.
        if prefix != "a" or not (number.isascii() and number.isdigit()) or len(number) > 15:
            raise ValueError(text)
        position = IndexPosition(int(number), check_task_key(key))
    except (ValueError, UnicodeError) as exc:
        raise MCPError(code=INVALID_PARAMS, message=f"Invalid cursor: {shown(cursor)}") from exc
    return position


def check_name_header(ctx: ServerRequestContext[Any, Any], task_id: str | None) -> None:
    """Streamable HTTP clients name the task in ``Mcp-Name`` so a load balancer can route
    on it; a header that names another task than the body is rejected (-32020)."""
    request = ctx.request
    headers = getattr(request, "headers", None)
    if task_id is None or headers is None:
        return
    named = decode_header_value(headers.get(MCP_NAME_HEADER))
    if named is not None and named != task_id:
        raise MCPError(
            code=HEADER_MISMATCH,
            message=f"Mcp-Name header {shown(named)!r} does not match params.taskId "
            f"{shown(task_id)!r}",
        )


async def legacy_elicit(
    ctx: ServerRequestContext[Any, Any], task_id: str, request: dict[str, Any]
) -> dict[str, Any]:
    """Send a task's ``elicitation/create`` to a 2025-11-25 client and return its answer."""
    if request.get("method") != "elicitation/create":
        return {"action": "cancel"}
    params = dict(request.get("params") or {})
    params["_meta"] = {**(params.get("_meta") or {}), RELATED_TASK_META: {"taskId": task_id}}
    try:
        result = await ctx.session.send_request(
            mcp_types.ElicitRequest(
                params=mcp_types.ElicitRequestFormParams.model_validate(params)
            ),
            mcp_types.ElicitResult,
            metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
        )
    except MCPError:
        return {"action": "cancel"}
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


def _cancel_all(tasks: set[asyncio.Task[None]]) -> None:
    for task in list(tasks):
        task.cancel()
