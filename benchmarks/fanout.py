"""What a docket's events cost as replicas are added: a simulation of 1 to 1,000 replicas.

    .venv/bin/python benchmarks/fanout.py            # ~2 minutes on a 2-core machine
    .venv/bin/python benchmarks/fanout.py --quick    # a smoke run

A server replica follows the tasks its own clients follow. This runs ``--tasks`` tasks
through one worker on a Redis of its own (loopback, no persistence) while N simulated
replicas (one ``Docket`` each: its own connection and event hub, all in this process) each
follow 1/N of them, for N in ``REPLICAS``, two ways:

* **per-task channels** (what the engine does): each replica subscribes to the channels of
  the tasks it follows (``EventHub.add_task_listener``), so Redis sends an event only to the
  replica following that task;
* **one docket channel** (the engine before this change, kept as the dashboards' channel):
  each replica reads every event of the docket (``EventHub.on_every_event``) and keeps those
  of its own tasks.

Per completed task: events delivered to the replicas (all of them together: what their CPU
pays to parse), this process's CPU (every replica's hub, plus the worker and the creating
client, the same in both ways), and Redis's CPU (its fan-out). Flat as N grows is the goal.
Medians of ``--runs`` runs, the two ways interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from mcp_tasks.engine import Docket, Worker
from mcp_tasks.engine.events import Event

REPLICAS = (1, 4, 16, 64, 256, 1000)
WAYS = ("per-task channels", "one docket channel")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def noop(n: int) -> int:
    return n


async def one_run(url: str, name: str, tasks: int, replicas: int, way: str) -> dict[str, float]:
    """N replicas follow their share of ``tasks`` tasks until every one has ended."""
    creator = Docket(name=name, url=url)
    await creator.open()
    creator.register(noop)
    hubs = [Docket(name=name, url=url, max_connections=2) for _ in range(replicas)]
    await asyncio.gather(*(hub.open() for hub in hubs))
    delivered = [0]
    ended = asyncio.Event()
    pending: set[str] = set()

    def follower(mine: set[str]) -> Any:
        def on_event(event: Event) -> None:
            delivered[0] += 1
            if event.key in mine and event.status == "completed":
                pending.discard(event.key)
                if not pending:
                    ended.set()

        return on_event

    keys = [f"task-{i}" for i in range(tasks)]
    pending.update(keys)
    for index, hub in enumerate(hubs):
        mine = set(keys[index::replicas])
        callback = follower(mine)
        if way == WAYS[0]:
            for key in mine:
                hub.hub.add_task_listener(key, callback)
            await hub.hub.ready(*mine)
        else:
            hub.hub.on_every_event(callback)
            await hub.hub.start()
    store = redis.Redis.from_url(url)
    redis_before, own_before = redis_cpu(store), time.process_time()
    started = time.perf_counter()
    worker = Worker(creator, concurrency=100)
    await worker.start()
    claiming = asyncio.create_task(worker.run_forever())
    for first in range(0, tasks, 100):
        await asyncio.gather(
            *(creator.add(noop, key=key)(n) for n, key in enumerate(keys[first : first + 100]))
        )
    async with asyncio.timeout(120):
        await ended.wait()
    await worker.stop(grace=5)
    await claiming
    seconds = time.perf_counter() - started
    result = {
        "events_per_task": delivered[0] / tasks,
        "process_cpu_ms_per_task": (time.process_time() - own_before) * 1000 / tasks,
        "redis_cpu_us_per_task": (redis_cpu(store) - redis_before) * 1e6 / tasks,
        "seconds": seconds,
    }
    store.close()
    for hub in hubs:
        await hub.close()
    await creator.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--tasks", type=int, default=None, help="default 2,000 (--quick 200)")
    parser.add_argument("--runs", type=int, default=None, help="default 3 (--quick 1)")
    args = parser.parse_args()
    tasks = args.tasks or (200 if args.quick else 2000)
    runs = args.runs or (1 if args.quick else 3)
    counts = (1, 4, 16) if args.quick else REPLICAS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))

    folder = Path(tempfile.mkdtemp(prefix="mcp-tasks-fanout-"))
    port = free_port()
    server = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
         "127.0.0.1", "--save", "", "--appendonly", "no", "--maxclients", "20000"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                redis.Redis(port=port).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        figures: dict[tuple[str, int], list[dict[str, float]]] = {}
        for run in range(runs):
            for replicas in counts:
                for way in WAYS if run % 2 == 0 else reversed(WAYS):
                    name = f"fanout-{run}-{replicas}-{WAYS.index(way)}"
                    outcome = asyncio.run(one_run(url, name, tasks, replicas, way))
                    figures.setdefault((way, replicas), []).append(outcome)
    finally:
        server.terminate()
        server.wait(10)
    report(figures, tasks, runs, counts)


def report(
    figures: dict[tuple[str, int], list[dict[str, float]]],
    tasks: int,
    runs: int,
    counts: tuple[int, ...],
) -> None:
    def median(way: str, replicas: int, measure: str) -> float:
        return statistics.median(f[measure] for f in figures[(way, replicas)])

    print(
        f"\n{tasks:,} tasks, each replica following 1/N of them; medians of {runs} run(s); "
        f"{os.cpu_count()} cores\n"
    )
    print("| replicas | events delivered per task (all replicas) | this process's CPU per task "
          "| Redis CPU per task |")  # fmt: skip
    print("|---|---|---|---|")
    for replicas in counts:
        cells = []
        for measure, unit, digits in (
            ("events_per_task", "", 1),
            ("process_cpu_ms_per_task", " ms", 2),
            ("redis_cpu_us_per_task", " µs", 0),
        ):
            mine, old = (median(way, replicas, measure) for way in WAYS)
            cells.append(f"{mine:,.{digits}f}{unit} (one channel: {old:,.{digits}f}{unit})")
        print(f"| {replicas:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
