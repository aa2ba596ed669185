"""Chaos run: thousands of MCP tasks while workers are SIGKILLed and Redis restarts.

What runs, all on loopback:

* a ``redis-server`` of its own (free port, ``--appendonly yes --appendfsync always``, its
  files in a temporary directory): SIGKILLed once in the middle and started again on the
  same port and files;
* ``--servers`` HTTP server processes (``fastmcp run benchmarks/chaos_server.py``) with
  ``MCP_TASKS_WORKER=0``: API-only replicas, they create and read tasks but never run them;
* ``--workers`` worker processes (``mcp-tasks worker benchmarks/chaos_server.py --url ...``);
  about every ``--kill-every`` seconds a random one that is ready is SIGKILLed and a new one
  started, so that many keep running;
* ``--clients`` fastmcp ``Client``s over streamable HTTP, half in the 2026-07-28 dialect
  (``tools/call`` opted in to the tasks extension, then ``subscriptions/listen`` until the task
  ends, then ``tasks/get``), half in 2025-11-25 (task-augmented ``tools/call``, then the
  blocking ``tasks/result``, then ``tasks/get``), spread over the servers, ``--in-flight``
  tasks open at once.

The tool (``work(n, sleep_ms)`` in ``chaos_server.py``) journals every execution to a file
per worker process, independently of Redis. When every task has ended, workers stop, and the
audit compares four sources: what the clients read over MCP, a final ``tasks/get`` of every
task, the docket's own records, and the journal.

Honesty rules. Reads (``tasks/get``, ``tasks/result``, ``subscriptions/listen``) that fail
while Redis is down are retried, and counted. A ``tools/call`` that fails is counted and
retried as a new call: its first try may still have created a task whose answer never came
back, so the audit looks for such *orphans* among the docket's tasks (same ``n``, an id no
client holds), checks they also ended, and reports them; the tool ran for them too.

Figures: ``lost`` (must be 0) = a task a client holds that did not end, ended without the
right result, or was never executed; ``duplicates`` = executions of the tool beyond one per
task (from the journal), split into those explained by a SIGKILLed worker (the earlier run's
process was killed) and unexplained ones (two live workers ran it); ``redeliveries`` = runs
the engine started beyond one per task (its ``attempt``); ``terminal changes`` (must be 0) =
a task whose terminal state, once read, later read differently, or that the engine announced
as ended more than once (on its pub/sub channel, which the driver follows; what is published
while Redis is down is not heard by anyone, so that count is a lower bound).

    .venv/bin/python benchmarks/chaos.py                  # 10,000 tasks
    .venv/bin/python benchmarks/chaos.py --tasks 1000     # shorter; --help for the rest
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, this folder leads sys.path and its mcp.py would shadow the MCP SDK.
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != HERE]
BIN = Path(sys.executable).parent
SERVER_FILE = "benchmarks/chaos_server.py"
EXTENSION_ID = "io.modelcontextprotocol/tasks"
TERMINAL = ("completed", "failed", "cancelled")
REQUEST_TIMEOUT = 30.0
FOLLOW_TIMEOUT = 120.0


def expected(n: int) -> int:
    """The answer of ``work(n, ...)``; kept equal to ``chaos_server.expected``."""
    return n * n + 1


@dataclass(frozen=True)
class Settings:
    tasks: int = 10_000
    workers: int = 4
    concurrency: int = 10
    servers: int = 2
    clients: int = 8
    in_flight: int = 200
    kill_every: float = 1.0
    redelivery: float = 2.0
    sleep_min_ms: int = 5
    sleep_max_ms: int = 100
    redis_down: float = 1.0
    deadline: float = 900.0
    stall: float = 90.0
    seed: int = 1


@dataclass
class Report:
    """What a chaos run found; ``ok`` when nothing was lost and nothing double-finished."""

    tasks: int = 0
    modern_tasks: int = 0
    legacy_tasks: int = 0
    kills: int = 0
    worker_crashes: int = 0
    workers_started: int = 0
    redis_restarts: int = 0
    redis_outage_s: float = 0.0
    redeliveries: int = 0
    executions: int = 0
    duplicates: int = 0
    duplicates_explained: int = 0
    duplicates_unexplained: int = 0
    lost: int = 0
    failed: int = 0
    wrong_results: int = 0
    not_terminal: int = 0
    never_executed: int = 0
    terminal_changes: int = 0
    double_finish_events: int = 0
    create_errors: int = 0
    orphans: int = 0
    orphans_not_terminal: int = 0
    read_retries: int = 0
    reconnects: int = 0
    unreadable_at_end: int = 0
    wall_s: float = 0.0
    tasks_per_s: float = 0.0
    error_kinds: dict[str, int] = field(default_factory=dict)
    log_problems: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.terminal_changes == 0
            and self.double_finish_events == 0
            and self.orphans_not_terminal == 0
            and self.duplicates_unexplained == 0
            and self.unreadable_at_end == 0
        )

    def note(self, where: str, exc: BaseException) -> None:
        """Count an error the clients saw, by where and what (ids and ports blanked)."""
        text = f"{where}: " + re.sub(r"[0-9a-f]{32}|\b\d+\b", "#", describe(exc))
        self.error_kinds[text] = self.error_kinds.get(text, 0) + 1

    def table(self) -> str:
        rows = [
            (
                "tasks (2026-07-28 / 2025-11-25)",
                f"{self.tasks:,} ({self.modern_tasks:,} / {self.legacy_tasks:,})",
            ),
            ("worker SIGKILLs", f"{self.kills:,} ({self.workers_started:,} workers started)"),
            ("workers that exited by themselves (replaced)", f"{self.worker_crashes}"),
            ("redis restarts", f"{self.redis_restarts} ({self.redis_outage_s:.2f} s down)"),
            ("redeliveries (runs started beyond one per task)", f"{self.redeliveries:,}"),
            ("tool executions (journal)", f"{self.executions:,}"),
            ("duplicates (executions beyond one per task)", f"{self.duplicates:,}"),
            (
                "  of which after a SIGKILL of the earlier run's worker",
                f"{self.duplicates_explained:,}",
            ),
            ("  of which unexplained (must be 0)", f"{self.duplicates_unexplained:,}"),
            ("lost (must be 0)", f"{self.lost:,}"),
            (
                "  not terminal / wrong result / never executed",
                f"{self.not_terminal} / {self.wrong_results} / {self.never_executed}",
            ),
            ("failed", f"{self.failed:,}"),
            ("final tasks/get failing (must be 0)", f"{self.unreadable_at_end}"),
            (
                "terminal state changed or announced twice (must be 0)",
                f"{self.terminal_changes} / {self.double_finish_events}",
            ),
            ("tools/call errors, retried as new calls", f"{self.create_errors:,}"),
            (
                "  orphans: tasks made by an errored call (all ended?)",
                f"{self.orphans} ({'yes' if self.orphans_not_terminal == 0 else 'NO'})",
            ),
            ("reads retried (tasks/get, tasks/result, listen)", f"{self.read_retries:,}"),
            ("clients replaced after their connection broke", f"{self.reconnects:,}"),
            ("wall time", f"{self.wall_s:.1f} s"),
            (
                "tasks/s (tasks / wall time: first create to last end read)",
                f"{self.tasks_per_s:.1f}",
            ),
        ]
        lines = ["| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in rows]
        return "\n".join(lines)


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A redis-server of our own whose writes survive a SIGKILL (AOF, fsync always)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: redis-server)")
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            [
                *(binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while not ping(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the chaos redis-server did not start")
            time.sleep(0.02)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@dataclass(eq=False)
class Worker:
    process: subprocess.Popen[bytes]
    ready: bool = False
    killed: bool = False


class Fleet:
    """The server replicas and the worker processes, with their logs in one folder."""

    def __init__(self, settings: Settings, redis_url: str, name: str, folder: Path) -> None:
        self.settings = settings
        self.folder = folder
        self.journal = folder / "journal"
        self.journal.mkdir()
        self.env = {
            **os.environ,
            "MCP_TASKS_URL": redis_url,
            "MCP_TASKS_NAME": name,
            "CHAOS_REDELIVERY": str(settings.redelivery),
            "CHAOS_JOURNAL": str(self.journal),
            "PYTHONUNBUFFERED": "1",
        }
        self.servers: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        self.workers: list[Worker] = []
        self.killed_pids: set[int] = set()
        self.started = 0
        self._readers: set[asyncio.Task[None]] = set()

    def start_servers(self) -> None:
        ports = []
        for i in range(self.settings.servers):
            port = free_port()
            log = open(self.folder / f"server-{i}.log", "ab")  # noqa: SIM115
            command = [str(BIN / "fastmcp"), "run", SERVER_FILE, "--transport", "http"]
            self.servers.append(
                subprocess.Popen(
                    [*command, "--port", str(port), "--no-banner", "--log-level", "WARNING"],
                    cwd=ROOT,
                    env={**self.env, "MCP_TASKS_WORKER": "0"},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
            ports.append(port)
        for port, process in zip(ports, self.servers, strict=True):
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"a chaos server exited with {process.returncode}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("a chaos server did not start") from None
                    time.sleep(0.05)
            self.urls.append(f"http://127.0.0.1:{port}/mcp")

    def start_worker(self) -> Worker:
        self.started += 1
        log = open(self.folder / f"worker-{self.started}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            [
                *(str(BIN / "mcp-tasks"), "-v", "worker", SERVER_FILE, "--ready"),
                *("--url", self.env["MCP_TASKS_URL"]),
                *("--concurrency", str(self.settings.concurrency)),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        log.close()
        worker = Worker(process)
        self.workers.append(worker)
        reader = asyncio.create_task(self._await_ready(worker))
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        return worker

    async def _await_ready(self, worker: Worker) -> None:
        assert worker.process.stdout is not None
        line = await asyncio.to_thread(worker.process.stdout.readline)
        worker.ready = line.strip() == b"ready"

    async def until_ready(self) -> None:
        async with asyncio.timeout(60):
            while not all(w.ready for w in self.workers):
                if any(w.process.poll() is not None for w in self.workers):
                    raise RuntimeError("a chaos worker exited before it was ready")
                await asyncio.sleep(0.05)

    def replace_crashed(self) -> int:
        """Start a new worker for each that exited by itself; answer how many did."""
        crashed = [w for w in self.workers if w.process.poll() is not None]
        for worker in crashed:
            self.workers.remove(worker)
            self.start_worker()
        return len(crashed)

    def kill(self, worker: Worker) -> None:
        worker.process.kill()
        worker.process.wait(10)
        worker.killed = True
        self.killed_pids.add(worker.process.pid)
        with open(self.folder / "kills.log", "a") as kills:
            kills.write(f"{time.time():.3f} {worker.process.pid}\n")
        self.workers.remove(worker)

    def stop_workers(self) -> None:
        """SIGTERM: a worker stops claiming and finishes what it runs (nothing, by now)."""
        for worker in self.workers:
            worker.process.terminate()
        for worker in self.workers:
            try:
                worker.process.wait(30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(5)

    def close(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait(5)
        for process in self.servers:
            process.terminate()
        for process in self.servers:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def log_problems(self) -> list[str]:
        """Errors the workers and servers logged, counted by kind (outage warnings aside):
        ERROR lines, and the exception line that ends each traceback."""
        found: Counter[str] = Counter()
        for path in sorted(self.folder.glob("*.log")):
            if path.name == "redis.log":
                continue
            kind = "worker" if path.name.startswith("worker") else "server"
            in_traceback = False
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith("Traceback"):
                    in_traceback = True
                elif in_traceback and line and not line.startswith((" ", "During", "The above")):
                    found[f"{kind}: {line.strip()[:200]}"] += 1
                    in_traceback = False
                elif " ERROR " in line or "CRITICAL" in line:
                    found[f"{kind}: {line.split(' ', 2)[-1].strip()[:200]}"] += 1
        return [f"{count}x {text}" for text, count in found.most_common()]


# -- the clients -----------------------------------------------------------------------------


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


# -- the run ---------------------------------------------------------------------------------


async def chaos(settings: Settings, folder: Path, progress: bool = False) -> Report:
    """One chaos run in ``folder`` (logs, journal, Redis files stay there)."""
    from mcp_tasks.engine import Docket

    report = Report(tasks=settings.tasks)
    redis_dir = folder / "redis"
    redis_dir.mkdir()
    redis = RedisServer(redis_dir)
    redis.start()
    name = f"chaos-{os.getpid()}"
    fleet = Fleet(settings, redis.url, name, folder)
    rng = random.Random(settings.seed)
    finish_events: Counter[str] = Counter()
    stop = asyncio.Event()
    background: list[asyncio.Task[None]] = []
    slots: list[Slot] = []
    try:
        async with Docket(name=name, url=redis.url) as docket:
            docket.hub.on_every_event(
                lambda e: finish_events.update([e.key]) if e.status in TERMINAL else None
            )
            await docket.hub.start()
            await asyncio.to_thread(fleet.start_servers)
            for _ in range(settings.workers):
                fleet.start_worker()
            await fleet.until_ready()
            observed = Observed()
            for i in range(settings.clients):
                dialect = "modern" if i % 2 == 0 else "legacy"
                url = fleet.urls[(i // 2) % len(fleet.urls)]  # each dialect on every server
                slots.append(Slot(i, dialect, url, observed))
                await slots[-1].open()
            driver = Driver(settings, report)

            async def killer() -> None:
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        pause = settings.kill_every * rng.uniform(0.5, 1.5)
                        await asyncio.wait_for(stop.wait(), pause)
                    if stop.is_set():
                        return
                    report.worker_crashes += fleet.replace_crashed()
                    ready = [w for w in fleet.workers if w.ready and w.process.poll() is None]
                    if not ready:
                        continue
                    fleet.kill(rng.choice(ready))
                    report.kills += 1
                    fleet.start_worker()

            async def restarter() -> None:
                await driver.halfway.wait()
                if stop.is_set():
                    return
                down = time.monotonic()
                redis.kill()
                await asyncio.sleep(settings.redis_down)
                await asyncio.to_thread(redis.start)
                report.redis_outage_s = time.monotonic() - down
                report.redis_restarts += 1

            async def ticker() -> None:
                while not stop.is_set():
                    await asyncio.sleep(5)
                    overdue: Any = "?"
                    with contextlib.suppress(Exception):
                        overdue = len(
                            await docket.client.xpending_range(
                                docket.keys.stream,
                                "workers",
                                min="-",
                                max="+",
                                count=1000,
                                idle=int(settings.redelivery * 1000),
                            )
                        )
                    print(
                        f"  {time.monotonic() - started:5.0f}s: {driver.done:,} of "
                        f"{settings.tasks:,} ended, {report.kills} kills, "
                        f"{report.redis_restarts} redis restarts, {overdue} overdue for "
                        f"redelivery; open: {stuck(jobs)[:160]}",
                        file=sys.stderr,
                        flush=True,
                    )

            jobs = []
            for n in range(settings.tasks):
                slot = slots[n % len(slots)]
                sleep_ms = random.Random(settings.seed * 1_000_003 + n).randint(
                    settings.sleep_min_ms, settings.sleep_max_ms
                )
                jobs.append(Job(n, slot.dialect, sleep_ms, slot))
            report.modern_tasks = sum(job.dialect == "modern" for job in jobs)
            report.legacy_tasks = settings.tasks - report.modern_tasks
            started = time.monotonic()
            background = [asyncio.create_task(killer()), asyncio.create_task(restarter())]
            if progress:
                background.append(asyncio.create_task(ticker()))
            runs = [asyncio.create_task(driver.run(job)) for job in jobs]
            pending = await supervise(settings, report, fleet, driver, runs, background)
            if pending:
                report.details.append(f"open when stopped: {stuck(jobs)}")
            report.wall_s = time.monotonic() - started
            stop.set()
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if report.redis_restarts == 0:
                report.details.append("the run ended before the Redis restart could happen")
            fleet.stop_workers()
            await audit(settings, report, docket, driver, jobs, observed, fleet, finish_events)
    finally:
        stop.set()
        for task in background:
            task.cancel()
        for slot in slots:
            await slot.close()
        fleet.close()
        redis.kill()
    report.reconnects = sum(slot.reconnects for slot in slots)
    report.log_problems = fleet.log_problems()[:20]
    report.workers_started = fleet.started
    report.tasks_per_s = settings.tasks / report.wall_s if report.wall_s else 0.0
    return report


async def supervise(
    settings: Settings,
    report: Report,
    fleet: Fleet,
    driver: Driver,
    runs: list[asyncio.Task[None]],
    background: list[asyncio.Task[None]],
) -> set[asyncio.Task[None]]:
    """Wait for every task to be followed to its end; stop early (the rest counts as lost)
    past the deadline, when no task has ended for ``stall`` seconds, when a server process
    died, or when the killer or the Redis restarter failed. Answers the unfinished runs."""
    started = last_change = time.monotonic()
    last_done = -1
    pending = set(runs)
    while pending:
        _, pending = await asyncio.wait(pending, timeout=1.0)
        now = time.monotonic()
        if driver.done != last_done:
            last_done, last_change = driver.done, now
        problem = None
        if now - started > settings.deadline:
            problem = f"the deadline of {settings.deadline:g}s passed"
        elif now - last_change > settings.stall:
            problem = f"no task ended for {settings.stall:g}s"
        elif any(p.poll() is not None for p in fleet.servers):
            problem = "a server process died"
        for task in background:
            if task.done() and not task.cancelled() and task.exception() is not None:
                problem = f"the chaos itself failed: {describe(task.exception())}"  # type: ignore[arg-type]
        if problem is not None and pending:
            report.details.append(f"stopped early with {len(pending)} tasks open: {problem}")
            break
    return pending


def stuck(jobs: list[Job]) -> str:
    """Where the unfinished jobs are: counts by (dialect, client, stage)."""
    where = Counter(
        f"{j.dialect} client {j.slot.index} {j.stage}" for j in jobs if j.stage != "ended"
    )
    return ", ".join(f"{count} {place}" for place, count in sorted(where.items()))


def read_journal(folder: Path) -> dict[str, list[tuple[int, int, bool, int]]]:
    """Per task id: its executions as (attempt, pid, ended, n), in journal order."""
    starts: dict[tuple[str, int, int], list[Any]] = {}
    runs: defaultdict[str, list[list[Any]]] = defaultdict(list)
    for path in sorted(folder.glob("worker-*.log")):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 6:
                continue  # a line cut by the SIGKILL cannot happen (one write), but be safe
            kind, task = parts[0], parts[1]
            attempt, pid, n = (int(p) for p in parts[2:5])
            if kind == "S":
                record = [attempt, pid, False, n]
                runs[task].append(record)
                starts[task, attempt, pid] = record
            elif kind == "E" and (task, attempt, pid) in starts:
                starts[task, attempt, pid][2] = True
    return {task: [tuple(r) for r in records] for task, records in runs.items()}  # type: ignore[misc]


async def audit(
    settings: Settings,
    report: Report,
    docket: Any,
    driver: Driver,
    jobs: list[Job],
    observed: Observed,
    fleet: Fleet,
    finish_events: Counter[str],
) -> None:
    import pydantic_core

    journal = read_journal(fleet.journal)
    held = {job.task_id for job in jobs if job.task_id}
    # 1. What the clients read, and a final tasks/get of every task: one terminal state.
    gate = asyncio.Semaphore(100)

    async def final(job: Job) -> tuple[Job, dict[str, Any]]:
        async with gate:
            return job, await driver.reread(job)

    rereads = await asyncio.gather(*(final(job) for job in jobs if job.task_id))
    for job, got in rereads:
        right = job.status == "completed" and job.value == expected(job.n)
        if job.status not in TERMINAL:
            report.not_terminal += 1
            report.details.append(f"n={job.n} {job.task_id}: not terminal ({job.status})")
        elif job.status == "failed":
            report.failed += 1
            report.details.append(f"n={job.n} {job.task_id}: failed")
        elif not right:
            report.wrong_results += 1
            report.details.append(f"n={job.n} {job.task_id}: {job.status} with {job.value!r}")
        if not got:
            report.unreadable_at_end += 1
            report.details.append(f"n={job.n} {job.task_id}: the final tasks/get kept failing")
        elif job.status in TERMINAL and (
            got.get("status") != job.status or got.get("lastUpdatedAt") != job.updated
        ):
            report.terminal_changes += 1
            report.details.append(
                f"n={job.n} {job.task_id}: read {job.status} at {job.updated}, later "
                f"{got.get('status')} at {got.get('lastUpdatedAt')}"
            )
        pushed = observed.terminal.get(job.task_id or "", set())
        if pushed - {job.status}:
            report.terminal_changes += 1
            report.details.append(f"n={job.n} {job.task_id}: pushed {pushed}, read {job.status}")
        if job.task_id not in journal and job.status == "completed":
            report.never_executed += 1
    report.not_terminal += sum(1 for job in jobs if not job.task_id)
    report.lost = report.not_terminal + report.wrong_results + report.never_executed
    # 2. The docket's own records: attempts, orphans, and terminal announcements.
    prefix = docket.keys.run_prefix
    keys = [k.decode() async for k in docket.client.scan_iter(match=f"{docket.keys.pattern}")]
    run_keys = [k[len(prefix) :] for k in keys if k.startswith(prefix)]
    attempts: dict[str, int] = {}
    for key in run_keys:
        state = await docket.get(key)
        if state is None:
            continue
        attempts[key] = state.attempt
        if key not in held:
            report.orphans += 1
            raw = await docket.client.hget(docket.keys.run(key), "call")
            with contextlib.suppress(Exception):
                _tool, arguments = pydantic_core.from_json(raw)["a"]
                report.details.append(f"orphan {key} (n={arguments.get('n')}): {state.status}")
            if not state.terminal:
                report.orphans_not_terminal += 1
    report.redeliveries = sum(max(a - 1, 0) for a in attempts.values())
    report.double_finish_events = sum(1 for count in finish_events.values() if count > 1)
    for key, count in finish_events.items():
        if count > 1 and len(report.details) < 40:
            report.details.append(f"{key}: announced terminal {count} times")
    # 3. The journal: every execution, and why a task ran more than once.
    report.executions = sum(len(runs) for runs in journal.values())
    for key, runs in journal.items():
        if len(runs) < 2:
            continue
        report.duplicates += len(runs) - 1
        live = [r for r in runs if r[1] not in fleet.killed_pids]
        killed = len(runs) - len(live)
        # Every run but one must have died with its worker; the one left may be live.
        explained = min(killed, len(runs) - 1)
        report.duplicates_explained += explained
        report.duplicates_unexplained += len(runs) - 1 - explained
        if len(live) > 1 and len(report.details) < 40:
            report.details.append(f"{key}: run by live workers {[(r[0], r[1]) for r in live]}")


def parse() -> argparse.Namespace:
    defaults = Settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=type(value), default=value)
    parser.add_argument("--json", action="store_true", help="print the report as JSON too")
    parser.add_argument("--keep", action="store_true", help="keep the logs and journal")
    return parser.parse_args()


async def _interruptible(run: Any) -> Report:
    """SIGTERM cancels the run, so its clean-up (killing every process) still happens."""
    task = asyncio.ensure_future(run)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    result: Report = await task
    return result


HOW = """
How errors were handled: a read (tasks/get, tasks/result, subscriptions/listen) that failed was
retried and counted; a tools/call that failed was counted and made again as a new call (its
first try may have made a task whose answer was lost: such orphans are searched for among the
docket's tasks by their argument n, and must have ended too); a client whose connection broke
was replaced by a new one with the same bearer token (the same principal, so it reads the same
tasks). Lost, duplicates and terminal checks compare the clients' reads with a final tasks/get
of every task, the engine's own records and events, and the tool's journal of every run."""


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="  [chaos driver] %(name)s: %(message)s")
    args = parse()
    settings = Settings(**{k: getattr(args, k) for k in asdict(Settings())})
    folder = Path(tempfile.mkdtemp(prefix="mcp-tasks-chaos-"))
    print(
        f"chaos: {settings.tasks:,} tasks, {settings.workers} workers (c={settings.concurrency}),"
        f" {settings.servers} servers, {settings.clients} clients, SIGKILL every "
        f"~{settings.kill_every:g}s, redelivery {settings.redelivery:g}s; files in {folder}",
        file=sys.stderr,
    )
    try:
        report = asyncio.run(_interruptible(chaos(settings, folder, progress=True)))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(report.table())
    print(HOW)
    if report.error_kinds:
        print("\nerrors the clients saw (each counted and retried), by kind:")
        kinds = sorted(report.error_kinds.items(), key=lambda kv: -kv[1])
        print("\n".join(f"- {count}x {kind}" for kind, count in kinds[:20]))
    if report.details:
        print("\ndetails:")
        print("\n".join(f"- {d}" for d in report.details[:40]))
    if report.log_problems:
        print("\nerror lines in the worker/server logs:")
        print("\n".join(f"- {p}" for p in report.log_problems))
    if args.json:
        print(json.dumps(asdict(report)))
    print(f"\nverdict: {'OK' if report.ok else 'PROBLEMS FOUND'}")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
