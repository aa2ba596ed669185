"""The peer, fastmcp-tasks, on the workload of scale.py's "pollers" phase, for a row beside ours.

    .bench-mcp-venv/bin/python benchmarks/scale_peer.py --quick --json /tmp/peer.json
    .bench-mcp-venv/bin/python benchmarks/scale_peer.py --json /tmp/peer.json   # ~1 minute

fastmcp-tasks pins its own fastmcp, so this runs in benchmarks/mcp_level.py's venv and imports
neither mcp_tasks nor scale.py (that venv has no httpx). It starts a redis-server of its own
(free loopback port, no persistence) and two fastmcp-tasks replicas (this file with
``--serve``: streamable HTTP on loopback, one docket: same Redis URL and name), each with a
task tool ``nap(seconds)``. fastmcp-tasks runs its docket worker INSIDE each server process
(``TasksExtension``'s lifespan starts a pydocket ``Worker``): replica CPU is API plus worker,
and the workers poll Redis even idle (every 50 ms), hence the idle baseline and "less idle".
So that nothing queues (as scale.py sizes its workers), a replica's worker concurrency is
``--concurrency`` (``--tasks``; its default is 10) and its redis-py pool ``--pool`` (1,000
connections, set in the URL). With redis-py's default pool (100 a process, ``--pool 0``) this
load opens about 100 connections a replica and then fails with ``MaxConnectionsError``:
``tasks/get`` answers "Internal server error" and a worker loop stops for 5 s.

``--tasks`` (400; ``--quick`` 16) tasks of lengths cycling through LENGTHS (``--quick``: /10)
arrive over 5 s (0.5 s), alternating replicas, one fastmcp ``Client`` per replica, each driven
by fastmcp-tasks' own client half at its defaults: ``call_tool_task``, then ``await
task.result()``, which polls ``tasks/get`` at once, then after 20 ms, doubling up to the
advertised ``pollIntervalMs`` (fastmcp_tasks/client.py ``MIN_POLL_INTERVAL``,
``_next_poll_delay``); the server advertises ``TaskConfig.poll_interval``, 5 s by default
(fastmcp/utilities/tasks.py ``DEFAULT_POLL_INTERVAL``). The client's 0.5 s ceiling
(``FASTMCP_TASKS_CLIENT_POLL_INTERVAL``) applies only when a server advertises none.

Measured over the phase, per completed task: replica CPU (utime + stime, both), Redis commands
(``total_commands_processed``), ``tasks/get`` requests (counted on the wire by a request hook
on the SDK's default HTTP client); per task, how late its end is seen: when ``task.result()``
returns minus when ``nap`` ended (it returns its start and end times; one machine, one clock).
The peer's ``lastUpdatedAt`` is when ``tasks/get`` answered, not when the task ended, so it
cannot serve; the JSON also has the delay after the scheduled end (create sent + length).
Every wait has a time limit; every subprocess is killed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
LENGTHS = (0.05, 0.5, 3.0, 20.0)
"""Task lengths (seconds), as in scale.py's pollers; ``--quick`` divides them by 10."""
TICKS = os.sysconf("SC_CLK_TCK")
REPLICAS = 2
DOCKET = "scale-peer"
QUANTILES = (("p50", 0.5), ("p99", 0.99), ("max", 1.0))
DELAYS = ("seen_late", "pickup", "create", "after_scheduled_end")


def serve(url: str, port: int, concurrency: int) -> None:
    """``--serve``: one fastmcp-tasks replica over streamable HTTP on loopback, until killed."""
    from fastmcp import FastMCP
    from fastmcp_tasks import TasksExtension

    mcp = FastMCP("scale-peer")
    mcp.add_extension(TasksExtension(url=url, name=DOCKET, concurrency=concurrency))

    @mcp.tool(task=True)
    async def nap(seconds: float) -> list[float]:
        """Sleep ``seconds``; answer when it started and ended (unix times)."""
        started = time.time()
        await asyncio.sleep(seconds)
        return [started, time.time()]

    mcp.run(transport="http", host="127.0.0.1", port=port, show_banner=False, log_level="warning")


# -- processes (the helpers of scale.py's Fleet) ----------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)


class Fleet:
    """Redis and the replicas, each in a session of its own; every log in one folder."""

    def __init__(self, folder: Path, concurrency: int, pool: int) -> None:
        self.folder, self.concurrency, self.pool = folder, concurrency, pool
        self.redis_port = free_port()
        self.url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.url += f"?max_connections={pool}" if pool else ""  # 0: redis-py's default, 100
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.folder / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.processes.append(process)
        return process

    def start(self) -> None:
        redis_server = shutil.which("redis-server") or "redis-server"
        arguments = ["--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", ""]
        process = self._spawn("redis", [redis_server, *arguments, "--appendonly", "no"])
        wait_for_port(self.redis_port, process, "redis-server")
        ports = [free_port() for _ in range(REPLICAS)]
        for i, port in enumerate(ports):
            command = [sys.executable, __file__, "--serve", str(port), "--url", self.url]
            self._spawn(f"replica-{i}", [*command, "--concurrency", str(self.concurrency)])
        for port, replica in zip(ports, self.processes[1:], strict=True):
            wait_for_port(port, replica, "a replica")
            self.urls.append(f"http://127.0.0.1:{port}/mcp")

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.processes[1:])

    def close(self) -> None:
        """The replicas first (together), then Redis, so no worker sees Redis vanish."""
        for group in (self.processes[1:], self.processes[:1]):
            for process in group:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
            for process in group:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Tally:
    gets: Counter[str] = field(default_factory=Counter)
    """tasks/get requests sent, per task id."""
    done: dict[float, list[tuple[float, ...]]] = field(default_factory=dict)
    """Per length, each completed task's polls and DELAYS."""
    failed: Counter[str] = field(default_factory=Counter)
    advertised: set[int | None] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    closing: list[str] = field(default_factory=list)
    connections: int = 0
    """The most Redis clients connected at once (sampled each second)."""

    def fail(self, kind: str, text: str) -> None:
        self.failed[kind] += 1
        self.errors += [f"{kind}: {text[:300]}"] if len(self.errors) < 5 else []


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def commands(store: redis.Redis) -> int:
    return int(store.info("stats")["total_commands_processed"])  # type: ignore[index]


def client_for(url: str, tally: Tally) -> Any:
    """A fastmcp Client with the SDK's default HTTP client, plus a hook counting tasks/get."""
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def count(request: Any) -> None:
        if b'"tasks/get"' in request.content:
            message = json.loads(request.content)
            if message.get("method") == "tasks/get":
                tally.gets[message["params"]["taskId"]] += 1

    def factory(**kwargs: Any) -> Any:
        kwargs.pop("follow_redirects", None)  # the default client leaves it off
        http = create_mcp_http_client(**kwargs)
        http.event_hooks.setdefault("request", []).append(count)
        return http

    return Client(StreamableHttpTransport(url, httpx_client_factory=factory))


async def run(args: argparse.Namespace, fleet: Fleet) -> dict[str, Any]:
    from fastmcp_tasks import call_tool_task

    lengths = [length / (10 if args.quick else 1) for length in LENGTHS]
    spread = 0.5 if args.quick else 5.0
    tally = Tally(done={length: [] for length in lengths})
    store = redis.Redis(port=fleet.redis_port)
    stack = contextlib.AsyncExitStack()
    try:
        async with asyncio.timeout(60):
            clients = [await stack.enter_async_context(client_for(u, tally)) for u in fleet.urls]
        calls0, cpu0, t0 = commands(store), fleet.cpu(), time.perf_counter()
        await asyncio.sleep(1.0 if args.quick else 3.0)
        idle_s = time.perf_counter() - t0
        idle_calls, idle_cpu = (commands(store) - calls0) / idle_s, (fleet.cpu() - cpu0) / idle_s

        async def one(index: int) -> None:
            await asyncio.sleep(spread * index / args.tasks)
            length, stage = lengths[index % len(lengths)], "create"
            sent = time.time()
            try:
                async with asyncio.timeout(length + 60):
                    task = await call_tool_task(
                        clients[index % REPLICAS], "nap", {"seconds": length}
                    )
                    tally.advertised.add(task.create_result.poll_interval_ms)
                    stage, created = "result", time.time()
                    result = await task.result()
                seen = time.time()
            except Exception as exc:  # counted and reported
                kind = "not found" if "not found" in str(exc) else type(exc).__name__
                tally.fail(f"{stage}: {kind}", f"{type(exc).__name__}: {exc}")
                return
            if result.is_error or not isinstance(result.data, list):
                tally.fail("bad result", repr(result)[:300])
                return
            started, ended = result.data
            polls = float(tally.gets[task.task_id])
            delays = (seen - ended, started - sent, created - sent, seen - sent - length)
            tally.done[length].append((polls, *delays))

        async def sample() -> None:
            while True:
                now = int(store.info("clients")["connected_clients"])  # type: ignore[index]
                tally.connections = max(tally.connections, now)
                await asyncio.sleep(1.0)

        own0, calls0, cpu0, t0 = os.times(), commands(store), fleet.cpu(), time.perf_counter()
        sampler = asyncio.create_task(sample())
        async with asyncio.timeout(spread + max(lengths) + 120):
            await asyncio.gather(*(one(i) for i in range(args.tasks)))
        seconds = time.perf_counter() - t0
        cpu, calls, own = fleet.cpu() - cpu0, commands(store) - calls0, os.times()
        sampler.cancel()
    finally:
        try:
            async with asyncio.timeout(20):
                await stack.aclose()
        except Exception as exc:  # an error a client's task group held; the figures are taken
            tally.closing.append(f"{type(exc).__name__}: {str(exc)[:300]}")
        store.close()
    done = sum(len(d) for d in tally.done.values())
    per = max(1, done)

    def figures(rows: list[tuple[float, ...]]) -> dict[str, float]:
        polls, *delays = (sorted(r[i] for r in rows) for i in range(1 + len(DELAYS)))
        out = {"completed": len(rows), "polls_median": statistics.median(polls)}
        out |= {"polls_mean": sum(polls) / len(polls), "polls_max": polls[-1]}
        for name, values in zip(DELAYS, delays, strict=True):
            out |= {f"{name}_{q}_ms": percentile(values, s) * 1000 for q, s in QUANTILES}
        return out

    return {
        "system": "fastmcp-tasks",
        "versions": {p: version(p) for p in ("fastmcp-tasks", "fastmcp", "pydocket", "mcp")},
        "tasks": args.tasks,
        "completed": done,
        "failed": dict(tally.failed),
        "first_errors": tally.errors,
        "errors_at_client_close": tally.closing,
        "redis_clients_peak": tally.connections,
        "replicas": REPLICAS,
        "worker_concurrency_per_replica": fleet.concurrency,
        "redis_pool_per_replica": fleet.pool or "redis-py default (100)",
        "workers_in_server_process": True,
        "advertised_poll_interval_ms": sorted(tally.advertised, key=str),
        "seconds": seconds,
        "replica_cpu_ms_per_task": cpu * 1000 / per,
        "replica_cpu_ms_per_task_less_idle": (cpu - idle_cpu * seconds) * 1000 / per,
        "redis_commands_per_task": calls / per,
        "redis_commands_per_task_less_idle": (calls - idle_calls * seconds) / per,
        "idle_replica_cpu_ms_per_s": idle_cpu * 1000,
        "idle_redis_commands_per_s": idle_calls,
        "tasks_get": sum(tally.gets.values()),
        "load_generator_cpu_s": own.user + own.system - own0.user - own0.system,
        "by_length": {str(n): figures(rows) for n, rows in tally.done.items() if rows},
    }


def report(o: dict[str, Any]) -> None:
    print(
        f"\nfastmcp-tasks pollers: {o['tasks']} tasks, {o['replicas']} replicas (workers in-process"
        f", concurrency {o['worker_concurrency_per_replica']}, Redis pool "
        f"{o['redis_pool_per_replica']}), one Redis; {os.cpu_count()} cores;"
        f" {o['seconds']:.1f} s; pollIntervalMs advertised {o['advertised_poll_interval_ms']}\n"
        "| measure | figure |\n|---|---|\n"
        f"| completed / failed | {o['completed']} / {sum(o['failed'].values())} |\n"
        f"| replica CPU per completed task (API + worker; less idle) | "
        f"{o['replica_cpu_ms_per_task']:.2f} ms ({o['replica_cpu_ms_per_task_less_idle']:.2f}) |\n"
        f"| Redis commands per completed task (less idle) | {o['redis_commands_per_task']:.1f} "
        f"({o['redis_commands_per_task_less_idle']:.1f}) |\n"
        f"| idle, both replicas: CPU; Redis commands | {o['idle_replica_cpu_ms_per_s']:.1f} ms/s; "
        f"{o['idle_redis_commands_per_s']:.0f}/s |\n"
        f"| tasks/get requests; Redis clients at the peak; load generator CPU | "
        f"{o['tasks_get']:,}; {o['redis_clients_peak']}; {o['load_generator_cpu_s']:.1f} s |"
    )
    for length, f in o["by_length"].items():
        print(
            f"| a {length} s task: polls; p50 / p99 of: end seen late; nap started; create "
            "answered (both after the create was sent) | "
            f"{f['polls_median']:g} (max {f['polls_max']:g}); "
            + "; ".join(f"{f[k + '_p50_ms']:,.0f} / {f[k + '_p99_ms']:,.0f} ms" for k in DELAYS[:3])
            + " |"
        )
    for error in o["first_errors"]:
        print(f"  error: {error}")
    for error in o["errors_at_client_close"]:
        print(f"  raised as a client closed: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 tasks, lengths / 10")
    parser.add_argument("--tasks", type=int, help="default 400 (--quick 16)")
    parser.add_argument("--concurrency", type=int, help="worker slots a replica (default --tasks)")
    parser.add_argument("--pool", type=int, default=1000, help="Redis connections a replica")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.url, args.serve, args.concurrency)
        return
    args.tasks = args.tasks or (16 if args.quick else 400)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below runs
    folder = Path(tempfile.mkdtemp(prefix="scale-peer-"))
    fleet = Fleet(folder, args.concurrency or args.tasks, args.pool)
    try:
        fleet.start()
        out = asyncio.run(run(args, fleet))
    finally:
        fleet.close()
    report(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    print(f"\nlogs: {folder}")


if __name__ == "__main__":
    main()
