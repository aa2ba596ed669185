"""How cost grows with the work in flight: real server processes over streamable HTTP.

    .venv/bin/python benchmarks/scale.py            # ~5 minutes on a 2-core machine
    .venv/bin/python benchmarks/scale.py --quick    # a smoke run (CI), no figures worth quoting
    .venv/bin/python benchmarks/scale.py --tasks 10000 --listeners 2000 --replicas 4

It starts a Redis of its own (loopback, no persistence), ``--replicas`` API-only server
replicas of ``benchmarks/scale_server.py`` (``fastmcp run --transport http``) and
``--workers`` worker processes (``mcp-tasks worker``), then, with raw JSON-RPC over httpx
(a load generator that costs little, so the servers are what is measured):

1. **ramp**: ``--tasks`` tasks of ``until()`` created through the replicas, half in each
   dialect (2025-11-25 in ``--sessions`` HTTP sessions, each with its GET stream open for
   ``notifications/tasks/status``; 2026-07-28 stateless), all to end at the same moment;
   replica and worker memory per task in flight, and creation rate.
   Besides them, ``--steady`` 2026-07-28 tasks that end one by one (phase 3).
2. **listeners**: ``--listeners`` 2026-07-28 ``subscriptions/listen`` streams, spread over
   the replicas, each following its share of the 2026 tasks (burst and steady ones).
3. **steady**: with every stream open, the ``--steady`` tasks end one by one, evenly over
   ``--steady-seconds``: the delay from each end to its notification at the client in a
   steady state (p50, p99, missed), and this load generator's event-loop lag meanwhile.
4. **burst**: the ``--tasks`` tasks all end within about a second; the delay from each task's
   end (its ``lastUpdatedAt``) to its terminal notification reaching the client, per dialect
   (p50, p99, missed), Redis commands and replica CPU per task during the wave.
5. **store**: Redis bytes per finished task record, and ``tasks/list`` and ``/metrics``
   latency before and after the store filled (flat is the goal).
6. **pollers**: ``--pollers`` 2026-07-28 clients each create a ``nap`` of a length from
   ``LENGTHS`` and poll ``tasks/get`` at the ``pollIntervalMs`` the server suggests: polls per
   task, how late each end is seen, and replica CPU per ``tasks/get``.

7. **stores**: the store grown to each size of ``--stores`` (10k and 100k finished tasks):
   Redis bytes per task and the same reads, with the dashboard's first frame.
8. **fastmcp-tasks** beside us (``benchmarks/scale_peer.py``, from its own venv): the
   pollers' work on its servers, followed by its own client at its defaults.

The targets of issue 16 are printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SERVER_FILE = "benchmarks/scale_server.py"
MODERN, LEGACY = "2026-07-28", "2025-11-25"
EXTENSION_ID = "io.modelcontextprotocol/tasks"
LENGTHS = (0.05, 0.5, 3.0, 20.0)
"""The pollers' task lengths (seconds); ``--quick`` divides them by 10."""
TICKS = os.sysconf("SC_CLK_TCK")
SHARED_TLS = ssl.create_default_context()


@dataclass
class Settings:
    tasks: int = 5000
    listeners: int = 1000
    steady: int = 1500
    """2026-07-28 tasks that end one by one over ``steady_seconds`` (phase 3)."""
    steady_seconds: float = 30.0
    sessions: int = 50
    pollers: int = 400
    replicas: int = 2
    workers: int = 2
    stores: tuple[int, ...] = (10_000, 100_000)
    """Finished tasks the store grows to, step by step, after the pollers."""
    quick: bool = False
    profiler: str | None = None
    """A py-spy binary: record replica 0 during the burst and the pollers."""
    peer_python: str | None = None
    """The Python of benchmarks/mcp-requirements.txt's venv: run fastmcp-tasks' pollers too."""

    @classmethod
    def quick_run(cls) -> Settings:
        return cls(
            tasks=200,
            listeners=20,
            steady=40,
            steady_seconds=3.0,
            sessions=4,
            pollers=16,
            stores=(1000,),
            quick=True,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


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
    """Redis, the API replicas and the workers; every log in one folder."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.settings, self.folder = settings, folder
        self.redis_port = free_port()
        self.url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.env = {
            **os.environ,
            "MCP_TASKS_URL": self.url,
            "MCP_TASKS_NAME": "scale",
            "MCP_TASKS_METRICS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.replicas: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.folder / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        return process

    def start(self) -> None:
        redis_server = shutil.which("redis-server") or "redis-server"
        arguments = ["--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", ""]
        process = self._spawn("redis", [redis_server, *arguments, "--appendonly", "no"], {})
        wait_for_port(self.redis_port, process, "redis-server")
        ports = []
        for i in range(self.settings.replicas):
            port = free_port()
            command = [str(BIN / "fastmcp"), "run", SERVER_FILE, "--transport", "http"]
            command += ["--port", str(port), "--no-banner", "--log-level", "WARNING"]
            env = {**self.env, "MCP_TASKS_WORKER": "0"}
            self.replicas.append(self._spawn(f"replica-{i}", command, env))
            ports.append(port)
        in_flight = self.settings.tasks + self.settings.steady
        concurrency = in_flight // self.settings.workers + self.settings.pollers + 100
        for i in range(self.settings.workers):
            command = [str(BIN / "mcp-tasks"), "worker", SERVER_FILE, "--url", self.url]
            command += ["--concurrency", str(concurrency)]
            self.workers.append(self._spawn(f"worker-{i}", command, self.env))
        for port, replica in zip(ports, self.replicas, strict=True):
            wait_for_port(port, replica, "a replica")
            self.urls.append(f"http://127.0.0.1:{port}/mcp")

    def cpu(self, processes: list[subprocess.Popen[bytes]]) -> float:
        return sum(cpu_seconds(p.pid) for p in processes)

    def rss(self, processes: list[subprocess.Popen[bytes]]) -> int:
        return sum(rss_bytes(p.pid) for p in processes)

    def close(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


# -- raw JSON-RPC over streamable HTTP ---------------------------------------------------------


def modern_meta() -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "scale", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {EXTENSION_ID: {}}},
    }


def answer_of(response: httpx.Response) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in reversed(response.text.splitlines()):
            if line.startswith("data:") and ('"result"' in line or '"error"' in line):
                message: dict[str, Any] = json.loads(line[5:])
                break
        else:
            raise RuntimeError(f"no answer in {response.text[:200]!r}")
    else:
        message = response.json()
    if "error" in message:
        raise RuntimeError(f"JSON-RPC error: {message['error']}")
    result: dict[str, Any] = message["result"]
    return result


class Peer:
    """One client of one replica in one dialect (a 2025-11-25 one opens a session)."""

    def __init__(self, http: httpx.AsyncClient, url: str, version: str) -> None:
        self.http, self.url, self.version = http, url, version
        self.session: str | None = None
        self.requests = 0

    def headers(self, method: str, name: str | None = None) -> dict[str, str]:
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
            "mcp-protocol-version": self.version,
        }
        if self.version == MODERN:
            headers["mcp-method"] = method
            if name:
                headers["mcp-name"] = name
        if self.session:
            headers["mcp-session-id"] = self.session
        return headers

    def body(self, method: str, params: dict[str, Any]) -> bytes:
        if self.version == MODERN:
            params = {**params, "_meta": modern_meta()}
        self.requests += 1
        message = {"jsonrpc": "2.0", "id": self.requests, "method": method, "params": params}
        return json.dumps(message).encode()

    async def call(self, method: str, params: dict[str, Any], name: str | None = None) -> Any:
        for attempt in range(3):
            try:
                response = await self.http.post(
                    self.url, headers=self.headers(method, name), content=self.body(method, params)
                )
                break
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # uvicorn closes a keep-alive connection idle for 5 s; a request sent on it
                # as it closes fails (rarely, even with the pool's 2 s expiry). Sent again:
                # a read is safe to repeat, and a create that did reach the server made a
                # task nobody follows (it ends with the others, and no figure counts it).
                if attempt == 2:
                    raise
        if method == "initialize":
            self.session = response.headers.get("mcp-session-id")
        return answer_of(response)

    async def open(self) -> None:
        params = {
            "protocolVersion": self.version,
            "capabilities": {},
            "clientInfo": {"name": "scale", "version": "0"},
        }
        await self.call("initialize", params)
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        headers = self.headers("notifications/initialized")
        await self.http.post(self.url, headers=headers, content=json.dumps(note).encode())

    async def create(self, tool: str, arguments: dict[str, Any]) -> str:
        params: dict[str, Any] = {"name": tool, "arguments": arguments}
        if self.version == LEGACY:
            params["task"] = {}
            return str((await self.call("tools/call", params))["task"]["taskId"])
        return str((await self.call("tools/call", params, name=tool))["taskId"])

    async def stream(self, method: str, params: dict[str, Any] | None, seen: Seen) -> None:
        """Read a notification stream (GET when ``params`` is None, else a POSTed request
        whose answer streams) into ``seen`` until cancelled. Each stream has a client (a
        connection pool) of its own: httpcore scans its whole pool whenever a response
        closes, which with a thousand streams in one pool made this load generator, not
        the servers, the bottleneck of the burst. They share one TLS context (unused on
        http://, but httpx builds one per client otherwise: ~0.6 MB and a CA-file parse each,
        which made opening 10,000 streams take this process minutes and gigabytes)."""
        async with httpx.AsyncClient(timeout=None, verify=SHARED_TLS) as own:
            if params is None:
                request = own.build_request("GET", self.url, headers=self.headers("GET"))
                del request.headers["content-type"]
            else:
                body = self.body(method, params)
                request = own.build_request(
                    "POST", self.url, headers=self.headers(method), content=body
                )
            response = await own.send(request, stream=True)
            try:
                seen.opened += 1
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        seen.take(json.loads(line[5:]))
            finally:
                await response.aclose()


def moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Seen:
    """Terminal notifications received: the delay from each task's end, per dialect."""

    delays: dict[str, dict[str, float]] = field(default_factory=lambda: {MODERN: {}, LEGACY: {}})
    opened: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    wanted: set[str] = field(default_factory=set)
    """The burst's tasks and the steady ones (not the store's few)."""
    steady: set[str] = field(default_factory=set)
    steady_delays: dict[str, float] = field(default_factory=dict)
    arrivals: dict[str, float] = field(default_factory=dict)

    def take(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method not in ("notifications/tasks", "notifications/tasks/status"):
            return
        params = message["params"]
        if params.get("status") not in ("completed", "failed", "cancelled"):
            return
        dialect = MODERN if method == "notifications/tasks" else LEGACY
        task_id = params["taskId"]
        delays = self.steady_delays if task_id in self.steady else self.delays[dialect]
        if task_id in self.wanted and task_id not in delays:
            self.arrivals[task_id] = time.time()
            delays[task_id] = self.arrivals[task_id] - moment(params["lastUpdatedAt"])
            got = sum(len(d) for d in self.delays.values()) + len(self.steady_delays)
            if got >= len(self.wanted):
                self.arrived.set()


# -- the phases -------------------------------------------------------------------------------


def redis_calls(client: redis.Redis) -> int:
    stats: dict[str, dict[str, Any]] = client.info("commandstats")  # type: ignore[assignment]
    return sum(int(v["calls"]) for v in stats.values())


def stalls(fleet: Fleet, start: float, end: float) -> dict[str, dict[str, float]]:
    """What scale_server.py logged of the replicas between ``start`` and ``end`` (unix times):
    garbage collections of 20 ms or more (``gc-pause``) and event-loop wake-ups 20 ms or more
    late (``loop-lag``): count, longest, total ms of each."""
    found: dict[str, list[float]] = {"gc-pause": [], "loop-lag": []}
    for i in range(len(fleet.replicas)):
        for line in (fleet.folder / f"replica-{i}.log").read_text(errors="replace").splitlines():
            kind, _, rest = line.partition(" ")
            if kind in found:
                at, *_, took = rest.split()
                if start <= float(at) <= end:
                    found[kind].append(float(took))
    return {
        kind: {"count": len(ms), "max_ms": max(ms, default=0.0), "total_ms": sum(ms)}
        for kind, ms in found.items()
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def delays_of(seconds: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(seconds, 0.5) * 1000,
        "p99_ms": percentile(seconds, 0.99) * 1000,
        "max_ms": max(seconds, default=float("nan")) * 1000,
        "got": len(seconds),
    }


async def timed(action: Any, repeat: int = 5) -> float:
    """Median milliseconds of ``repeat`` awaits of ``action()``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def gather_limited(coroutines: list[Any], limit: int = 64) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(coroutine: Any) -> Any:
        async with gate:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines))


async def run(settings: Settings, fleet: Fleet) -> dict[str, Any]:
    out: dict[str, Any] = {}
    store = redis.Redis(port=fleet.redis_port)
    # Idle connections are dropped here after 2 s, before uvicorn closes them (after 5 s): a
    # create sent on a connection as the server closes it fails, and is not safe to resend.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None, keepalive_expiry=2)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120.0)) as http:
        urls = fleet.urls
        sessions = [Peer(http, urls[i % len(urls)], LEGACY) for i in range(settings.sessions)]
        await asyncio.gather(*(s.open() for s in sessions))
        moderns = [Peer(http, url, MODERN) for url in urls]
        seen = Seen()
        streams = [asyncio.create_task(s.stream("GET", None, seen)) for s in sessions]

        # The store before: tasks/list of a session with a few tasks, and /metrics.
        lister = sessions[0]
        for _ in range(5):
            await lister.create("nap", {"seconds": 0})
        metrics_url = urls[0].removesuffix("/mcp") + "/metrics"
        list_before = await timed(lambda: lister.call("tasks/list", {}))
        metrics_before = await timed(lambda: http.get(metrics_url))
        memory_before = int(store.info("memory")["used_memory"])

        # 1. ramp
        legacy_count = settings.tasks // 2
        rss_before = fleet.rss(fleet.replicas), fleet.rss(fleet.workers)
        started = time.perf_counter()
        # The burst's tasks end 2 s after the last steady one (offsets from scale:end).
        ends = {"offset": settings.steady_seconds + 2.0}
        legacy_ids = await gather_limited(
            [sessions[i % len(sessions)].create("until", ends) for i in range(legacy_count)]
        )
        modern_ids = await gather_limited(
            [
                moderns[i % len(moderns)].create("until", ends)
                for i in range(settings.tasks - legacy_count)
            ]
        )
        gap = settings.steady_seconds / max(1, settings.steady)
        steady_ids = await gather_limited(
            [
                moderns[i % len(moderns)].create("until", {"offset": i * gap})
                for i in range(settings.steady)
            ]
        )
        in_flight = settings.tasks + settings.steady
        ramp_s = time.perf_counter() - started
        seen.wanted.update(legacy_ids)
        rss_after = fleet.rss(fleet.replicas), fleet.rss(fleet.workers)
        out["in_flight"] = in_flight
        out["create_per_s"] = in_flight / ramp_s
        out["replica_bytes_per_task"] = (rss_after[0] - rss_before[0]) / in_flight
        out["worker_bytes_per_task"] = (rss_after[1] - rss_before[1]) / in_flight

        # 2. listeners: each 2026 stream follows its share of the burst's 2026 tasks, and
        # every listeners-th steady task
        share = max(1, len(modern_ids) // settings.listeners)
        listeners = []
        for i in range(settings.listeners):
            ids = modern_ids[i * share : (i + 1) * share] if i * share < len(modern_ids) else []
            ids += steady_ids[i :: settings.listeners]
            if not ids:
                break
            peer = Peer(http, urls[i % len(urls)], MODERN)
            params = {"notifications": {"taskIds": ids}}
            listeners.append(asyncio.create_task(peer.stream("subscriptions/listen", params, seen)))
        followed = min(len(modern_ids), share * len(listeners)) + legacy_count
        seen.wanted.update(modern_ids[: share * len(listeners)])
        if listeners:
            seen.steady.update(steady_ids)
            seen.wanted.update(steady_ids)
        async with asyncio.timeout(120 + len(listeners) / 20):  # (10,000 take minutes here)
            while seen.opened < len(sessions) + len(listeners):  # noqa: ASYNC110 - a count
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the listen acks and initial states
        # This process's thousands of open streams are live until the burst is over: keep
        # them out of its collections, whose pauses (1.7 s with 10,000 streams) would be
        # counted as the servers' delays. Thawed once the streams are closed.
        gc.collect()
        gc.freeze()
        rss_listening = fleet.rss(fleet.replicas)
        out["listeners"] = len(listeners)
        out["replica_bytes_per_listener"] = (rss_listening - rss_after[0]) / max(1, len(listeners))

        # 3. steady: the steady tasks end one by one from the moment written here (see
        # scale_server.until), every stream open
        steady_from = time.time() + 2.0
        store.set("scale:end", str(steady_from))
        await asyncio.sleep(max(0.0, steady_from - time.time()))
        lags: list[float] = []
        probe = asyncio.create_task(loop_lag(lags))
        calls_before, cpu_before = redis_calls(store), fleet.cpu(fleet.replicas)
        await asyncio.sleep(settings.steady_seconds)
        calls_after, cpu_after = redis_calls(store), fleet.cpu(fleet.replicas)
        probe.cancel()
        out["steady"] = {
            **delays_of(list(seen.steady_delays.values())),
            "followed": len(seen.steady),
            "redis_calls_per_task": (calls_after - calls_before) / max(1, settings.steady),
            "replica_cpu_ms_per_task": (cpu_after - cpu_before) * 1000 / max(1, settings.steady),
            "load_generator_lag_p99_ms": percentile(lags, 0.99) * 1000 if lags else 0.0,
            "load_generator_lag_max_ms": max(lags, default=0.0) * 1000,
            "stalls": stalls(fleet, steady_from, steady_from + settings.steady_seconds),
            "arrivals": [
                (seen.arrivals[task], delay) for task, delay in seen.steady_delays.items()
            ],
            "slowest": sorted(
                ((delay, seen.arrivals[task]) for task, delay in seen.steady_delays.items()),
                reverse=True,
            )[:10],
        }

        # 4. burst: every task of the ramp ends 2 s later
        spy = profile(settings, fleet, "burst")
        self_spy = profile(settings, fleet, "burst", os.getpid(), "load-generator")
        calls_before, cpu_before = redis_calls(store), fleet.cpu(fleet.replicas)
        opened_before = int(store.info("stats")["total_connections_received"])
        workers_before, own_before, wave_started = fleet.cpu(fleet.workers), os.times(), time.time()
        try:
            async with asyncio.timeout(60 + settings.tasks / 100):
                await seen.arrived.wait()
        except TimeoutError:
            pass
        calls_after, cpu_after = redis_calls(store), fleet.cpu(fleet.replicas)
        out["burst_stalls"] = stalls(fleet, wave_started, time.time())
        out["burst_profile"] = stop_profile(spy)
        out["load_profile"] = stop_profile(self_spy)
        opened = int(store.info("stats")["total_connections_received"]) - opened_before
        out["redis_connections_opened_in_wave"] = opened
        own = os.times()
        out["wave"] = {
            "seconds": time.time() - wave_started - 2.0,  # from the moment the tasks end
            "replicas_cpu_s": cpu_after - cpu_before,
            "workers_cpu_s": fleet.cpu(fleet.workers) - workers_before,
            "load_cpu_s": own.user + own.system - own_before.user - own_before.system,
        }
        for task in [*streams, *listeners]:
            task.cancel()
        await asyncio.gather(*streams, *listeners, return_exceptions=True)
        gc.unfreeze()
        out["burst"] = {dialect: delays_of(list(d.values())) for dialect, d in seen.delays.items()}
        out["followed"] = {LEGACY: legacy_count, MODERN: followed - legacy_count}
        out["redis_calls_per_task"] = (calls_after - calls_before) / settings.tasks
        out["replica_cpu_ms_per_task"] = (cpu_after - cpu_before) * 1000 / settings.tasks

        # 5. store
        await asyncio.sleep(1.0)
        memory_after = int(store.info("memory")["used_memory"])
        out["redis_bytes_per_finished_task"] = (memory_after - memory_before) / in_flight
        sample = [*modern_ids[:10], *sorted(seen.wanted - set(modern_ids))[:10]]
        usage = [store.memory_usage(f"mcp-tasks:{{scale}}:run:{key}") or 0 for key in sample]
        out["run_hash_bytes"] = statistics.median(usage)
        others: Counter[str] = Counter()
        for name in store.scan_iter("mcp-tasks:{scale}:*", count=1000):
            kind = name.decode().split(":", 3)[2]
            if kind != "run":
                others[kind] += store.memory_usage(name) or 0
        out["other_keys_bytes"] = dict(others.most_common())
        out["list_ms"] = (list_before, await timed(lambda: lister.call("tasks/list", {})))
        out["metrics_ms"] = (metrics_before, await timed(lambda: http.get(metrics_url)))

    # 5. pollers, on connections of their own (the pool above idled past uvicorn's keep-alive)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120.0)) as http:
        out["pollers"] = await pollers(settings, fleet, http)
    # 6. the store grown to 10k and 100k finished tasks, then the same reads again
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120.0)) as http:
        out["stores"] = await grown_stores(settings, fleet, http, store)
    store.close()
    return out


async def grown_stores(
    settings: Settings, fleet: Fleet, http: httpx.AsyncClient, store: redis.Redis
) -> list[dict[str, Any]]:
    """Fill the store with finished ``nap(0)`` tasks to each size of ``settings.stores``;
    at each, Redis bytes per finished task and the reads that must stay flat: a
    ``tasks/list`` page, ``/metrics``, and the dashboard's first frame (``/tasks/events``).
    Up to ``THROUGH_HTTP`` tasks (``--quick``: 500) are 2026-07-28 creates through the
    replicas (64 at a time); past that, to keep the run short, the load generator adds the
    rest to the docket itself with the call and meta the MCP layer gives a task (read from
    one created through it), so the workers run them as tool calls: the same records."""
    peers = [Peer(http, url, MODERN) for url in fleet.urls]
    lister = Peer(http, fleet.urls[0], LEGACY)
    await lister.open()
    for _ in range(5):
        await lister.create("nap", {"seconds": 0})
    base = fleet.urls[0].removesuffix("/mcp")

    async def first_frame() -> None:
        async with http.stream("GET", f"{base}/tasks/events") as response:
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    return

    results, made = [], int(store.hget("mcp-tasks:{scale}:stats", "created:nap") or 0)
    memory_before, tasks_before = int(store.info("memory")["used_memory"]), made
    for size in settings.stores:
        started = time.perf_counter()
        through_http = max(0, min(size, 500 if settings.quick else THROUGH_HTTP) - made)
        # Creates are not idempotent: never retried, so a failed one shows as a shortfall.
        creates = [peers[i % len(peers)].create("nap", {"seconds": 0}) for i in range(through_http)]
        ids = await gather_limited(creates, 64)
        if size - made > through_http:
            await add_directly(fleet.url, size - made - through_http, ids[-1] if ids else None)
        async with asyncio.timeout(600):
            while int(store.hget("mcp-tasks:{scale}:stats", "completed:nap") or 0) < size:  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.2)
        made = size
        filled_s = time.perf_counter() - started
        await asyncio.sleep(1.0)
        memory = int(store.info("memory")["used_memory"])
        results.append(
            {
                "finished": size,
                "fill_s": filled_s,
                "redis_bytes_per_finished_task": (memory - memory_before) / (size - tasks_before),
                "list_ms": await timed(lambda: lister.call("tasks/list", {})),
                "metrics_ms": await timed(lambda: http.get(f"{base}/metrics")),
                "dashboard_ms": await timed(first_frame),
            }
        )
    return results


THROUGH_HTTP = 10_000


async def add_directly(url: str, count: int, model: str | None) -> None:
    """Add ``count`` tasks like ``model`` (a task created through MCP) to the docket."""
    from mcp_tasks.engine import Docket
    from mcp_tasks.server.runner import TOOL_FUNCTION

    async def stand_in(*_: Any) -> None:
        """Never runs here: the workers have the real tool function."""

    async with Docket(name="scale", url=url) as docket:
        docket.register(stand_in, name=TOOL_FUNCTION)
        state = await docket.get(model) if model else None
        meta = state.meta if state is not None else {"tool": "nap", "adapt": True}
        call = ("nap", {"seconds": 0}, {"transport": "streamable-http", "token": None})
        for first in range(0, count, 1000):
            rows = [call] * min(1000, count - first)
            await docket.add_many(TOOL_FUNCTION, rows, meta=meta, label="nap")


def peer_pollers(settings: Settings, folder: Path) -> dict[str, Any] | None:
    """fastmcp-tasks on the pollers' workload (benchmarks/scale_peer.py, in its own venv),
    once our fleet has stopped: its own Redis and servers, its own client at its defaults."""
    if not settings.peer_python:
        return None
    out = folder / "peer.json"
    command = [settings.peer_python, str(ROOT / "benchmarks/scale_peer.py"), "--json", str(out)]
    command += ["--quick"] if settings.quick else ["--tasks", str(settings.pollers)]
    with open(folder / "peer.log", "ab") as log:
        subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=900)
    return dict(json.loads(out.read_text())) if out.exists() else None


async def loop_lag(lags: list[float]) -> None:
    """How late this process's event loop wakes a 10 ms sleep: a load generator that cannot
    keep up would count its own delays as the servers'."""
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - asked - 0.01)


async def pollers(settings: Settings, fleet: Fleet, http: httpx.AsyncClient) -> dict[str, Any]:
    lengths = [length / (10 if settings.quick else 1) for length in LENGTHS]
    polls: dict[float, list[int]] = {length: [] for length in lengths}
    late: dict[float, list[float]] = {length: [] for length in lengths}
    answered: dict[float, list[float]] = {length: [] for length in lengths}
    gets = Counter[str]()
    finished: list[str] = []

    spread = 0.5 if settings.quick else 5.0

    async def poller(index: int) -> None:
        # A crowd arriving over a few seconds, not all in one instant: a spike of creates
        # would measure the queue at the door, not polling.
        await asyncio.sleep(spread * index / settings.pollers)
        length = lengths[index % len(lengths)]
        peer = Peer(http, fleet.urls[index % len(fleet.urls)], MODERN)
        sent = time.perf_counter()
        created = await peer.call(
            "tools/call", {"name": "nap", "arguments": {"seconds": length}}, "nap"
        )
        answered[length].append(time.perf_counter() - sent)
        task_id, interval = created["taskId"], created.get("pollIntervalMs") or 1000
        count = 0
        while True:
            await asyncio.sleep(interval / 1000)
            state = await peer.call("tasks/get", {"taskId": task_id})
            count += 1
            gets["tasks/get"] += 1
            interval = state.get("pollIntervalMs") or interval
            if state["status"] in ("completed", "failed", "cancelled"):
                finished.append(task_id)
                late[length].append(time.time() - moment(state["lastUpdatedAt"]))
                polls[length].append(count)
                return

    store = redis.Redis(port=fleet.redis_port)
    cpu_before, everything_before = (
        fleet.cpu(fleet.replicas),
        fleet.cpu(fleet.replicas + fleet.workers),
    )
    calls_before = redis_calls(store)
    spy = profile(settings, fleet, "pollers")
    started = time.perf_counter()
    lags: list[float] = []
    probe = asyncio.create_task(loop_lag(lags))
    await asyncio.gather(*(poller(i) for i in range(settings.pollers)))
    probe.cancel()
    elapsed = time.perf_counter() - started
    cpu = fleet.cpu(fleet.replicas) - cpu_before
    # What a completed task cost in all: replicas and workers (fastmcp-tasks runs its
    # workers inside its servers, so this is the figure to set beside its servers' CPU).
    everything = fleet.cpu(fleet.replicas + fleet.workers) - everything_before
    calls = redis_calls(store) - calls_before
    store.close()
    requests = gets["tasks/get"] + settings.pollers
    shares = stop_profile(spy)

    # tasks/get alone: back-to-back reads of finished tasks, 32 at a time, through both
    # replicas (what a crowd of pollers costs per request, nothing else mixed in).
    ended = list(finished)
    count = 500 if settings.quick else 5000
    peers = [Peer(http, url, MODERN) for url in fleet.urls]
    reads = [
        peers[i % len(peers)].call("tasks/get", {"taskId": ended[i % len(ended)]})
        for i in range(count)
    ]
    get_before = fleet.cpu(fleet.replicas)
    get_started = time.perf_counter()
    await gather_limited(reads, 32)
    get_seconds = time.perf_counter() - get_started
    get_cpu = fleet.cpu(fleet.replicas) - get_before
    return {
        "get_cpu_ms": get_cpu * 1000 / count,
        "get_per_s": count / get_seconds,
        "gets": count,
        "profile": shares,
        "cpu_ms_per_request": cpu * 1000 / requests,
        "server_cpu_ms_per_task": everything * 1000 / settings.pollers,
        "redis_commands_per_task": calls / settings.pollers,
        "tasks_get_per_task": gets["tasks/get"] / settings.pollers,
        "requests": requests,
        "seconds": elapsed,
        "load_generator_lag_p99_ms": percentile(lags, 0.99) * 1000 if lags else 0.0,
        "by_length": {
            length: {
                "polls_median": statistics.median(polls[length]),
                "seen_late_p50_ms": percentile(late[length], 0.5) * 1000,
                "seen_late_p99_ms": percentile(late[length], 0.99) * 1000,
                "seen_late_max_ms": max(late[length]) * 1000,
                "create_answered_p50_ms": percentile(answered[length], 0.5) * 1000,
                "create_answered_p99_ms": percentile(answered[length], 0.99) * 1000,
            }
            for length in lengths
            if polls[length]
        },
    }


# -- where a replica's time goes (py-spy) ----------------------------------------------------

GROUPS = (
    ("mcp-tasks", ("(mcp_tasks/",)),
    ("redis-py", ("(redis/",)),
    ("mcp SDK", ("(mcp/",)),
    ("fastmcp", ("(fastmcp/",)),
    ("HTTP (uvicorn, starlette, sse)", ("(uvicorn/", "(starlette/", "(sse_starlette/", "(h11/")),
    ("pydantic", ("(pydantic",)),
)


def profile(
    settings: Settings, fleet: Fleet, phase: str, pid: int | None = None, name: str = "replica-0"
) -> tuple[subprocess.Popen[bytes], Path] | None:
    if not settings.profiler:
        return None
    out = fleet.folder / f"{name}-{phase}.txt"
    pid = fleet.replicas[0].pid if pid is None else pid
    command = [settings.profiler, "record", "-p", str(pid), "-r", "250"]
    command += ["-f", "raw", "-o", str(out), "--nonblocking"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return process, out


def stop_profile(spy: tuple[subprocess.Popen[bytes], Path] | None) -> dict[str, float]:
    """Share of the samples (inclusive) whose stack passes through each group's code."""
    if spy is None:
        return {}
    process, out = spy
    process.send_signal(2)  # SIGINT: py-spy writes its file and exits
    process.wait(30)
    totals: Counter[str] = Counter()
    samples = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples += int(count)
        for group, needles in GROUPS:
            if any(n in stack for n in needles):
                totals[group] += int(count)
    return {group: totals[group] * 100 / samples for group, _ in GROUPS} if samples else {}


# -- the report -------------------------------------------------------------------------------


def report(settings: Settings, out: dict[str, Any]) -> None:
    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    def row(*cells: str) -> None:
        print("| " + " | ".join(cells) + " |")

    burst = out["burst"]
    print(
        f"\nscale run: {out['in_flight']:,} tasks in flight ({settings.tasks:,} end in a burst, "
        f"{settings.steady:,} one by one over {settings.steady_seconds:g} s before it), "
        f"{out['listeners']:,} listeners "
        f"(2026-07-28) + {settings.sessions} 2025-11-25 sessions with a GET stream, "
        f"{settings.replicas} API replicas, {settings.workers} workers, one Redis; "
        f"{os.cpu_count()} cores"
    )
    print("\n| measure | figure | target |")
    print("|---|---|---|")
    row("tasks created per second (both dialects)", f"{out['create_per_s']:,.0f}", "")
    replica = out["replica_bytes_per_task"]
    row(
        "replica memory per task in flight",
        f"{replica:,.0f} B",
        f"≤ 2,048 B: {met(replica <= 2048)}",
    )
    row("worker memory per task in flight", f"{out['worker_bytes_per_task']:,.0f} B", "")
    row("replica memory per listen stream", f"{out['replica_bytes_per_listener']:,.0f} B", "")
    steady = out["steady"]
    missed = steady["followed"] - steady["got"]
    row(
        f"steady: {settings.steady:,} ends over {settings.steady_seconds:g} s, end → client, "
        f"{out['listeners']:,} listeners open",
        f"p50 {steady['p50_ms']:,.0f} ms, p99 {steady['p99_ms']:,.0f} ms, "
        f"max {steady['max_ms']:,.0f} ms, missed {missed}",
        f"p99 ≤ 50 ms: {met(steady['p99_ms'] <= 50 and missed == 0)}"
        + ("" if out["listeners"] >= 10_000 else " (target is for 10,000 listeners)"),
    )
    row(
        "steady: replica CPU, Redis commands per task; this load generator's loop lag p99, max",
        f"{steady['replica_cpu_ms_per_task']:.2f} ms, {steady['redis_calls_per_task']:.1f}; "
        f"{steady['load_generator_lag_p99_ms']:,.0f} ms, "
        f"{steady.get('load_generator_lag_max_ms', 0):,.0f} ms",
        "",
    )
    for phase, found in (("steady", steady["stalls"]), ("burst", out["burst_stalls"])):
        for kind, what in (("gc-pause", "garbage collections"), ("loop-lag", "loop wake-ups late")):
            pauses = found[kind]
            row(
                f"{phase}: the replicas' {what}, ≥ 20 ms",
                f"{pauses['count']}, longest {pauses['max_ms']:,.0f} ms, "
                f"in all {pauses['total_ms']:,.0f} ms",
                "",
            )
    for dialect, name in ((MODERN, "2026-07-28 listeners"), (LEGACY, "2025-11-25 sessions")):
        b = burst[dialect]
        missed = out["followed"][dialect] - b["got"]
        target = f"≤ 200 ms: {met(b['p99_ms'] <= 200 and missed == 0)}"
        row(
            f"burst, end → client, {name}",
            f"p50 {b['p50_ms']:,.0f} ms, p99 {b['p99_ms']:,.0f} ms, max {b['max_ms']:,.0f} ms, "
            f"missed {missed}",
            f"p99 {target}",
        )
    calls = out["redis_calls_per_task"]
    row("Redis commands per task in the wave", f"{calls:.1f}", f"≤ 10: {met(calls <= 10)}")
    wave = out["wave"]
    row(
        "the wave: seconds from the tasks' end to the last notification; CPU seconds used",
        f"{wave['seconds']:.1f} s; replicas {wave['replicas_cpu_s']:.1f}, workers "
        f"{wave['workers_cpu_s']:.1f}, this load generator {wave['load_cpu_s']:.1f}",
        f"{os.cpu_count()} cores",
    )
    row(
        "Redis connections opened during the wave",
        f"{out['redis_connections_opened_in_wave']:,}",
        "",
    )
    row("replica CPU per task in the wave", f"{out['replica_cpu_ms_per_task']:.2f} ms", "")
    stored = out["redis_bytes_per_finished_task"]
    row("Redis bytes per finished task", f"{stored:,.0f} B", f"≤ 1,536 B: {met(stored <= 1536)}")
    row("… of which its record (MEMORY USAGE, median)", f"{out['run_hash_bytes']:,.0f} B", "")
    rest = ", ".join(
        f"{kind} {size / out['in_flight']:,.0f}" for kind, size in out["other_keys_bytes"].items()
    )
    row("… the docket's other keys, per finished task (B)", rest, "")
    for label, key in (("tasks/list page (5 tasks)", "list_ms"), ("/metrics", "metrics_ms")):
        before, after = out[key]
        store = f"{label}: empty store → {out['in_flight']:,} finished"
        row(store, f"{before:.1f} → {after:.1f} ms", "flat")
    p = out["pollers"]
    cpu = p["cpu_ms_per_request"]
    requests = f"pollers: replica CPU per request, creates included ({p['requests']:,})"
    row(requests, f"{cpu:.2f} ms", "")
    lag = "pollers: this load generator's event-loop lag, p99"
    row(lag, f"{p.get('load_generator_lag_p99_ms', 0):,.0f} ms", "")
    get_cpu = p["get_cpu_ms"]
    gets = f"tasks/get alone: replica CPU per request ({p['gets']:,}, 32 at a time)"
    row(gets, f"{get_cpu:.2f} ms ({p['get_per_s']:,.0f}/s)", f"≤ 0.5 ms: {met(get_cpu <= 0.5)}")
    for length, figures in p["by_length"].items():
        late = (
            f"{figures['seen_late_p50_ms']:,.0f} ms late (max {figures['seen_late_max_ms']:,.0f})"
        )
        seen = f"{figures['polls_median']:g} polls, end seen {late}; create answered in "
        seen += f"{figures['create_answered_p50_ms']:,.0f} ms (p99 "
        seen += f"{figures['create_answered_p99_ms']:,.0f})"
        row(f"pollers: a {length:g} s task", seen, "a handful; quick ones within ~150 ms")
    for grown in out["stores"]:
        size = f"{grown['finished']:,}"
        per = grown["redis_bytes_per_finished_task"]
        row(
            f"store of {size} finished: Redis bytes per finished task", f"{per:,.0f} B", "≤ 1,536 B"
        )
        reads = f"list {grown['list_ms']:.1f}, metrics {grown['metrics_ms']:.1f}, "
        reads += f"dashboard first frame {grown['dashboard_ms']:.1f}"
        row(f"store of {size} finished: reads (ms)", reads, "flat")
    peer_table(out)
    for phase, shares in (("burst", out["burst_profile"]), ("pollers", p["profile"])):
        if shares:
            parts = ", ".join(f"{group} {share:.0f} %" for group, share in shares.items())
            print(f"\nreplica 0 during the {phase}, share of py-spy samples in each: {parts}")


def peer_table(out: dict[str, Any]) -> None:
    """The pollers' workload on both systems: ours (replicas + workers, its pollers at the
    suggested interval) and fastmcp-tasks (servers with their in-process workers, its own
    client's polling schedule)."""
    ours, peer = out["pollers"], out.get("peer")
    if peer is None:
        print("\n(fastmcp-tasks not run: give --peer-python, see benchmarks/mcp-requirements.txt)")
        return
    failed = sum(peer["failed"].values()) if isinstance(peer["failed"], dict) else peer["failed"]
    print(
        f"\npollers, the same {peer['tasks']:,} tasks on both (mcp-tasks: {len(LENGTHS)} "
        f"lengths, its suggested pollIntervalMs; fastmcp-tasks {peer['versions']['fastmcp-tasks']}"
        f": its client's defaults, advertised interval {peer['advertised_poll_interval_ms']} ms)"
    )
    print("\n| per completed task | mcp-tasks | fastmcp-tasks | ratio |")
    print("|---|---|---|---|")

    def line(label: str, mine: float, theirs: float, unit: str = "") -> None:
        ratio = f"{mine / theirs:.2f}x" if theirs else "—"
        print(f"| {label} | {mine:,.2f}{unit} | {theirs:,.2f}{unit} | {ratio} |")

    line(
        "server CPU (ms; servers + workers)",
        ours["server_cpu_ms_per_task"],
        peer["replica_cpu_ms_per_task"],
    )
    line("Redis commands", ours["redis_commands_per_task"], peer["redis_commands_per_task"])
    line("tasks/get requests", ours["tasks_get_per_task"], peer["tasks_get"] / peer["tasks"])
    for length, figures in ours["by_length"].items():
        theirs = peer["by_length"].get(str(length)) or peer["by_length"].get(f"{length:g}")
        if theirs is None:
            continue
        print(
            f"| a {length:g} s task: polls (median); end seen late p50 / p99 | "
            f"{figures['polls_median']:g}; {figures['seen_late_p50_ms']:,.0f} / "
            f"{figures['seen_late_p99_ms']:,.0f} ms | {theirs['polls_median']:g}; "
            f"{theirs['seen_late_p50_ms']:,.0f} / {theirs['seen_late_p99_ms']:,.0f} ms | |"
        )
    print(f"| failed | 0 | {failed} | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    defaults = Settings()
    for name in ("tasks", "listeners", "steady", "sessions", "pollers", "replicas", "workers"):
        parser.add_argument(
            f"--{name}", type=int, default=None, help=f"default {getattr(defaults, name)}"
        )
    parser.add_argument(
        "--steady-seconds", type=float, default=None, help="default 30 (--quick: 3)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--profile", metavar="PY_SPY", help="py-spy binary: profile replica 0")
    parser.add_argument(
        "--stores", help="finished-task store sizes, comma-separated (default 10000,100000)"
    )
    venv = ROOT / ".bench-mcp-venv/bin/python"
    parser.add_argument(
        "--peer-python",
        default=str(venv) if venv.exists() else None,
        help="the Python of the fastmcp-tasks venv (default .bench-mcp-venv, when present)",
    )
    parser.add_argument("--no-peer", action="store_true", help="do not run fastmcp-tasks")
    args = parser.parse_args()
    settings = Settings.quick_run() if args.quick else Settings()
    settings.profiler = args.profile
    settings.peer_python = None if args.no_peer else args.peer_python
    if args.stores:
        settings.stores = tuple(int(size) for size in args.stores.split(","))
    for name in (
        "tasks",
        "listeners",
        "steady",
        "steady_seconds",
        "sessions",
        "pollers",
        "replicas",
        "workers",
    ):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    folder = Path(tempfile.mkdtemp(prefix="mcp-tasks-scale-"))
    fleet = Fleet(settings, folder)
    try:
        fleet.start()
        out = asyncio.run(run(settings, fleet))
    finally:
        fleet.close()
    out["peer"] = peer_pollers(settings, folder)
    report(settings, out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    print(f"\nlogs: {folder}")


if __name__ == "__main__":
    main()
