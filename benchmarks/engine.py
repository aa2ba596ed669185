"""Benchmark the mcp-tasks engine against pydocket and taskiq, on the same local Redis.

What it measures, in one run, for ``mcp_tasks.engine``, ``pydocket`` (tuned, see below) and
``taskiq`` with ``taskiq-redis``' ``RedisStreamBroker``, all with a no-op task:

* enqueue throughput, one task per call and batched;
* drain throughput of ONE worker process at several concurrencies (pre-filled queue);
* enqueue→start latency p50/p99 at a low rate (on Redis; for mcp-tasks also memory://);
* Redis commands and Redis CPU per task over the whole lifecycle (enqueue + drain);
* Redis commands per second of an idle worker, and the worker's RSS after a drain;
* for mcp-tasks, how many pub/sub connections 1,000 concurrent ``wait()`` calls use.

It prints one markdown table of medians over ``--runs`` runs, the versions, and a check of
the targets. Run it from the repository root, in its own venv (never the project's .venv):

    python3 -m venv .bench-venv
    .bench-venv/bin/pip install -r benchmarks/requirements.txt
    .bench-venv/bin/python benchmarks/engine.py            # full: --runs 3 --tasks 5000
    .bench-venv/bin/python benchmarks/engine.py --quick    # smoke run, about a minute
    .bench-venv/bin/python benchmarks/engine.py --help     # sizes, systems, --redis-url

Method, and why it is fair:

* Every worker runs in its own subprocess (this file with ``--child``), one process per
  system, so its RSS is its own; the parent enqueues. All three use the same redis-py (one
  venv) and the default asyncio loop. Every measurement uses fresh, unique key names, and
  the parent deletes those keys afterwards.
* pydocket is tuned for short tasks: ``minimum_check_interval`` 10 ms (``--pydocket-check-ms``;
  its 250 ms default caps short tasks near concurrency ÷ 0.25 s, and 10 ms still caps them
  near concurrency ÷ 10 ms) and ``?max_connections=1000`` (redis-py 8 caps a pool at 100,
  which breaks pydocket at concurrency 100). "idle at its defaults" runs it untuned. taskiq runs its
  ``Receiver`` with ``max_async_tasks`` = concurrency and otherwise default settings.
* Drain: N tasks are enqueued (batched) while the worker process is connected but idle;
  then it is told to start, and its clock runs from just before the worker starts until
  every task body has run in that process (a local counter, no Redis) AND the consumer
  group has no pending entry left (``XINFO GROUPS``). All three engines acknowledge an entry
  only once the task's outcome is recorded (mcp-tasks and pydocket in the same Lua script that
  writes the terminal state; taskiq after "saving" to its dummy result backend), so this is
  "all N tasks finished and recorded" for each of them. The probe runs only after the
  counter reached N, and its commands are excluded from the counts.
* Commands and CPU per task: ``INFO commandstats`` and ``INFO cpu`` are read before the
  enqueue and after the drain (deltas, no ``CONFIG RESETSTAT``), so they cover the task's
  whole lifecycle, including the worker's own background traffic during the drain. Commands
  run inside Lua scripts count one each, plus one for the script call (Redis counts both).
  "Redis CPU" is the server main thread's CPU time (``used_cpu_*_main_thread``): commands,
  scripts, parsing and socket I/O. "command time" sums ``usec`` of ``INFO commandstats``;
  it is an upper bound because a script's usec already includes its inner commands.
* Redis: by default the benchmark starts its own ``redis-server`` (the one on PATH) on a free
  loopback port, persistence off, and kills it at the end, so no other client's traffic can
  land in the counts or slow a measurement. ``--redis-url redis://127.0.0.1:6379/0`` uses an
  existing server instead; other clients' traffic then shows in the per-command breakdown.
* Latency: the worker process is up and idle; the parent adds one task at a time on a fixed
  schedule (``--latency-rate``/s) and notes ``time.time()`` just before each add; the task
  body notes ``time.time()`` when it starts, in the worker process (same host clock).
  memory:// is in-process by design, so that measurement runs worker and enqueuer in the
  parent.
* Idle: a worker with nothing to do, after a warm-up, over ``--idle-seconds`` (default 30 s,
  a multiple of mcp-tasks' 10 s read block, 15 s sweep and 30 s promote periods).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

SYSTEMS = ("mcp-tasks", "pydocket", "taskiq")
COLUMNS = {"mcp-tasks": "mcp-tasks", "pydocket": "pydocket (tuned)", "taskiq": "taskiq"}
TASK_NAME = "bench.noop"
PROTOCOL_PREFIX = "@@"
# Commands this harness itself sends while a stats window is open; never counted.
HARNESS_COMMANDS = frozenset({"info", "xinfo|groups", "client|list"})
SCRIPT_COMMANDS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})
PYDOCKET_CHECK_MS = 10.0  # the tuned minimum_check_interval (--pydocket-check-ms)
PYDOCKET_MAX_CONNECTIONS = 1000
TASKIQ_KICK_CHUNK = 500
MISSING = "-"


# -- the task every system runs ------------------------------------------------------------


class Recorder:
    """When each no-op task body started in this process; local, never touches Redis."""

    def __init__(self) -> None:
        self.starts: dict[int, float] = {}
        self.expect = 0
        self._reached = asyncio.Event()

    def reset(self, expect: int) -> None:
        self.starts = {}
        self.expect = expect
        self._reached = asyncio.Event()

    def hit(self, i: int) -> None:
        self.starts.setdefault(i, time.time())
        if self.expect and len(self.starts) >= self.expect:
            self._reached.set()

    async def reached(self) -> None:
        await self._reached.wait()


RECORDER = Recorder()


async def noop(i: int) -> None:
    """The benchmark task: record that task ``i`` started, and return."""
    RECORDER.hit(i)


async def taskiq_noop(i: int) -> None:
    """The same task for taskiq, which renames the function it registers (``__name__``)."""
    RECORDER.hit(i)


# -- the three systems, behind one small interface -------------------------------------------


class System:
    """One engine as the benchmark drives it: enqueue, run a worker, probe its stream."""

    kind = ""
    keeps_state = True

    def __init__(
        self, name: str, url: str, *, pydocket_check_ms: float | None = PYDOCKET_CHECK_MS
    ) -> None:
        self.name = name
        self.url = url
        # pydocket only: its tuned minimum_check_interval; None runs it at its defaults
        self.pydocket_check_ms = pydocket_check_ms
        self._run: asyncio.Task[Any] | None = None
        self._probe: Redis | None = None

    async def open(self, *, worker_side: bool = False) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        if self._probe is not None:
            await self._probe.aclose()
            self._probe = None

    async def add_one(self, i: int) -> str:
        raise NotImplementedError

    async def add_batch(self, ids: Sequence[int]) -> list[str]:
        raise NotImplementedError

    async def start_worker(self, concurrency: int) -> None:
        raise NotImplementedError

    async def stop_worker(self) -> None:
        raise NotImplementedError

    async def completed(self, key: str) -> bool | None:
        """Whether the stored state of ``key`` says completed (None: keeps no state)."""
        return None

    def stream_and_group(self) -> tuple[str, str]:
        raise NotImplementedError

    async def connect_probe(self) -> None:
        """A separate connection for the harness's XINFO probe, opened before timing."""
        self._probe = Redis.from_url(self.url)
        await self._probe.ping()

    async def pending(self) -> int:
        """Entries delivered to the consumer group and not yet acknowledged."""
        assert self._probe is not None
        stream, group = self.stream_and_group()
        for info in await self._probe.xinfo_groups(stream):
            name = info["name"]
            if (name.decode() if isinstance(name, bytes) else name) == group:
                return int(info["pending"])
        return 0

    async def _await_run(self, limit: float) -> None:
        """Wait for the worker's task to end; cancel it after ``limit`` seconds, and give up
        (with a note on stderr) if it does not even end then, so a stop is always bounded."""
        run, self._run = self._run, None
        if run is None:
            return
        await asyncio.wait([run], timeout=limit)
        if not run.done():
            run.cancel()
            await asyncio.wait([run], timeout=2)
        if not run.done():
            log(f"{self.kind}: the worker task did not end when cancelled; leaving it")
        elif not run.cancelled() and run.exception() is not None:
            log(f"{self.kind}: the worker task ended with {run.exception()!r}")


class McpTasks(System):
    kind = "mcp-tasks"

    async def open(self, *, worker_side: bool = False) -> None:
        from mcp_tasks.engine import Docket

        self.docket = Docket(name=self.name, url=self.url)
        self.docket.register(noop, name=TASK_NAME)
        await self.docket.open()

    async def close(self) -> None:
        await self.docket.close()
        await super().close()

    async def add_one(self, i: int) -> str:
        return (await self.docket.add(TASK_NAME)(i)).key

    async def add_batch(self, ids: Sequence[int]) -> list[str]:
        return [e.key for e in await self.docket.add_many(TASK_NAME, [(i,) for i in ids])]

    async def start_worker(self, concurrency: int) -> None:
        from mcp_tasks.engine import Worker

        self.worker = Worker(self.docket, concurrency=concurrency)
        await self.worker.start()
        self._run = asyncio.create_task(self.worker.run_forever())

    async def stop_worker(self) -> None:
        async with asyncio.timeout(20):
            await self.worker.stop(grace=5)
        await self._await_run(5)

    async def completed(self, key: str) -> bool | None:
        from mcp_tasks.engine import Status

        state = await self.docket.get(key)
        return state is not None and state.status is Status.COMPLETED and bool(state.started_at)

    def stream_and_group(self) -> tuple[str, str]:
        from mcp_tasks.engine.keys import GROUP

        return self.docket.keys.stream, GROUP


class PyDocket(System):
    kind = "pydocket"

    async def open(self, *, worker_side: bool = False) -> None:
        import docket

        url = self.url
        if self.pydocket_check_ms is not None:
            url += ("&" if "?" in url else "?") + f"max_connections={PYDOCKET_MAX_CONNECTIONS}"
        self.docket = docket.Docket(name=self.name, url=url)
        await self.docket.__aenter__()
        self.docket.register(noop)

    async def close(self) -> None:
        await self.docket.__aexit__(None, None, None)
        await super().close()

    async def add_one(self, i: int) -> str:
        return str((await self.docket.add(noop)(i)).key)

    async def add_batch(self, ids: Sequence[int]) -> list[str]:
        executions = await self.docket.add_many([self.docket.call(noop)(i) for i in ids])
        return [str(e.key) for e in executions]

    async def start_worker(self, concurrency: int) -> None:
        import docket

        if self.pydocket_check_ms is not None:
            self.worker = docket.Worker(
                self.docket,
                concurrency=concurrency,
                minimum_check_interval=timedelta(milliseconds=self.pydocket_check_ms),
            )
        else:
            self.worker = docket.Worker(self.docket, concurrency=concurrency)
        await self.worker.__aenter__()
        self._run = asyncio.create_task(self.worker.run_forever())

    async def stop_worker(self) -> None:
        async with asyncio.timeout(20):  # in this task: pydocket resets context variables
            await self.worker.__aexit__(None, None, None)
        await self._await_run(5)

    async def completed(self, key: str) -> bool | None:
        from docket.execution import ExecutionState

        execution = await self.docket.get_execution(key)
        if execution is None:
            return False
        await execution.sync()
        return execution.state is ExecutionState.COMPLETED and execution.started_at is not None

    def stream_and_group(self) -> tuple[str, str]:
        return str(self.docket.stream_key), str(self.docket.worker_group_name)


class Taskiq(System):
    kind = "taskiq"
    keeps_state = False

    async def open(self, *, worker_side: bool = False) -> None:
        from taskiq_redis import RedisStreamBroker

        # consumer_id="0": read entries added before the group existed (default "$" skips them)
        self.broker = RedisStreamBroker(
            self.url,
            queue_name=self.name,
            consumer_group_name=f"{self.name}-group",
            consumer_id="0",
        )
        self.broker.is_worker_process = worker_side
        self.task = self.broker.register_task(taskiq_noop, task_name=TASK_NAME)
        await self.broker.startup()

    async def close(self) -> None:
        await self.broker.shutdown()
        await super().close()

    async def add_one(self, i: int) -> str:
        return str((await self.task.kiq(i)).task_id)

    async def add_batch(self, ids: Sequence[int]) -> list[str]:
        # taskiq has no batch API: the closest a user gets is many concurrent kiq() calls.
        keys: list[str] = []
        for start in range(0, len(ids), TASKIQ_KICK_CHUNK):
            chunk = ids[start : start + TASKIQ_KICK_CHUNK]
            tasks = await asyncio.gather(*(self.task.kiq(i) for i in chunk))
            keys.extend(str(t.task_id) for t in tasks)
        return keys

    async def start_worker(self, concurrency: int) -> None:
        from taskiq.receiver import Receiver

        self._finish = asyncio.Event()
        receiver = Receiver(self.broker, max_async_tasks=concurrency, run_startup=False)
        self._run = asyncio.create_task(receiver.listen(self._finish))

    async def stop_worker(self) -> None:
        self._finish.set()  # the receiver's own graceful stop
        await self._await_run(5)

    def stream_and_group(self) -> tuple[str, str]:
        return self.name, f"{self.name}-group"


def make_system(
    kind: str, name: str, url: str, *, pydocket_check_ms: float | None = PYDOCKET_CHECK_MS
) -> System:
    classes: dict[str, type[System]] = {
        "mcp-tasks": McpTasks,
        "pydocket": PyDocket,
        "taskiq": Taskiq,
    }
    return classes[kind](name, url, pydocket_check_ms=pydocket_check_ms)


# -- the worker subprocess ---------------------------------------------------------------


def emit(event: str, **data: Any) -> None:
    print(PROTOCOL_PREFIX + json.dumps({"event": event, **data}), flush=True)


def log(message: str) -> None:
    """A timestamped line on the worker process's stderr (kept in its log file)."""
    print(f"{time.strftime('%H:%M:%S')} {os.getpid()} {message}", file=sys.stderr, flush=True)


def rss_kb(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def child_main(spec: dict[str, Any]) -> None:
    """Worker process: connect, say ready, then obey go / report / stop from stdin."""
    system = make_system(
        spec["system"], spec["name"], spec["url"], pydocket_check_ms=spec["pydocket_check_ms"]
    )
    await system.open(worker_side=True)
    await system.connect_probe()
    RECORDER.reset(spec["expect"])
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    emit("ready", pid=os.getpid())
    watcher: asyncio.Task[None] | None = None
    started = False
    try:
        while True:
            line = await reader.readline()
            if not line:
                break  # the parent went away
            command = json.loads(line)["cmd"]
            log(f"command {command}")
            if command == "go":
                t0 = time.perf_counter()
                await system.start_worker(spec["concurrency"])
                started = True
                emit("started")
                if spec["drain"]:
                    watcher = asyncio.create_task(_report_drained(system, t0))
            elif command == "report":
                await RECORDER.reached()
                emit("report", starts={str(k): v for k, v in RECORDER.starts.items()})
            elif command == "stop":
                break
    finally:
        if watcher is not None:
            watcher.cancel()
        if started:
            await system.stop_worker()
            log("worker stopped")
        await system.close()
        log("closed")
        emit("stopped")
        sys.stderr.flush()
        # Leave at once: a peer's stuck task (taskiq's receiver, sometimes) must not hold
        # the process in asyncio.run()'s final cancel-and-wait.
        os._exit(0)


async def _report_drained(system: System, t0: float) -> None:
    await RECORDER.reached()
    while True:  # the probe: every entry acknowledged, i.e. every outcome recorded
        if await system.pending() == 0:
            break
        await asyncio.sleep(0.001)
    seconds = time.perf_counter() - t0
    emit("done", seconds=seconds, rss_kb=rss_kb(), count=len(RECORDER.starts))


class Child:
    """The parent's handle on one worker subprocess."""

    live: set[Child] = set()  # noqa: RUF012 - every child still running, for the last resort

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    @classmethod
    async def spawn(
        cls,
        system: str,
        name: str,
        url: str,
        *,
        concurrency: int,
        expect: int = 0,
        drain: bool = False,
        pydocket_check_ms: float | None,
    ) -> Child:
        spec = {
            "system": system,
            "name": name,
            "url": url,
            "concurrency": concurrency,
            "expect": expect,
            "drain": drain,
            "pydocket_check_ms": pydocket_check_ms,
        }
        fd, log = tempfile.mkstemp(prefix=f"bench-{system}-", suffix=".log")
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--child",
                json.dumps(spec),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=fd,
            )
        finally:
            os.close(fd)
        child = cls(proc, Path(log))
        cls.live.add(child)
        await child.receive("ready", 60)
        return child

    async def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": command}).encode() + b"\n")
        await self.proc.stdin.drain()

    async def receive(self, event: str, limit: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                line = await asyncio.wait_for(self.proc.stdout.readline(), left)
            except TimeoutError:
                raise TimeoutError(
                    f"worker process gave no {event!r} within {limit:g}s; its stderr ends:\n"
                    + self.stderr_tail()
                ) from None
            if not line:
                raise RuntimeError(f"worker process died before {event!r}:\n{self.stderr_tail()}")
            text = line.decode(errors="replace").strip()
            if not text.startswith(PROTOCOL_PREFIX):
                continue
            message: dict[str, Any] = json.loads(text[len(PROTOCOL_PREFIX) :])
            if message["event"] == event:
                return message

    def stderr_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def close(self) -> None:
        """Ask it to stop; kill it if it has not ended within 30 s."""
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.send("stop")
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                print(
                    f"killing worker process {self.proc.pid}; its stderr ends:\n"
                    + self.stderr_tail(),
                    file=sys.stderr,
                )
                self.proc.kill()
                await self.proc.wait()
        Child.live.discard(self)
        with contextlib.suppress(OSError):
            self.log.unlink()

    @classmethod
    async def close_all(cls) -> None:
        for child in list(cls.live):
            await child.close()


# -- Redis statistics --------------------------------------------------------------------


@dataclass
class Snapshot:
    calls: dict[str, int]
    usec: dict[str, int]
    cpu: float


@dataclass
class Usage:
    """Redis work between two snapshots, per task."""

    commands: float
    scripts: float
    cpu_us: float
    command_us: float
    by_command: dict[str, float]


async def snapshot(admin: Redis) -> Snapshot:
    stats = await admin.info("commandstats")
    cpu = await admin.info("cpu")
    calls: dict[str, int] = {}
    usec: dict[str, int] = {}
    for key, value in stats.items():
        name = key.removeprefix("cmdstat_")
        calls[name] = int(value["calls"])
        usec[name] = int(value["usec"])
    main = cpu.get("used_cpu_user_main_thread")
    if main is not None:
        seconds = float(main) + float(cpu["used_cpu_sys_main_thread"])
    else:
        seconds = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    return Snapshot(calls, usec, seconds)


def usage(before: Snapshot, after: Snapshot, per: float) -> Usage:
    by_command: dict[str, float] = {}
    command_us = 0.0
    for name, calls in after.calls.items():
        if name in HARNESS_COMMANDS:
            continue
        delta = calls - before.calls.get(name, 0)
        if delta:
            by_command[name] = delta / per
        command_us += after.usec[name] - before.usec.get(name, 0)
    scripts = sum(v for k, v in by_command.items() if k in SCRIPT_COMMANDS)
    return Usage(
        commands=sum(by_command.values()),
        scripts=scripts,
        cpu_us=(after.cpu - before.cpu) * 1e6 / per,
        command_us=command_us / per,
        by_command=by_command,
    )


async def delete_keys(admin: Redis, name: str) -> None:
    batch: list[bytes] = []
    async for key in admin.scan_iter(match=f"*{name}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            await admin.unlink(*batch)
            batch = []
    if batch:
        await admin.unlink(*batch)


def own_tcp_ports() -> set[int]:
    """Local ports of this process's TCP sockets (to find its own entries in CLIENT LIST)."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                cols = row.split()
                if cols[9] in inodes:
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


async def own_pubsub_connections(admin: Redis) -> int:
    ports = own_tcp_ports()
    clients = await admin.client_list(_type="pubsub")
    return sum(1 for c in clients if int(str(c["addr"]).rsplit(":", 1)[1]) in ports)


# -- the measurements --------------------------------------------------------------------


@dataclass
class Config:
    url: str
    runs: int
    tasks: int
    single: int
    concurrencies: tuple[int, ...]
    latency_tasks: int
    latency_rate: float
    idle_seconds: float
    waiters: int
    systems: tuple[str, ...]
    pydocket_check_ms: float


@dataclass
class Results:
    """Every sample, by (system, metric); the table shows medians."""

    samples: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, system: str, metric: str, value: float) -> None:
        self.samples.setdefault((system, metric), []).append(value)

    def median(self, system: str, metric: str) -> float | None:
        values = self.samples.get((system, metric))
        return statistics.median(values) if values else None


class Bench:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.results = Results()
        self.token = os.urandom(3).hex()
        self.counter = 0
        self.admin = Redis.from_url(config.url)

    def make(self, kind: str, name: str, url: str | None = None) -> System:
        return make_system(
            kind, name, url or self.config.url, pydocket_check_ms=self.config.pydocket_check_ms
        )

    async def spawn(
        self,
        kind: str,
        name: str,
        *,
        concurrency: int,
        expect: int = 0,
        drain: bool = False,
        tuned: bool = True,
    ) -> Child:
        """A worker process for ``kind``; ``tuned=False`` runs pydocket at its defaults."""
        return await Child.spawn(
            kind,
            name,
            self.config.url,
            concurrency=concurrency,
            expect=expect,
            drain=drain,
            pydocket_check_ms=self.config.pydocket_check_ms if tuned else None,
        )

    def fresh_name(self, what: str) -> str:
        self.counter += 1
        return f"bench-{self.token}-{what}{self.counter}"

    async def guarded(self, label: str, action: Callable[[], Awaitable[None]]) -> None:
        """Run one measurement; a failure or timeout is noted, and the run goes on."""
        try:
            await action()
        except Exception as exc:
            message = f"{label}: FAILED ({type(exc).__name__}: {exc})"
            print(f"  {message}", file=sys.stderr)
            for child in Child.live:
                print(
                    f"  worker process {child.proc.pid} said:\n{child.stderr_tail()}",
                    file=sys.stderr,
                )
            self.results.notes.append(message)
        finally:
            await Child.close_all()

    # -- enqueue, one at a time ----------------------------------------------------------

    async def enqueue_single(self, kind: str) -> None:
        name = self.fresh_name("single")
        system = self.make(kind, name)
        await system.open()
        try:
            n = self.config.single
            t0 = time.perf_counter()
            for i in range(n):
                await system.add_one(i)
            rate = n / (time.perf_counter() - t0)
        finally:
            await system.close()
            await delete_keys(self.admin, name)
        self.results.add(kind, "enqueue_single", rate)
        print(f"  {kind}: single enqueue {rate:,.0f}/s", file=sys.stderr)

    # -- drain: batched enqueue, then one worker process empties the queue ---------------

    async def drain(self, kind: str, concurrency: int) -> None:
        n = self.config.tasks
        name = self.fresh_name(f"c{concurrency}-")
        child = await self.spawn(kind, name, concurrency=concurrency, expect=n, drain=True)
        system = self.make(kind, name)
        await system.open()
        try:
            before = await snapshot(self.admin)
            t0 = time.perf_counter()
            keys = await system.add_batch(range(n))
            enqueue_rate = n / (time.perf_counter() - t0)
            await child.send("go")
            done = await child.receive("done", 30 + n / 50)
            after = await snapshot(self.admin)
            checked = [await system.completed(k) for k in (keys[0], keys[len(keys) // 2], keys[-1])]
        finally:
            await child.close()
            await system.close()
            await delete_keys(self.admin, name)
        spent = usage(before, after, n)
        rate = n / done["seconds"]
        results = self.results
        results.add(kind, "enqueue_batch", enqueue_rate)
        results.add(kind, f"drain_c{concurrency}", rate)
        results.add(kind, f"commands_c{concurrency}", spent.commands)
        results.add(kind, f"scripts_c{concurrency}", spent.scripts)
        results.add(kind, f"cpu_c{concurrency}", spent.cpu_us)
        results.add(kind, f"command_us_c{concurrency}", spent.command_us)
        results.add(kind, f"rss_c{concurrency}", done["rss_kb"] / 1024)
        results.breakdown[f"{kind} c={concurrency}"] = spent.by_command
        if system.keeps_state and not all(checked):
            results.notes.append(f"{kind} c={concurrency}: a sampled task's state is not completed")
        print(
            f"  {kind} c={concurrency}: enqueue {enqueue_rate:,.0f}/s, drain {rate:,.0f}/s, "
            f"{spent.commands:.1f} cmds/task, {spent.cpu_us:.0f} µs CPU/task, "
            f"RSS {done['rss_kb'] / 1024:.0f} MB, state {checked}",
            file=sys.stderr,
        )

    # -- enqueue→start latency at a low rate ---------------------------------------------

    async def latency(self, kind: str, *, memory: bool = False) -> None:
        k = self.config.latency_tasks
        name = self.fresh_name("lat")
        metric = "latency_memory" if memory else "latency"
        url = f"memory://{name}" if memory else self.config.url
        child: Child | None = None
        in_process = False
        system = self.make(kind, name, url)
        await system.open(worker_side=memory)
        try:
            if memory:
                RECORDER.reset(k)
                await system.start_worker(50)
                in_process = True
            else:
                child = await self.spawn(kind, name, concurrency=50, expect=k)
                await child.send("go")
                await child.receive("started", 30)
            await asyncio.sleep(0.5)
            enqueued: dict[int, float] = {}
            first = time.monotonic() + 0.05
            for i in range(k):
                await asyncio.sleep(
                    max(0.0, first + i / self.config.latency_rate - time.monotonic())
                )
                enqueued[i] = time.time()
                await system.add_one(i)
            if child is not None:
                await child.send("report")
                report = await child.receive("report", 30)
                starts = {int(key): float(v) for key, v in report["starts"].items()}
            else:
                await asyncio.wait_for(RECORDER.reached(), 30)
                starts = dict(RECORDER.starts)
        finally:
            if in_process:
                await system.stop_worker()
            if child is not None:
                await child.close()
            await system.close()
            if not memory:
                await delete_keys(self.admin, name)
        delays = sorted((starts[i] - enqueued[i]) * 1000 for i in range(k))
        p50 = statistics.median(delays)
        p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))]
        self.results.add(kind, f"{metric}_p50", p50)
        self.results.add(kind, f"{metric}_p99", p99)
        where = "memory://" if memory else "redis://"
        print(f"  {kind} {where}: p50 {p50:.2f} ms, p99 {p99:.2f} ms", file=sys.stderr)

    # -- an idle worker's Redis traffic ---------------------------------------------------

    async def idle(self, kind: str, *, tuned: bool = True) -> None:
        name = self.fresh_name("idle")
        child = await self.spawn(kind, name, concurrency=50, tuned=tuned)
        try:
            await child.send("go")
            await child.receive("started", 30)
            await asyncio.sleep(2.0)  # let start-up traffic settle
            before = await snapshot(self.admin)
            await asyncio.sleep(self.config.idle_seconds)
            after = await snapshot(self.admin)
        finally:
            await child.close()
            await delete_keys(self.admin, name)
        spent = usage(before, after, self.config.idle_seconds)
        metric = "idle" if tuned else "idle_defaults"
        self.results.add(kind, metric, spent.commands)
        self.results.breakdown[f"{kind} idle{'' if tuned else ' (defaults)'}, per second"] = (
            spent.by_command
        )
        print(
            f"  {kind} idle{'' if tuned else ' (defaults)'}: {spent.commands:.2f} cmds/s",
            file=sys.stderr,
        )

    # -- 1,000 concurrent wait()ers in one process (mcp-tasks) ---------------------------

    async def waiters(self) -> None:
        n = self.config.waiters
        name = self.fresh_name("wait")
        system = McpTasks(name, self.config.url)
        await system.open()
        child: Child | None = None
        try:
            baseline = await own_pubsub_connections(self.admin)
            keys = await system.add_batch(range(n))
            waits = asyncio.gather(*(system.docket.wait(k, timeout=120) for k in keys))
            await asyncio.sleep(1.0)  # every wait() has subscribed and read its state by now
            during = await own_pubsub_connections(self.admin) - baseline
            child = await self.spawn("mcp-tasks", name, concurrency=100)
            t0 = time.perf_counter()
            await child.send("go")
            states = await asyncio.wait_for(waits, 120)
            seconds = time.perf_counter() - t0
        finally:
            if child is not None:
                await child.close()
            await system.close()
            await delete_keys(self.admin, name)
        completed = sum(1 for s in states if s.status.value == "completed")
        self.results.add("mcp-tasks", "waiters_pubsub", during)
        self.results.add("mcp-tasks", "waiters_completed", completed)
        self.results.add("mcp-tasks", "waiters_seconds", seconds)
        print(
            f"  mcp-tasks: {n} waiters on {during} pub/sub connection(s); {completed} returned "
            f"completed, {seconds:.2f} s after the worker was told to start",
            file=sys.stderr,
        )

    # -- the whole run ---------------------------------------------------------------------

    async def run(self) -> None:
        config = self.config
        for run in range(config.runs):
            print(f"run {run + 1}/{config.runs}: throughput", file=sys.stderr)
            for kind in config.systems:
                await self.guarded(f"{kind} single enqueue", partial(self.enqueue_single, kind))
            for concurrency in config.concurrencies:
                for kind in config.systems:
                    await self.guarded(
                        f"{kind} drain c={concurrency} (run {run + 1})",
                        partial(self.drain, kind, concurrency),
                    )
        print("latency", file=sys.stderr)
        for kind in config.systems:
            await self.guarded(f"{kind} latency", partial(self.latency, kind))
        if "mcp-tasks" in config.systems:
            await self.guarded(
                "mcp-tasks memory:// latency", partial(self.latency, "mcp-tasks", memory=True)
            )
            print("waiters", file=sys.stderr)
            await self.guarded("mcp-tasks waiters", self.waiters)
        print("idle", file=sys.stderr)
        for kind in config.systems:
            await self.guarded(f"{kind} idle", partial(self.idle, kind))
        if "pydocket" in config.systems:
            await self.guarded(
                "pydocket idle (defaults)", partial(self.idle, "pydocket", tuned=False)
            )


# -- the report --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    label: str
    metric: str
    higher_is_better: bool | None  # None: no ratio
    fmt: str = "{:,.0f}"


def rows(config: Config) -> list[Row]:
    out = [
        Row("enqueue, one task per call (tasks/s) ↑", "enqueue_single", True),
        Row("enqueue, batched (tasks/s) ↑ ¹", "enqueue_batch", True),
    ]
    out += [
        Row(f"drain, 1 worker process, c={c} (tasks/s) ↑", f"drain_c{c}", True)
        for c in config.concurrencies
    ]
    out += [
        Row("enqueue→start p50, redis:// (ms) ↓", "latency_p50", False, "{:.2f}"),
        Row("enqueue→start p99, redis:// (ms) ↓", "latency_p99", False, "{:.2f}"),
        Row("enqueue→start p50, memory:// in-process (ms) ↓", "latency_memory_p50", None, "{:.2f}"),
        Row("enqueue→start p99, memory:// in-process (ms) ↓", "latency_memory_p99", None, "{:.2f}"),
    ]
    for c in config.concurrencies:
        out += [
            Row(f"Redis commands/task, enqueue+drain c={c} ↓ ²", f"commands_c{c}", False, "{:.1f}"),
            Row(f"  of which script calls (EVALSHA), c={c}", f"scripts_c{c}", None, "{:.2f}"),
            Row(f"Redis CPU µs/task (INFO cpu), c={c} ↓ ³", f"cpu_c{c}", False, "{:.1f}"),
            Row(
                f"Redis command µs/task (commandstats), c={c} ↓ ⁴",
                f"command_us_c{c}",
                False,
                "{:.1f}",
            ),
        ]
    top = max(config.concurrencies)
    out += [
        Row("idle worker, Redis commands/s ↓", "idle", False, "{:.2f}"),
        Row("idle worker at its defaults, Redis commands/s", "idle_defaults", None, "{:.2f}"),
        Row(f"worker RSS after a drain at c={top} (MB) ↓", f"rss_c{top}", False, "{:.0f}"),
        Row(
            f"{config.waiters:,} concurrent wait()ers: pub/sub connections", "waiters_pubsub", None
        ),
        Row(
            f"{config.waiters:,} concurrent wait()ers: returned completed",
            "waiters_completed",
            None,
        ),
    ]
    return out


def cell(results: Results, system: str, row: Row) -> str:
    values = results.samples.get((system, row.metric))
    if not values:
        return MISSING
    return row.fmt.format(statistics.median(values))


def ratio(results: Results, config: Config, row: Row) -> str:
    if row.higher_is_better is None:
        return ""
    ours = results.median("mcp-tasks", row.metric)
    peers = [
        v
        for s in config.systems
        if s != "mcp-tasks"
        if (v := results.median(s, row.metric)) is not None
    ]
    if ours is None or not peers:
        return MISSING
    best = max(peers) if row.higher_is_better else min(peers)
    if best == 0:
        return MISSING
    return f"{ours / best:.2f}x"


def table(results: Results, config: Config) -> str:
    head = ["metric (median of runs)", *(COLUMNS[s] for s in config.systems), "ours ÷ best peer"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows(config):
        cells = [cell(results, s, row) for s in config.systems]
        if all(c == MISSING for c in cells):
            continue
        lines.append("| " + " | ".join([row.label, *cells, ratio(results, config, row)]) + " |")
    state = [
        "yes" if make_system(s, "x", "redis://x").keeps_state else "no" for s in config.systems
    ]
    lines.append("| keeps per-task execution state | " + " | ".join(state) + " | |")
    return "\n".join(lines)


def footnotes(config: Config) -> str:
    return "\n".join(
        [
            f"¹ batched = the pre-fill of each drain ({config.tasks:,} tasks): mcp-tasks "
            "add_many (one script call per 500), pydocket add_many (pipelined chunks of 1,000), "
            f"taskiq has no batch API: concurrent kiq() calls, {TASKIQ_KICK_CHUNK} at a time.",
            "² every command Redis ran, those inside Lua scripts included (a script call counts "
            "once more), from INFO commandstats, divided by the number of tasks.",
            "³ Redis main-thread CPU time (INFO cpu), commands and socket I/O, per task.",
            "⁴ Σ usec of INFO commandstats per task; an upper bound, since a script's time "
            "already includes the commands it runs, which are counted again on their own.",
            "↑ higher is better, ↓ lower is better; the ratio is ours ÷ the best peer's value.",
        ]
    )


def targets(results: Results, config: Config) -> list[str]:
    out: list[str] = []

    def check(label: str, ok: bool | None) -> None:
        out.append(
            f"- [{'x' if ok else ' '}] {label}" + ("" if ok is not None else " (not measured)")
        )

    m = results.median
    for c in config.concurrencies:
        ours = m("mcp-tasks", f"drain_c{c}")
        pyd = m("pydocket", f"drain_c{c}")
        tiq = m("taskiq", f"drain_c{c}")
        if ours is not None and pyd:
            check(f"drain c={c} ≥ 5x tuned pydocket: {ours / pyd:.1f}x", ours >= 5 * pyd)
        if ours is not None and tiq:
            check(f"drain c={c} ≥ 2x taskiq: {ours / tiq:.1f}x", ours >= 2 * tiq)
        cmds = m("mcp-tasks", f"commands_c{c}")
        if cmds is not None:
            check(f"≤ 8 Redis commands/task at c={c}: {cmds:.1f}", cmds <= 8)
        cpu = m("mcp-tasks", f"cpu_c{c}")
        if cpu is not None:
            check(f"≤ 40 µs Redis CPU/task at c={c}: {cpu:.1f}", cpu <= 40)
    for metric, where in (("latency_p99", "Redis"), ("latency_memory_p99", "memory://")):
        p99 = m("mcp-tasks", metric)
        check(
            f"p99 enqueue→start < 5 ms on {where}: " + (f"{p99:.2f} ms" if p99 else MISSING),
            None if p99 is None else p99 < 5,
        )
    idle = m("mcp-tasks", "idle")
    check(
        f"idle worker ≤ 1 command/s: {idle:.2f}" if idle is not None else "idle worker",
        None if idle is None else idle <= 1,
    )
    subs = m("mcp-tasks", "waiters_pubsub")
    done = m("mcp-tasks", "waiters_completed")
    check(
        f"{config.waiters:,} concurrent wait()ers on one pub/sub connection: "
        f"{subs if subs is None else int(subs)} connection(s), "
        f"{done if done is None else int(done)} completed",
        None if subs is None else subs == 1 and done == config.waiters,
    )
    return out


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def git_revision() -> str:
    """The checkout's commit (with -dirty for uncommitted changes), or "unknown"."""
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


async def versions(admin: Redis) -> str:
    server = await admin.info("server")
    parts = [
        f"Python {platform.python_version()}",
        f"Redis server {server['redis_version']}",
        f"redis-py {package_version('redis')} (shared by all three, one venv)",
        f"hiredis {package_version('hiredis')}",
        f"mcp-tasks {package_version('mcp-tasks')} (git {git_revision()})",
        f"pydocket {package_version('pydocket')}",
        f"taskiq {package_version('taskiq')}",
        f"taskiq-redis {package_version('taskiq-redis')}",
        f"fakeredis {package_version('fakeredis')}",
        f"{os.cpu_count()} CPUs",
    ]
    return ", ".join(parts)


def breakdown_text(results: Results) -> str:
    lines = []
    for label, by_command in sorted(results.breakdown.items()):
        top = sorted(by_command.items(), key=lambda kv: -kv[1])[:14]
        listed = ", ".join(f"{name} {count:.2f}" for name, count in top)
        lines.append(f"- {label}: {listed}")
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[str]:
    """A redis-server of our own on a free loopback port, with persistence off like the shared
    one: no other client's traffic can land in the command and CPU counts. Killed at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("no redis-server on PATH: pass --redis-url")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        binary,
        *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = Redis.from_url(url)
        try:
            for _ in range(100):
                with contextlib.suppress(RedisConnectionError):
                    await client.ping()
                    break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"the private redis-server on port {port} did not start")
        finally:
            await client.aclose()
        yield url
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def main(config: Config) -> None:
    async with contextlib.AsyncExitStack() as stack:
        private = not config.url
        if private:
            config = replace(config, url=await stack.enter_async_context(private_redis()))
        bench = Bench(config)
        try:
            await bench.admin.ping()
            version_line = await versions(bench.admin)
            print(f"benchmarking on {config.url}: {version_line}", file=sys.stderr)
            started = time.perf_counter()
            await bench.run()
            elapsed = time.perf_counter() - started
        finally:
            await Child.close_all()
            await bench.admin.aclose()
    report(bench.results, config, version_line, elapsed, private=private)


def report(
    results: Results, config: Config, version_line: str, elapsed: float, *, private: bool
) -> None:
    host = urlsplit(config.url)
    where = f"{host.hostname}:{host.port or 6379}"
    where = f"a private redis-server on {where}" if private else where
    print()
    print(
        f"## Engine benchmark: {config.tasks:,} no-op tasks per drain, median of {config.runs} "
        f"run(s), Redis: {where}, {elapsed:.0f} s"
    )
    print()
    print(table(results, config))
    print()
    print(footnotes(config))
    print()
    print(f"Versions: {version_line}.")
    print(
        f"pydocket tuned: Worker(minimum_check_interval="
        f"{config.pydocket_check_ms:g} ms) "
        f"with ?max_connections={PYDOCKET_MAX_CONNECTIONS}; latency and idle workers run at "
        "concurrency 50 for all three. With every slot busy pydocket sleeps that interval, so "
        "its drain is capped near concurrency ÷ interval "
        f"({min(config.concurrencies) / config.pydocket_check_ms * 1000:,.0f}/s at "
        f"c={min(config.concurrencies)}); --pydocket-check-ms lowers it."
    )
    print()
    print("Targets (mcp-tasks):")
    print("\n".join(targets(results, config)))
    print()
    print("Redis commands per task by command (last run; idle rows per second):")
    print(breakdown_text(results))
    if results.notes:
        print()
        print("Notes:")
        print("\n".join(f"- {n}" for n in results.notes))


def parse_args(argv: Sequence[str] | None = None) -> Config | dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--redis-url",
        default="",
        help="Redis to use, e.g. redis://127.0.0.1:6379/0; by default the benchmark starts a "
        "private redis-server on a free loopback port (nothing else's traffic in the counts)",
    )
    parser.add_argument("--runs", type=int, default=3, help="throughput repetitions (median)")
    parser.add_argument("--tasks", type=int, default=5000, help="tasks per drain")
    parser.add_argument("--single", type=int, default=1000, help="tasks for single enqueue")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--latency-tasks", type=int, default=200)
    parser.add_argument("--latency-rate", type=float, default=50.0, help="tasks per second")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--waiters", type=int, default=1000)
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument(
        "--pydocket-check-ms",
        type=float,
        default=PYDOCKET_CHECK_MS,
        help="tuned pydocket's minimum_check_interval (its default is 250 ms)",
    )
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec: dict[str, Any] = json.loads(args.child)
        return spec
    if args.quick:  # smaller defaults; options given explicitly still win
        parser.set_defaults(
            runs=1, tasks=500, single=100, concurrency=[10, 100], latency_tasks=50, idle_seconds=5.0
        )
        args = parser.parse_args(argv)
    return Config(
        url=args.redis_url,
        runs=args.runs,
        tasks=args.tasks,
        single=args.single,
        concurrencies=tuple(args.concurrency),
        latency_tasks=args.latency_tasks,
        latency_rate=args.latency_rate,
        idle_seconds=args.idle_seconds,
        waiters=args.waiters,
        systems=tuple(args.systems),
        pydocket_check_ms=args.pydocket_check_ms,
    )


if __name__ == "__main__":
    parsed = parse_args()
    if isinstance(parsed, Config):
        asyncio.run(main(parsed))
    else:
        asyncio.run(child_main(parsed))
