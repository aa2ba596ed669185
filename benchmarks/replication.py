"""What ``min_replicas`` costs per task: the engine with replica confirmation off and on.

It starts its own primary and one replica (``redis-server`` from PATH, loopback, persistence
off) and measures the mcp-tasks engine on the primary, once with ``min_replicas=0`` (the
default: Redis replicates asynchronously) and once with ``min_replicas=1`` (every creation,
terminal state, cancellation and answer waits for the replica's ``WAIT`` confirmation before
anyone is told). The peer of each row is the same engine with the option off, in the same
run, on the same servers. Figures are medians of ``--runs`` runs:

* **add, one at a time**: sequential ``docket.add`` calls, ms per task (the latency a client
  sees when it creates a task), with an in-process worker (concurrency 50) running them;
* **100 concurrent callers**: N tasks added by 100 callers, one at a time each, and run by
  that worker, until the last is recorded completed: tasks/s from the first add;
* **WAIT calls per task** (``INFO commandstats``): one per creation, one per finished batch.

    .venv/bin/python benchmarks/replication.py            # --runs 5 --tasks 2000
    .venv/bin/python benchmarks/replication.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from mcp_tasks.engine import Docket, Worker  # noqa: E402


async def noop(i: int) -> int:
    return i


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def primary_with_replica() -> Iterator[str]:
    """A primary and one replica on free loopback ports; yields the primary's URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH (Debian: apt-get install redis-server)")
    primary, replica = free_port(), free_port()
    folder = tempfile.mkdtemp(prefix="mcp-tasks-replication-")  # the replica's synced RDB
    base = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder]
    processes = [
        subprocess.Popen([binary, "--port", str(primary), *base], stdout=subprocess.DEVNULL),
        subprocess.Popen(
            [binary, "--port", str(replica), *base, "--replicaof", "127.0.0.1", str(primary)],
            stdout=subprocess.DEVNULL,
        ),
    ]
    try:
        import redis

        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(redis.ConnectionError), redis.Redis(port=primary) as c:
                info = c.info("replication")
                if info.get("slave0", {}).get("state") == "online":
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the replica did not come online")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{primary}/0"
    finally:
        for process in processes:
            process.kill()
            process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Sample:
    add_ms: float
    lifecycle: float
    waits_per_task: float


async def waits(url: str) -> int:
    async with Redis.from_url(url) as admin:
        stats = await admin.info("commandstats")
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


async def measure(url: str, min_replicas: int, tasks: int, sequential: int) -> Sample:
    """One docket with a running worker: sequential adds, then 100 concurrent callers."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    before = await waits(url)
    async with Docket(name=name, url=url, min_replicas=min_replicas) as docket:
        docket.register(noop)
        completed = 0
        finished = asyncio.Event()

        def count(event: Any) -> None:
            nonlocal completed
            if event.status == "completed":
                completed += 1
                if completed >= sequential + tasks:
                    finished.set()

        docket.hub.on_every_event(count)
        await docket.hub.start()
        worker = Worker(docket, concurrency=50)
        await worker.start()
        runner = asyncio.create_task(worker.run_forever())
        try:
            started = time.perf_counter()
            for i in range(sequential):
                await docket.add(noop)(i)
            add_ms = (time.perf_counter() - started) * 1000 / sequential
            numbers = iter(range(tasks))

            async def caller() -> None:
                for i in numbers:
                    await docket.add(noop)(i)

            began = time.perf_counter()
            await asyncio.gather(*(caller() for _ in range(100)))
            await asyncio.wait_for(finished.wait(), 300)
            lifecycle = tasks / (time.perf_counter() - began)
        finally:
            await worker.stop(grace=5)
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        per_task = (await waits(url) - before) / (sequential + tasks)
        await docket.client.delete(*[k async for k in docket.client.scan_iter(f"*{name}*")])
    return Sample(add_ms, lifecycle, per_task)


async def run(runs: int, tasks: int, sequential: int) -> dict[int, list[Sample]]:
    samples: dict[int, list[Sample]] = {0: [], 1: []}
    with primary_with_replica() as url:
        for _ in range(runs):
            for setting in (0, 1):  # interleaved, so drift on a shared machine hits both
                samples[setting].append(await measure(url, setting, tasks, sequential))
    return samples


def table(samples: dict[int, list[Sample]]) -> str:
    def median(setting: int, field: str) -> float:
        return statistics.median(getattr(s, field) for s in samples[setting])

    rows = [
        ("add, one at a time (ms per task)", "add_ms", "{:.2f}"),
        ("100 concurrent callers: added and completed (tasks/s)", "lifecycle", "{:,.0f}"),
        ("WAIT calls per task", "waits_per_task", "{:.2f}"),
    ]
    lines = [
        "| measurement | min_replicas=0 (off) | min_replicas=1 | on / off |",
        "|---|---|---|---|",
    ]
    for label, field, shape in rows:
        off, on = median(0, field), median(1, field)
        ratio = f"{on / off:.2f}x" if off else "-"
        lines.append(f"| {label} | {shape.format(off)} | {shape.format(on)} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.tasks, args.sequential = 1, 200, 50
    samples = asyncio.run(run(args.runs, args.tasks, args.sequential))
    print(f"min_replicas cost: primary + 1 replica on loopback, medians of {args.runs} runs")
    print(table(samples))


if __name__ == "__main__":
    main()
