"""The ``Tasks`` fastmcp extension: task tools on a docket, served in both task dialects.

This module is registration and lifecycle: it reads the options (:mod:`.config`), opens the
docket and the in-process worker, installs the request gate (:mod:`.request_gate`), the
``subscriptions/listen`` handler and the legacy push relays (:mod:`.push`), binds the tasks/*
methods to :mod:`.handlers`, adds the dashboard and metrics routes, and turns an opted-in
2026-07-28 ``tools/call`` of a task tool into a task (:meth:`Tasks.intercept_tool_call`).
What is done with tasks lives in :mod:`.service`.

Which dialect a request speaks is decided by the protocol version its connection negotiated:
2026-07-28 (extension ``io.modelcontextprotocol/tasks``), 2025-11-25 (SEP-1686), or an older
one, which has no tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any, TypeVar

import mcp_types
from fastmcp.server.context import Context
from fastmcp.server.extensions import MethodBinding
from fastmcp.tools.base import ToolResult
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel

from .. import sdk
from ..engine import Docket, Worker
from ..protocol import EXTENSION_ID, LEGACY_VERSION, TASK_VERSIONS, modern
from ..protocol.requests import ListParams, TaskIdParams, UpdateParams
from . import dashboard, handlers, metrics, push, request_gate
from .collector import HEAP
from .config import TasksConfig, switch
from .errors import missing_capability
from .identity import listing_of, owner_of
from .legacy_push import LegacyRelays
from .runner import TOOL_FUNCTION, call_tool
from .service import TaskService

ParamsT = TypeVar("ParamsT", bound=BaseModel)
Handler = Callable[[TaskService, ServerRequestContext[Any, Any], ParamsT], Awaitable[Any]]


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

    ``min_replicas`` (or ``MCP_TASKS_MIN_REPLICAS``; 0, off, by default) makes every task
    creation, terminal state, cancellation and answered input wait until that many Redis
    replicas confirmed it (``WAIT``, at most ``replica_timeout`` seconds, or
    ``MCP_TASKS_REPLICA_TIMEOUT``; 1 s by default): a handle is given out only for a task the
    replicas have, so it survives a failover of the primary. A creation the replicas do not
    confirm in time is withdrawn and answered with an error (see :mod:`..engine.scripts`).
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
        poll_interval: timedelta | float = timedelta(seconds=10),
        redelivery_timeout: timedelta | float = timedelta(seconds=30),
        max_argument_bytes: int = 1_000_000,
        max_result_bytes: int = 10_000_000,
        max_unfinished_per_caller: int | None = None,
        max_creations_per_minute: int | None = None,
        encryption_key: str | None = None,
        settle: timedelta | float = timedelta(milliseconds=20),
        dashboard: bool | None = None,
        metrics: bool | None = None,
        min_replicas: int | None = None,
        replica_timeout: timedelta | float | None = None,
    ) -> None:
        self.config = TasksConfig.build(
            url,
            name=name,
            worker=worker,
            concurrency=concurrency,
            default_ttl=default_ttl,
            max_ttl=max_ttl,
            poll_interval=poll_interval,
            redelivery_timeout=redelivery_timeout,
            max_argument_bytes=max_argument_bytes,
            max_result_bytes=max_result_bytes,
            max_unfinished_per_caller=max_unfinished_per_caller,
            max_creations_per_minute=max_creations_per_minute,
            encryption_key=encryption_key,
            settle=settle,
            dashboard=dashboard,
            metrics=metrics,
            min_replicas=min_replicas,
            replica_timeout=replica_timeout,
        )
        self._service: TaskService | None = None
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._users = 0
        self._frozen = False
        self.relays = LegacyRelays(lambda: self.service)

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
        if self._service is not None:
            self._users += 1
            return
        config = self.config
        docket = Docket(
            name=config.docket_name,
            url=config.url,
            codec=config.codec,
            min_replicas=config.min_replicas,
            replica_timeout=config.replica_timeout,
        )
        await docket.open()
        self._users += 1
        server = self.server

        async def run_tool(
            tool: str, arguments: dict[str, Any], caller: dict[str, Any] | None = None
        ) -> dict[str, Any]:
            return await call_tool(
                server, tool, arguments, caller, max_result_bytes=config.max_result_bytes
            )

        docket.register(run_tool, name=TOOL_FUNCTION)
        self._service = TaskService(docket, config)
        served = {binding.method: binding.protocol_versions for binding in self.methods()}
        request_gate.install(server, config, served, self.relays.follow)
        push.install_listen(server, lambda: self.service)
        if config.run_worker:
            self._worker = Worker(
                docket, concurrency=config.concurrency, redelivery_timeout=config.redelivery_timeout
            )
            await self._worker.start()
            self._worker_task = asyncio.create_task(self._worker.run_forever())
        if switch(None, "MCP_TASKS_GC_FREEZE"):
            # Full collections walking the loaded heap and the open streams took a quarter
            # of a replica's CPU in a burst, and paused it for a second with 5,000 streams
            # open (scale.py): see collector.py.
            self._frozen = True
            HEAP.start()

    async def stop(self) -> None:
        self._users -= 1
        if self._users > 0 or self._service is None:
            return
        await self.relays.close()
        if self._frozen:
            self._frozen = False
            HEAP.stop()
        if self._worker is not None:
            await self._worker.stop()
            self._worker = None
        if self._worker_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task
            self._worker_task = None
        await self._service.docket.close()
        self._service = None

    def on_registered(self, server: Any) -> None:
        """Add the HTTP routes, before any HTTP app is built."""
        # Custom routes bypass the server's auth: a server that authenticates its callers
        # must not show every caller's activity to anyone unless its operator says so.
        config = self.config
        config.dashboard = switch(config.dashboard, "MCP_TASKS_DASHBOARD", server.auth is None)
        config.metrics = switch(config.metrics, "MCP_TASKS_METRICS", server.auth is None)
        routes = []
        if config.dashboard:
            routes += dashboard.routes(lambda: self.docket)
        if config.metrics:
            routes += metrics.routes(lambda: self.docket)
        for route in routes:
            server.custom_route(route.path, sorted(route.methods or ()), route.name)(route.endpoint)

    @property
    def service(self) -> TaskService:
        if self._service is None:
            raise RuntimeError("the Tasks extension is not running (the server has not started)")
        return self._service

    @property
    def docket(self) -> Docket:
        return self.service.docket

    def settings(self) -> dict[str, Any]:
        return {}

    # -- tasks/* -------------------------------------------------------------------------

    def methods(self) -> Sequence[MethodBinding]:
        legacy_only = frozenset({LEGACY_VERSION})
        modern_only = frozenset(MODERN_PROTOCOL_VERSIONS)
        return [
            MethodBinding(
                "tasks/get",
                TaskIdParams,
                self._bound(handlers.get),
                protocol_versions=TASK_VERSIONS,
            ),
            MethodBinding(
                "tasks/cancel",
                TaskIdParams,
                self._bound(handlers.cancel),
                protocol_versions=TASK_VERSIONS,
            ),
            MethodBinding(
                "tasks/update",
                UpdateParams,
                self._bound(handlers.update),
                protocol_versions=modern_only,
            ),
            MethodBinding(
                "tasks/result",
                TaskIdParams,
                self._bound(handlers.result),
                protocol_versions=legacy_only,
            ),
            MethodBinding(
                "tasks/list",
                ListParams,
                self._bound(handlers.list_tasks),
                protocol_versions=legacy_only,
            ),
        ]

    def _bound(
        self, handler: Handler[ParamsT]
    ) -> Callable[[ServerRequestContext[Any, Any], ParamsT], Awaitable[Any]]:
        async def handle(ctx: ServerRequestContext[Any, Any], params: ParamsT) -> Any:
            return await handler(self.service, ctx, params)

        return handle

    # -- tools/call ----------------------------------------------------------------------

    async def intercept_tool_call(
        self, params: Any, context: Context, call_next: Any
    ) -> ToolResult | BaseModel:
        """2026-07-28: the server turns an opted-in call of a task tool into a task.
        2025-11-25: the legacy middleware noted the call's ``task``; create it here, after
        fastmcp's middleware chain, and leave the answer to that middleware."""
        request = context.request_context
        noted = request_gate.pending_task.get()
        if noted is not None and request is not None and noted.tool == params.name:
            request_gate.pending_task.set(None)  # a nested call is not this task
            noted.view = await self.service.create(
                params.name,
                dict(params.arguments or {}),
                ttl_ms=noted.ttl_ms,
                owner=noted.owner,
                listing=noted.listing,
                poll=noted.poll,
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
        view = await self.service.create(
            params.name,
            dict(params.arguments or {}),
            ttl_ms=self.config.default_ttl_ms,
            owner=owner_of(None),
            listing=listing_of(None),  # the principal's, so its 2025-11-25 tasks/list shows it
            poll=self.config.poll_for(tool),
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
