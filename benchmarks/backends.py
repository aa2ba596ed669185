"""What a task costs on ``memory://`` (in-process fakeredis) beside a local Redis, in one run.

    .venv/bin/python benchmarks/backends.py            # ~2 minutes on a 2-core machine
    .venv/bin/python benchmarks/backends.py --quick    # a smoke run

``memory://`` is the embedded default (``fastmcp run server.py`` with no Redis), so its cost is
what a first user meets. Everything runs in this one process, for each backend in turn, with
the same docket code, a no-op task and an in-process ``Worker``:

* **create**: ``--creates`` tasks added one at a time, one after another; wall-clock µs per
  task (what a caller waits) and this process's CPU µs per task;
* **drain**: ``--tasks`` tasks pre-filled with ``add_many``, then one in-process worker at
  concurrency 10 and 50 runs them all; tasks/s from the worker's start to the last task's end.

Three backends in each run: memory:// as mcp_tasks runs it (``engine/fakeredis_lua.py``
compiles each script once), memory:// on stock fakeredis (``MCP_TASKS_MEMORY_LUA=stock``), and a
Redis this benchmark starts on a free loopback port (no persistence), so no other client's
traffic lands in it. Runs alternate between the backends; every figure is the median of
``--runs`` runs; the ratio columns divide by Redis's figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from redis import Redis

from mcp_tasks.engine import Docket, Worker
from mcp_tasks.engine.connection import parse_url
from mcp_tasks.engine.fakeredis_lua import STOCK_SETTING

TASK = "bench.noop"
CONCURRENCIES = (10, 50)


class Counter:
    """Counts task bodies run in this process and says when the expected number is reached."""

    def __init__(self) -> None:
        self.count = 0
        self.expect = 0
        self.done = asyncio.Event()

    def reset(self, expect: int) -> None:
        self.count, self.expect, self.done = 0, expect, asyncio.Event()

    def hit(self) -> None:
        self.count += 1
        if self.count >= self.expect:
            self.done.set()


COUNTER = Counter()


async def noop(i: int) -> None:
    COUNTER.hit()


@dataclass
class Sizes:
    runs: int
    creates: int
    tasks: int


async def create_cost(url: str, sizes: Sizes) -> tuple[float, float]:
    """µs per create, wall clock and this process's CPU, one task after another."""
    async with Docket(name=f"bench-{uuid.uuid4().hex[:8]}", url=url) as docket:
        docket.register(noop, name=TASK)
        add = docket.add(TASK)
        for i in range(50):  # warm the script cache and the connection pool
            await add(i)
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(sizes.creates):
            await add(i)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return wall / sizes.creates * 1e6, cpu / sizes.creates * 1e6


async def drain_rate(url: str, sizes: Sizes, concurrency: int) -> float:
    """Tasks/s of one in-process worker over a pre-filled queue."""
    async with Docket(name=f"bench-{uuid.uuid4().hex[:8]}", url=url) as docket:
        docket.register(noop, name=TASK)
        for start in range(0, sizes.tasks, 500):
            await docket.add_many(TASK, [(i,) for i in range(start, start + 500)])
        COUNTER.reset(sizes.tasks)
        worker = Worker(docket, concurrency=concurrency)
        await worker.start()
        started = time.perf_counter()
        run = asyncio.create_task(worker.run_forever())
        try:
            async with asyncio.timeout(600):
                await COUNTER.done.wait()
            elapsed = time.perf_counter() - started
        finally:
            await worker.stop(grace=5)
            await run
        return sizes.tasks / elapsed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("no redis-server on PATH")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="backends-bench-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = Redis.from_url(url)
        for _ in range(100):
            with contextlib.suppress(Exception):
                if client.ping():
                    break
            time.sleep(0.05)
        else:
            raise SystemExit("the benchmark's redis-server did not start")
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


BACKENDS = ("memory://", "memory:// stock", "redis://")


async def measure(sizes: Sizes, redis_url: str) -> dict[str, dict[str, list[float]]]:
    figures: dict[str, dict[str, list[float]]] = {name: {} for name in BACKENDS}
    for run in range(sizes.runs):
        for name in BACKENDS:
            url = redis_url
            if name.startswith("memory"):
                # A fresh store per run; the setting is read when a store is first opened.
                url = f"memory://bench-{uuid.uuid4().hex[:8]}"
                stock = name.endswith("stock")
                os.environ[STOCK_SETTING] = "stock" if stock else ""
                store = parse_url(url).memory
                assert store is not None and store.fast_lua is not stock
            into = figures[name]
            wall, cpu = await create_cost(url, sizes)
            into.setdefault("create_wall", []).append(wall)
            into.setdefault("create_cpu", []).append(cpu)
            for concurrency in CONCURRENCIES:
                rate = await drain_rate(url, sizes, concurrency)
                into.setdefault(f"drain_{concurrency}", []).append(rate)
            print(
                f"run {run + 1}/{sizes.runs} {name}: create {wall:.0f} µs "
                + " ".join(f"c={c} {into[f'drain_{c}'][-1]:,.0f}/s" for c in CONCURRENCIES),
                flush=True,
            )
    return figures


def table(figures: dict[str, dict[str, list[float]]]) -> str:
    rows = [
        ("create, one task at a time: µs per task (wall) ↓", "create_wall", "{:,.0f}"),
        ("create: this process's CPU µs per task ↓", "create_cpu", "{:,.0f}"),
    ] + [
        (f"drain, in-process worker c={c} (tasks/s) ↑", f"drain_{c}", "{:,.0f}")
        for c in CONCURRENCIES
    ]
    lines = [
        "| metric (median of runs) | memory:// | memory:// on stock fakeredis | redis:// (local) "
        "| memory ÷ Redis | stock ÷ Redis |",
        "|---|---|---|---|---|---|",
    ]
    for label, key, fmt in rows:
        ours, stock, redis = (statistics.median(figures[name][key]) for name in BACKENDS)
        lines.append(
            f"| {label} | {fmt.format(ours)} | {fmt.format(stock)} | {fmt.format(redis)} "
            f"| {ours / redis:.2f}x | {stock / redis:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="1 run, small sizes: a smoke run")
    args = parser.parse_args()
    sizes = Sizes(1, 200, 500) if args.quick else Sizes(args.runs, args.creates, args.tasks)
    with private_redis() as url:
        figures = asyncio.run(measure(sizes, url))
    print()
    print(table(figures))


if __name__ == "__main__":
    main()
