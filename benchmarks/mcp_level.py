"""Benchmark mcp-tasks against fastmcp-tasks at the MCP level, in the same run.

Both servers expose one ``task=True`` no-op tool (``noop(n) -> n``) and are driven through the
2026-07-28 extension ``io.modelcontextprotocol/tasks``:

* in-process (``Client(mcp)``) and over streamable HTTP (one ``uvicorn`` server subprocess per
  server, loopback only);
* on ``memory://`` (ours: the in-process fakeredis store; fastmcp-tasks: pydocket's memory
  backend) and on the local Redis (``--redis-url``, default ``redis://127.0.0.1:6379/0``);
* sequential: ``--sequential`` calls (200) one after the other, each to completion, in ms per
  call; concurrent: ``--concurrent`` calls (1,000) launched together with ``asyncio`` (no
  semaphore unless ``--limit`` is given), to completion, in calls/s.

Clients. "polling client" is fastmcp-tasks' own client half, the same code for both servers:
``call_tool_task(client, "noop", ...)`` then ``await task.result()``, which polls ``tasks/get``
(first poll at once, then 20 ms, doubling up to 500 ms). "push client" (mcp-tasks only: the
peer has no push) sends the opted-in ``tools/call`` raw, then ``subscriptions/listen`` with
``notifications.taskIds = [id]``; the listen ends once the task has ended, and the result is
taken from the final ``notifications/tasks`` (a ``tasks/get`` only if that notification has
not arrived; such fallbacks are counted and reported). For reference, a second table shows
the same tool called without the tasks opt-in (it runs inline: no task, one round trip), and,
on our server, that plain call followed by a ``tasks/get`` of a task that has already ended:
two requests and no task at all. A task round trip is a create request plus at least one
``tasks/get`` or a ``subscriptions/listen`` (dearer than a get), and the server also runs the
tool and stores its result, so it does at least this floor's work on the same fastmcp stack:
where the floor stays under 5x the peer's task calls/s, no task server on it reaches that.

Method. Every (transport, backend, server) cell runs in a fresh child process (this file with
``--child``), so one server's state never slows another's, and importing ``fastmcp_tasks``
(which hooks every fastmcp ``Client`` in the process) happens in the same way for both. Over
HTTP the child starts the server (this file with ``--serve``) as its own subprocess. Each
child warms up, then does ``--runs`` rounds of (sequential, concurrent) per client; the table
shows the median. Both servers run with their defaults: one in-process worker each, worker
concurrency 10 (fastmcp-tasks also polls its docket every 50 ms when its slots are full);
neither is tuned. Docket names are unique per cell; Redis keys are deleted afterwards.
Every call, phase and child process has a time limit, and the children and servers are
killed at the end whatever happens.

Run it from the repository root in its own venv (fastmcp-tasks pins its own fastmcp, so
both servers run on that stack; see benchmarks/mcp-requirements.txt):

    python3 -m venv .bench-mcp-venv
    .bench-mcp-venv/bin/pip install -r benchmarks/mcp-requirements.txt
    .bench-mcp-venv/bin/pip install --no-deps -e .   # (fastmcp-tasks excludes redis 8.1)
    .bench-mcp-venv/bin/python benchmarks/mcp_level.py          # full: 3 runs, 200 seq, 1,000
    .bench-mcp-venv/bin/python benchmarks/mcp_level.py --quick  # smoke: 20 sequential, 100 at once
    .bench-mcp-venv/bin/python benchmarks/mcp_level.py --only ours  # or peer; --help for the rest
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastmcp import Client, FastMCP

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXTENSION_ID = "io.modelcontextprotocol/tasks"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
RESULT_PREFIX = "@@result "
TRANSPORTS = {"inproc": "in-process", "http": "HTTP"}
BACKENDS = {"memory": "memory://", "redis": "Redis"}
SYSTEMS = ("ours", "peer")
CLIENTS = {"ours": ("poll", "push", "plain", "floor"), "peer": ("poll", "plain")}
CALL_TIMEOUT = 60.0  # one call, create to result
PUSH_GRACE = 1.0  # how long a finished listen waits for its final notification
SERVER_START_TIMEOUT = 60.0
MISSING = "-"

Call = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class Sizes:
    sequential: int
    concurrent: int
    runs: int
    warmup: int
    limit: int  # concurrent calls in flight at once; 0: all of them

    @property
    def sequential_limit(self) -> float:
        """Seconds one sequential run may take before it counts as failed."""
        return max(30.0, self.sequential * 0.5)

    @property
    def concurrent_limit(self) -> float:
        """Seconds one concurrent run may take before the rest of its calls are cancelled."""
        return max(60.0, self.concurrent * 0.15)

    def child_limit(self, system: str) -> float:
        per_round = self.sequential_limit + self.concurrent_limit
        clients = len(CLIENTS[system])
        return SERVER_START_TIMEOUT + 60.0 + clients * (self.runs * per_round + 30.0)


@dataclass
class CellResult:
    """What one child measured: per client, one figure per run (None: that run failed)."""

    sequential_ms: dict[str, list[float | None]] = field(default_factory=dict)
    concurrent_rps: dict[str, list[float | None]] = field(default_factory=dict)
    concurrent_failed: dict[str, list[int]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    first_errors: list[str] = field(default_factory=list)
    push_fallbacks: int = 0
    notes: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    """ours only: median ms of one request of each kind, one after the other (see PHASES)."""

    def error(self, client: str, exc: BaseException | str) -> None:
        self.errors[client] = self.errors.get(client, 0) + 1
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        if len(self.first_errors) < 5:
            self.first_errors.append(f"{client}: {text[:300]}")


# -- the servers -----------------------------------------------------------------------------


def build_server(system: str, url: str, name: str) -> FastMCP:
    """One server with one no-op task tool, on mcp-tasks ("ours") or fastmcp-tasks ("peer")."""
    from fastmcp import FastMCP

    mcp = FastMCP(f"bench-{system}")
    if system == "ours":
        from mcp_tasks import Tasks

        mcp.add_extension(Tasks(url=url, name=name))
    else:
        from fastmcp_tasks import TasksExtension

        mcp.add_extension(TasksExtension(url=url, name=name))

    @mcp.tool(task=True)
    async def noop(n: int) -> int:
        """Return at once: the task is all overhead."""
        return n

    return mcp


def serve(system: str, url: str, name: str, port: int) -> None:
    """``--serve``: the server over streamable HTTP on loopback, until terminated."""
    mcp = build_server(system, url, name)
    # uvicorn shuts down gracefully on SIGTERM, which runs the extension's lifespan exit
    mcp.run(transport="http", host="127.0.0.1", port=port, show_banner=False, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def http_server(system: str, url: str, name: str) -> Iterator[str]:
    """Start ``--serve`` in a subprocess; yield its MCP URL; stop (then kill) it afterwards."""
    port = free_port()
    handle, log_name = tempfile.mkstemp(prefix=f"bench-mcp-{system}-", suffix=".log")
    log = Path(log_name)
    command = [sys.executable, __file__, "--serve", system, "--backend-url", url]
    process = subprocess.Popen(
        [*command, "--name", name, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=handle,
    )
    os.close(handle)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the {system} server exited with {process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the {system} server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        tail = log.read_text(errors="replace")[-2000:]
        log.unlink(missing_ok=True)
        if tail.strip():
            print(f"[{system} server stderr, last lines]\n{tail}", file=sys.stderr)


# -- the two clients -------------------------------------------------------------------------


class PushRecorder:
    """Keeps the final ``notifications/tasks`` of each task a push call is waiting for."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    def expect(self, task_id: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[task_id] = future
        return future

    def extension(self) -> Any:
        from mcp.client.extension import ClientExtension, NotificationBinding
        from pydantic import BaseModel, ConfigDict

        class TaskNote(BaseModel):
            model_config = ConfigDict(extra="allow")
            taskId: str
            status: str

        recorder = self

        class Binding(ClientExtension):
            identifier = "bench.example/task-notifications"

            def notifications(self) -> list[NotificationBinding[Any]]:
                async def handle(params: TaskNote) -> None:
                    future = recorder.waiting.get(params.taskId)
                    if params.status in TERMINAL and future is not None and not future.done():
                        future.set_result(params.model_dump(by_alias=True))

                return [
                    NotificationBinding(
                        method="notifications/tasks", params_type=TaskNote, handler=handle
                    )
                ]

        return Binding()


async def modern(client: Client[Any], method: str, params: dict[str, Any]) -> dict[str, Any]:
    """A raw 2026-07-28 request that opts in to the tasks extension."""
    from mcp_tasks.client import raw_request

    return await raw_request(client, method, params, opt_in=True, timeout=CALL_TIMEOUT)


def plain_call(client: Client[Any]) -> Call:
    """The reference: the same tool called without opting in to tasks, so it runs inline."""

    from mcp_tasks.client import raw_request

    async def call(n: int) -> None:
        # opt_in=False: fastmcp-tasks' client half adds the opt-in to every call.
        params = {"name": "noop", "arguments": {"n": n}}
        result = await raw_request(client, "tools/call", params, opt_in=False, timeout=CALL_TIMEOUT)
        if result.get("structuredContent") != {"result": n}:
            raise AssertionError(f"noop({n}) answered {result!r}")

    return call


def floor_call(client: Client[Any], finished: list[str]) -> Call:
    """Two requests and no task: a plain call, then a tasks/get of a task that has ended."""
    plain = plain_call(client)

    async def call(n: int) -> None:
        if not finished:  # one task to read, made (and waited for) on the first call
            created = await modern(client, "tools/call", {"name": "noop", "arguments": {"n": 0}})
            listen = {"notifications": {"taskIds": [created["taskId"]]}}
            await modern(client, "subscriptions/listen", listen)  # answers once it has ended
            finished.append(created["taskId"])
        await plain(n)
        task = await modern(client, "tasks/get", {"taskId": finished[0]})
        if task.get("status") != "completed":
            raise AssertionError(f"tasks/get answered {task!r}")

    return call


def polling_call(client: Client[Any]) -> Call:
    """fastmcp-tasks' client half: create, then ``task.result()`` polls tasks/get."""
    from fastmcp_tasks import call_tool_task

    async def call(n: int) -> None:
        async with asyncio.timeout(CALL_TIMEOUT):
            task = await call_tool_task(client, "noop", {"n": n}, timeout=CALL_TIMEOUT)
            result = await task.result()
        if result.data != n:
            raise AssertionError(f"noop({n}) answered {result.data!r}")

    return call


def push_call(client: Client[Any], recorder: PushRecorder, cell: CellResult) -> Call:
    """Create raw, then ``subscriptions/listen`` on the task until it has ended."""

    async def call(n: int) -> None:
        async with asyncio.timeout(CALL_TIMEOUT):
            created = await modern(client, "tools/call", {"name": "noop", "arguments": {"n": n}})
            task_id = created["taskId"]
            final = recorder.expect(task_id)
            try:
                listen = {"notifications": {"taskIds": [task_id]}}
                await modern(client, "subscriptions/listen", listen)
                try:
                    task = await asyncio.wait_for(asyncio.shield(final), PUSH_GRACE)
                except TimeoutError:
                    cell.push_fallbacks += 1
                    task = await modern(client, "tasks/get", {"taskId": task_id})
            finally:
                recorder.waiting.pop(task_id, None)
        structured = (task.get("result") or {}).get("structuredContent")
        if task.get("status") != "completed" or structured != {"result": n}:
            raise AssertionError(f"noop({n}) ended as {task!r}")

    return call


# -- measuring -------------------------------------------------------------------------------


async def sequential(call: Call, count: int, limit: float) -> float:
    """ms per call for ``count`` calls in a row; raises on the first failure."""
    start = time.perf_counter()
    async with asyncio.timeout(limit):
        for n in range(count):
            await call(n)
    return (time.perf_counter() - start) * 1000 / count


async def concurrent(
    call: Call, count: int, in_flight: int, limit: float, cell: CellResult, client: str
) -> float | None:
    """calls/s for ``count`` calls launched together; None when any call failed or hung."""
    gate = asyncio.Semaphore(in_flight or count)

    async def one(n: int) -> None:
        async with gate:
            await call(n)

    start = time.perf_counter()
    tasks = [asyncio.create_task(one(n)) for n in range(count)]
    done, pending = await asyncio.wait(tasks, timeout=limit)
    elapsed = time.perf_counter() - start
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    failed = [task.exception() for task in done if task.exception() is not None]
    for exc in failed[:3]:
        assert exc is not None
        cell.error(client, exc)
    if failed:
        cell.notes.append(f"{client}: {len(failed)} of {count} concurrent calls failed")
    if pending:
        cell.error(client, f"{len(pending)} of {count} concurrent calls still open after {limit}s")
    cell.concurrent_failed.setdefault(client, []).append(len(failed) + len(pending))
    if failed or pending:
        return None
    return count / elapsed


async def measure(target: Any, system: str, sizes: Sizes) -> CellResult:
    """Warm up, then ``runs`` rounds of (sequential, concurrent) for each client."""
    from fastmcp import Client

    cell = CellResult()
    recorder = PushRecorder()
    async with Client(target, timeout=CALL_TIMEOUT, extensions=[recorder.extension()]) as client:
        if client.protocol_version != "2026-07-28":
            cell.notes.append(f"negotiated {client.protocol_version}, not 2026-07-28")
        calls = {
            "poll": polling_call(client),
            "push": push_call(client, recorder, cell),
            "plain": plain_call(client),
            "floor": floor_call(client, []),
        }
        clients = CLIENTS[system]
        for name in clients:
            cell.sequential_ms[name] = []
            cell.concurrent_rps[name] = []
            try:
                await sequential(calls[name], sizes.warmup, sizes.sequential_limit)
            except Exception as exc:
                cell.error(name, exc)
        for _ in range(sizes.runs):
            for name in clients:
                try:
                    ms = await sequential(calls[name], sizes.sequential, sizes.sequential_limit)
                except Exception as exc:
                    cell.error(name, exc)
                    ms = None
                cell.sequential_ms[name].append(ms)
            for name in clients:
                rps = await concurrent(
                    calls[name],
                    sizes.concurrent,
                    sizes.limit,
                    sizes.concurrent_limit,
                    cell,
                    name,
                )
                cell.concurrent_rps[name].append(rps)
        if system == "ours":
            try:
                await phases(client, sizes.sequential, cell)
            except Exception as exc:
                cell.error("phases", exc)
    return cell


PHASES = {
    "plain": "plain tools/call (no task)",
    "create": "tools/call creating a task",
    "get": "tasks/get of a finished task",
    "listen": "subscriptions/listen on a finished task",
}
"""The requests a task round trip is made of, timed one kind at a time: where the time goes."""


async def phases(client: Client[Any], count: int, cell: CellResult) -> None:
    """Median ms per request of each PHASES kind (``count`` each, in rounds of 20)."""
    created = await modern(client, "tools/call", {"name": "noop", "arguments": {"n": 0}})
    finished = created["taskId"]
    listen = {"notifications": {"taskIds": [finished]}}
    await modern(client, "subscriptions/listen", listen)  # answers once the task has ended
    kinds: dict[str, Call] = {"plain": plain_call(client)}

    async def create(n: int) -> None:
        await modern(client, "tools/call", {"name": "noop", "arguments": {"n": n}})

    async def get(n: int) -> None:
        await modern(client, "tasks/get", {"taskId": finished})

    async def follow(n: int) -> None:
        await modern(client, "subscriptions/listen", listen)

    kinds |= {"create": create, "get": get, "listen": follow}
    for kind, call in kinds.items():
        rounds = []
        for _ in range(max(count // 20, 1)):
            start = time.perf_counter()
            for n in range(20):
                await call(n)
            rounds.append((time.perf_counter() - start) * 1000 / 20)
        cell.phases[kind] = statistics.median(rounds)


async def child(system: str, transport: str, url: str, name: str, sizes: Sizes) -> CellResult:
    """``--child``: measure one server on one backend and transport."""
    import fastmcp_tasks  # noqa: F401  # hooks every Client in this process, whichever server

    if transport == "inproc":
        return await measure(build_server(system, url, name), system, sizes)
    with http_server(system, url, name) as mcp_url:
        return await measure(mcp_url, system, sizes)


# -- the parent: one child per cell, then the table -------------------------------------------


def purge_redis(url: str, name: str) -> int:
    """Delete every key of docket ``name`` (ours: ``mcp-tasks:{name}...``; pydocket:
    ``name:...``). Answers how many were deleted."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    deleted = 0
    try:
        for pattern in (f"mcp-tasks:{{{name}}}*", f"{name}:*", f"{name}"):
            batch: list[bytes] = []
            for key in client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    deleted += int(client.delete(*batch))
                    batch = []
            if batch:
                deleted += int(client.delete(*batch))
    finally:
        client.close()
    return deleted


def redis_answers(url: str) -> str | None:
    """The Redis server's version, or None when it does not answer."""
    import redis

    try:
        info = redis.Redis.from_url(url, socket_connect_timeout=2).info("server")
    except redis.RedisError:
        return None
    return str(info.get("redis_version", "?"))


def run_child(
    system: str, transport: str, backend: str, redis_url: str, sizes: Sizes
) -> CellResult:
    """One child process for one cell; killed (with its server) when over its time limit."""
    name = f"bench-mcp-{system}-{uuid.uuid4().hex[:10]}"
    url = redis_url if backend == "redis" else "memory://"
    command = [
        sys.executable,
        __file__,
        "--child",
        system,
        "--transport",
        transport,
        "--backend-url",
        url,
        "--name",
        name,
        "--sizes",
        json.dumps(asdict(sizes)),
    ]
    limit = sizes.child_limit(system)
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: it and its server die together
    )
    try:
        stdout, stderr = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        cell = CellResult()
        cell.error("all", f"the child did not finish within {limit:.0f}s and was killed")
        cell.notes.append(stderr[-1500:])
        return cell
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # a server it left behind, if any
        if backend == "redis":
            purge_redis(redis_url, name)
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return CellResult(**json.loads(line[len(RESULT_PREFIX) :]))
    cell = CellResult()
    cell.error("all", f"the child exited with {process.returncode} and no result")
    cell.notes.append(stderr[-1500:])
    return cell


def median(values: list[float | None] | None) -> float | None:
    good = [v for v in values or [] if v is not None]
    return statistics.median(good) if good else None


def figure(cell: CellResult, client: str, metric: str, sizes: Sizes) -> str:
    """One table cell: the median over the runs that worked, and what went wrong in the rest."""
    values: list[float | None] | None = getattr(cell, metric).get(client)
    if not values:
        return MISSING
    middle = median(values)
    failed_runs = sum(v is None for v in values)
    if metric == "concurrent_rps" and failed_runs:
        lost = sorted(cell.concurrent_failed.get(client, []))
        calls = f"{lost[0]}-{lost[-1]}" if lost and lost[0] != lost[-1] else str(lost[0] or "?")
        why = f"{calls} of {sizes.concurrent} calls failed or hung"
    else:
        why = "failed"
    if middle is None:
        return f"failed ({why} in every run)" if metric == "concurrent_rps" else "failed"
    text = f"{middle:,.2f}" if metric == "sequential_ms" else f"{middle:,.0f}"
    return f"{text} ({failed_runs} of {len(values)} runs failed: {why})" if failed_runs else text


def ratio_text(ours: float | None, peer: float | None) -> str:
    if ours is None or peer is None or peer == 0:
        return MISSING
    return f"{ours / peer:.2f}x"


def versions() -> str:
    names = ["fastmcp", "mcp", "fastmcp-tasks", "pydocket", "redis", "mcp-tasks"]
    parts = []
    for package in names:
        try:
            parts.append(f"{'redis-py' if package == 'redis' else package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} (not installed)")
    return ", ".join(parts) + f"; Python {platform.python_version()}"


def report(
    results: dict[tuple[str, str, str], CellResult],
    transports: list[str],
    backends: list[str],
    sizes: Sizes,
    redis_version: str | None,
) -> None:
    header = [
        "scenario",
        "mcp-tasks (polling client)",
        "mcp-tasks (push client)",
        "fastmcp-tasks (polling client)",
        "ratio ours ÷ peer (polling / push)",
    ]
    metrics = [
        ("sequential_ms", f"sequential, ms/call ({sizes.sequential} calls)"),
        ("concurrent_rps", f"concurrent, calls/s ({sizes.concurrent} calls)"),
    ]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    reference = [
        "| scenario | plain call, mcp-tasks server | plain call, fastmcp-tasks server "
        "| plain call + tasks/get (two requests, no task), mcp-tasks server |",
        "|---|---|---|---|",
    ]
    checks: list[str] = []
    anatomy = [
        "| scenario | " + " | ".join(PHASES.values()) + " |",
        "|---|" + "---|" * len(PHASES),
    ]
    for transport in transports:
        for backend in backends:
            ours = results.get((transport, backend, "ours"), CellResult())
            peer = results.get((transport, backend, "peer"), CellResult())
            where = f"{TRANSPORTS[transport]}, {BACKENDS[backend]}"
            for metric, label in metrics:
                peer_median = median(getattr(peer, metric).get("poll"))
                ratios = [
                    ratio_text(median(getattr(ours, metric).get(client)), peer_median)
                    for client in ("poll", "push")
                ]
                row = [
                    f"{where}: {label}",
                    figure(ours, "poll", metric, sizes),
                    figure(ours, "push", metric, sizes),
                    figure(peer, "poll", metric, sizes),
                    " / ".join(ratios),
                ]
                table.append("| " + " | ".join(row) + " |")
                row = [
                    f"{where}: {label}",
                    figure(ours, "plain", metric, sizes),
                    figure(peer, "plain", metric, sizes),
                    figure(ours, "floor", metric, sizes),
                ]
                reference.append("| " + " | ".join(row) + " |")
            if ours.phases:
                cells = [f"{ours.phases[k]:.2f}" if k in ours.phases else MISSING for k in PHASES]
                anatomy.append(f"| {where}: ms/request | " + " | ".join(cells) + " |")
            push_ms = median(ours.sequential_ms.get("push"))
            poll_ms = median(ours.sequential_ms.get("poll"))
            if push_ms is not None or poll_ms is not None:
                checks.append(
                    f"- {where}: sequential ≤ 5 ms: push {_ok(push_ms)}, polling {_ok(poll_ms)}"
                )
            peer_rps = median(peer.concurrent_rps.get("poll"))
            best = [median(ours.concurrent_rps.get(c)) for c in ("poll", "push")]
            if peer_rps and any(best):
                factors = [f"{b / peer_rps:.1f}x" if b else MISSING for b in best]
                met = any(b is not None and b >= 5 * peer_rps for b in best)
                floor = median(ours.concurrent_rps.get("floor"))
                reach = (
                    f"; two requests without a task reach {floor / peer_rps:.1f}x" if floor else ""
                )
                checks.append(
                    f"- {where}: concurrent ≥ 5x fastmcp-tasks: polling {factors[0]}, "
                    f"push {factors[1]} → {'met' if met else 'NOT met'}{reach}"
                )
    in_flight = f"at most {sizes.limit} in flight" if sizes.limit else "all launched at once"
    print()
    print(
        f"MCP no-op task calls to completion, median of {sizes.runs} run(s); "
        f"concurrent calls {in_flight}."
    )
    print()
    print("\n".join(table))
    print()
    print("Reference, no task: the same tool called without the tasks opt-in (runs inline).")
    print()
    print("\n".join(reference))
    if len(anatomy) > 2:
        print()
        print(
            "Where a task's time goes (mcp-tasks; median ms per request, each kind on its own; "
            "a polling round trip is a create plus at least one tasks/get, a push one a create "
            "plus a listen):"
        )
        print()
        print("\n".join(anatomy))
    print()
    print(f"Versions: {versions()}; Redis server {redis_version or 'not reachable'}.")
    print(f"Machine: {os.cpu_count()} CPUs, {platform.platform()}.")
    if checks:
        print()
        print("Targets (ours: ≤ 5 ms per sequential call; ≥ 5x the peer's concurrent calls/s):")
        print("\n".join(checks))
    print()
    print("Every run (ms/call sequential, calls/s concurrent; null: that run failed):")
    for (transport, backend, system), cell in results.items():
        runs = {
            client: {
                "ms": [None if v is None else round(v, 2) for v in cell.sequential_ms[client]],
                "calls/s": [None if v is None else round(v) for v in cell.concurrent_rps[client]],
            }
            for client in cell.sequential_ms
        }
        print(f"- {TRANSPORTS[transport]}, {BACKENDS[backend]}, {system}: {json.dumps(runs)}")
        if cell.push_fallbacks:
            print(f"  push: {cell.push_fallbacks} calls fell back to tasks/get")
        for note in cell.notes:
            print(f"  note: {note.strip()[-600:]}")
        if cell.errors:
            print(f"  errors: {json.dumps(cell.errors)}")
            for error in cell.first_errors:
                print(f"    {error}")


def _ok(value: float | None) -> str:
    if value is None:
        return MISSING
    return f"{value:.2f} ms ({'met' if value <= 5 else 'NOT met'})"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds per cell (median shown)")
    parser.add_argument("--quick", action="store_true", help="20 + 100 calls, 1 run")
    parser.add_argument("--only", choices=SYSTEMS, help="measure only ours or only the peer")
    parser.add_argument("--sequential", type=int, default=200, help="calls per sequential run")
    parser.add_argument("--concurrent", type=int, default=1000, help="calls per concurrent run")
    parser.add_argument("--limit", type=int, default=0, help="max calls in flight (0: all)")
    parser.add_argument("--warmup", type=int, default=20, help="sequential warm-up calls")
    parser.add_argument("--transports", default="inproc,http", help="inproc,http")
    parser.add_argument("--backends", default="memory,redis", help="memory,redis")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    # internal: the child that measures one cell, and the HTTP server it starts
    parser.add_argument("--child", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--serve", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--transport", choices=TRANSPORTS, help=argparse.SUPPRESS)
    parser.add_argument("--backend-url", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse()
    if args.serve:
        serve(args.serve, args.backend_url, args.name, args.port)
        return
    if args.child:
        sizes = Sizes(**json.loads(args.sizes))
        cell = asyncio.run(child(args.child, args.transport, args.backend_url, args.name, sizes))
        print(RESULT_PREFIX + json.dumps(asdict(cell)), flush=True)
        return
    if args.quick:
        sizes = Sizes(sequential=20, concurrent=100, runs=1, warmup=5, limit=args.limit)
    else:
        sizes = Sizes(args.sequential, args.concurrent, args.runs, args.warmup, args.limit)
    transports = [t for t in args.transports.split(",") if t in TRANSPORTS]
    backends = [b for b in args.backends.split(",") if b in BACKENDS]
    systems = [args.only] if args.only else list(SYSTEMS)
    redis_version = redis_answers(args.redis_url) if "redis" in backends else None
    if "redis" in backends and redis_version is None:
        print(f"Redis at {args.redis_url} does not answer: skipping the Redis rows.")
        backends.remove("redis")
    results: dict[tuple[str, str, str], CellResult] = {}
    for transport in transports:
        for backend in backends:
            for system in systems:
                started = time.monotonic()
                print(
                    f"{TRANSPORTS[transport]}, {BACKENDS[backend]}, {system} ...",
                    end="",
                    flush=True,
                )
                results[transport, backend, system] = run_child(
                    system, transport, backend, args.redis_url, sizes
                )
                print(f" {time.monotonic() - started:.0f}s", flush=True)
    report(results, transports, backends, sizes, redis_version)


if __name__ == "__main__":
    main()
