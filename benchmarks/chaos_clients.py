"""The clients of a chaos run (``benchmarks/chaos.py``): MCP clients of both task dialects that
are replaced when their connection breaks, and the driver that creates and follows every task
through them, counting every retry.

A module of its own so that chaos.py stays a readable size; chaos.py imports it from this
folder (see the note on sys.path there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaos import Report, Settings

TERMINAL = ("completed", "failed", "cancelled")
REQUEST_TIMEOUT = 30.0
FOLLOW_TIMEOUT = 120.0


class Observed:
    """Terminal states the clients were told about by push, per task."""

    def __init__(self) -> None:
        self.terminal: defaultdict[str, set[str]] = defaultdict(set)

    def extension(self, method: str) -> Any:
        from mcp.client.extension import ClientExtension, NotificationBinding
        from pydantic import BaseModel, ConfigDict

        class TaskNote(BaseModel):
            model_config = ConfigDict(extra="allow")
            taskId: str
            status: str

        observed = self

        class Binding(ClientExtension):
            identifier = "chaos.example/task-notifications"

            def notifications(self) -> list[NotificationBinding[Any]]:
                async def handle(params: TaskNote) -> None:
                    if params.status in TERMINAL:
                        observed.terminal[params.taskId].add(params.status)

                return [NotificationBinding(method=method, params_type=TaskNote, handler=handle)]

        return Binding()


async def modern(client: Any, method: str, params: dict[str, Any], timeout: float) -> Any:  # noqa: ASYNC109 - the SDK's own per-request timeout
    """A raw 2026-07-28 request that opts in to the tasks extension."""
    from mcp_tasks.client import raw_request

    return await raw_request(client, method, params, opt_in=True, timeout=timeout)


async def legacy(client: Any, method: str, params: dict[str, Any], timeout: float) -> Any:  # noqa: ASYNC109
    """A raw 2025-11-25 request (the SDK client would validate a task answer away)."""
    from mcp_tasks.client import raw_request

    return await raw_request(client, method, params, timeout=timeout)


class Slot:
    """One MCP client (one dialect, one server, one bearer token) that is replaced when its
    connection breaks.

    Why replacing is needed: in mcp 2.3's streamable HTTP client every request's POST runs in
    one task group, and a transport error on one POST (a connection the server dropped) ends
    that group, so every later request of that client fails. A new client with the same
    token is the same principal, and tasks are bound to the principal (not to the HTTP
    session, as an unauthenticated 2025-11-25 client's would be), so it reads them all.
    """

    def __init__(self, index: int, dialect: str, url: str, observed: Observed) -> None:
        self.index = index
        self.dialect = dialect
        self.url = url
        self.observed = observed
        self.client: Any = None
        self.generation = 0
        self.reconnects = 0
        self._lock = asyncio.Lock()

    def _make(self) -> Any:
        from fastmcp import Client

        method = "notifications/tasks" if self.dialect == "modern" else "notifications/tasks/status"
        return Client(
            self.url,
            auth=token(self.index),
            mode="auto" if self.dialect == "modern" else "legacy",
            timeout=FOLLOW_TIMEOUT,
            extensions=[self.observed.extension(method)],
        )

    async def open(self) -> None:
        client = self._make()
        await client.__aenter__()
        self.client = client

    async def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await self.client.__aexit__(None, None, None)
            self.client = None

    async def call(self, method: str, params: dict[str, Any], timeout: float) -> Any:  # noqa: ASYNC109
        client, generation = self.client, self.generation
        send = modern if self.dialect == "modern" else legacy
        try:
            return await send(client, method, params, timeout)
        except Exception as exc:
            if broken(exc):
                await self._replace(generation)
            raise

    async def _replace(self, generation: int) -> None:
        async with self._lock:
            if generation != self.generation:
                return  # another caller already replaced it
            old, delay = self.client, 0.1
            while True:
                try:
                    await self.open()  # callers keep using the old one until this is done
                    break
                except Exception:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
            self.generation += 1
            self.reconnects += 1
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await old.__aexit__(None, None, None)


def broken(exc: BaseException) -> bool:
    """Whether an error means the client itself is unusable (not an answer of the server)."""
    from mcp.shared.exceptions import MCPError
    from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

    if isinstance(exc, MCPError):
        return exc.error.code in (CONNECTION_CLOSED, REQUEST_TIMEOUT)
    return not isinstance(exc, RuntimeError)  # ours: "not a task", "ended at status ..."


def token(index: int) -> str:
    """Client ``index``'s bearer token; ``chaos_server.py`` accepts ``TOKENS`` of them."""
    return f"chaos-client-{index}"


@dataclass
class Job:
    n: int
    dialect: str
    sleep_ms: int
    slot: Slot
    task_id: str | None = None
    status: str | None = None
    value: Any = None
    updated: str | None = None
    stage: str = "waiting"
    create_errors: int = 0


class Driver:
    """Creates and follows every task through the MCP clients, counting every retry."""

    def __init__(self, settings: Settings, report: Report) -> None:
        self.settings = settings
        self.report = report
        self.done = 0
        self.halfway = asyncio.Event()
        self.gate = asyncio.Semaphore(settings.in_flight)

    async def run(self, job: Job) -> None:
        async with self.gate:
            job.stage = "creating"
            job.task_id = await self.create(job)
            job.stage = "following"
            await self.follow(job)
            job.stage = "ended"
        self.done += 1
        if self.done * 2 >= self.settings.tasks:
            self.halfway.set()

    async def create(self, job: Job) -> str:
        """tools/call until one answers with a task. A call that errors may still have
        made a task (its answer lost): the audit finds such orphans in the docket."""
        arguments = {"n": job.n, "sleep_ms": job.sleep_ms}
        params: dict[str, Any] = {"name": "work", "arguments": arguments}
        if job.dialect == "legacy":
            params["task"] = {"ttl": 3_600_000}
        delay = 0.05
        while True:
            try:
                answer = await job.slot.call("tools/call", dict(params), REQUEST_TIMEOUT)
                task = answer if job.dialect == "modern" else (answer.get("task") or {})
                if task.get("taskId") and (job.dialect == "legacy" or task.get("resultType")):
                    return str(task["taskId"])
                raise RuntimeError(f"not a task: {json.dumps(answer)[:200]}")
            except Exception as exc:
                self.report.create_errors += 1
                job.create_errors += 1
                self.report.note(f"tools/call, {job.dialect} client {job.slot.index}", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def follow(self, job: Job) -> None:
        """Wait (pushed) until the task ends, then read it; retry reads until then."""
        assert job.task_id is not None
        ref = {"taskId": job.task_id}
        call = job.slot.call
        delay = 0.05
        while True:
            try:
                if job.dialect == "modern":
                    listen = {"notifications": {"taskIds": [job.task_id]}}
                    await call("subscriptions/listen", listen, FOLLOW_TIMEOUT)
                    got = await call("tasks/get", ref, REQUEST_TIMEOUT)
                    value = ((got.get("result") or {}).get("structuredContent") or {}).get("result")
                else:
                    value = None
                    try:
                        payload = await call("tasks/result", ref, FOLLOW_TIMEOUT)
                        value = (payload.get("structuredContent") or {}).get("result")
                    finally:  # a failed task raises here; its tasks/get still tells
                        got = await call("tasks/get", ref, REQUEST_TIMEOUT)
                if got.get("status") in TERMINAL:
                    job.status, job.value = got["status"], value
                    job.updated = got.get("lastUpdatedAt")
                    return
                raise RuntimeError(f"the follow ended at status {got.get('status')!r}")
            except Exception as exc:
                self.report.read_retries += 1
                self.report.note(f"read, {job.dialect} client {job.slot.index}", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def reread(self, job: Job) -> dict[str, Any]:
        """The final tasks/get of the audit (retried like every read)."""
        assert job.task_id is not None
        for _ in range(20):
            try:
                got: dict[str, Any] = await job.slot.call(
                    "tasks/get", {"taskId": job.task_id}, REQUEST_TIMEOUT
                )
                return got
            except Exception as exc:
                self.report.read_retries += 1
                self.report.note(f"final read, {job.dialect} client {job.slot.index}", exc)
                await asyncio.sleep(0.2)
        return {}


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
