"""Scale out on one machine: a Redis, two API-only server replicas, two worker processes.

    python examples/scale-out/scale_out.py --tasks 200 --seconds 0.2

Starts its own ``redis-server`` on a free loopback port (never 6379), two
``MCP_TASKS_WORKER=0 fastmcp run server.py --transport http`` replicas that only accept
calls, and two ``mcp-tasks worker server.py`` processes that run them. It then creates
``--tasks`` ``sleep`` tasks alternately on replica A and B (2026-07-28 tasks extension),
reads each result from the *other* replica, and prints who did what. Everything it started
is stopped on exit, Ctrl-C included. Needs redis-server.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastmcp import Client
from rich.console import Console
from rich.table import Table

from mcp_tasks.client import TasksClient
from mcp_tasks.engine import Docket

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # fastmcp and mcp-tasks live next to this Python
NAME = "scale-out"
console = Console()


def free_port() -> int:
    """A free loopback port from the kernel's ephemeral range (so never Redis's 6379)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on port {port} within 30 s")


@contextlib.contextmanager
def started(command: list[Any], what: str, **options: Any) -> Iterator[subprocess.Popen[bytes]]:
    """Run a process for the length of the block. It gets a session of its own, so Ctrl-C
    reaches only this script, which then stops everything in order (workers before Redis)."""
    process = subprocess.Popen(command, start_new_session=True, **options)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            console.print(f"{what} did not stop within 15 s: killed")
            process.kill()
            process.wait()


@contextlib.contextmanager
def cluster() -> Iterator[tuple[str, list[str], dict[int, str]]]:
    """Start everything; yield the Redis URL, the replica URLs and {worker pid: label}."""
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise SystemExit("redis-server is not on PATH (Debian: apt-get install redis-server)")
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        port = free_port()
        redis_url = f"redis://127.0.0.1:{port}/0"
        where = ["--bind", "127.0.0.1", "--port", str(port), "--dir", folder]
        in_memory = ["--save", "", "--appendonly", "no"]
        redis = started([redis_server, *where, *in_memory], "redis", stdout=subprocess.DEVNULL)
        wait_for_port(port, stack.enter_context(redis), "redis-server")
        console.print(f"redis-server on {redis_url}")

        env = {**os.environ, "MCP_TASKS_URL": redis_url, "MCP_TASKS_NAME": NAME}
        replicas = {}
        for label in "AB":
            port = free_port()
            http = ["--transport", "http", "--port", str(port), "--log-level", "WARNING"]
            command = [BIN / "fastmcp", "run", "server.py", *http, "--no-banner"]
            api_only = {**env, "MCP_TASKS_WORKER": "0"}
            replicas[label, port] = stack.enter_context(
                started(command, f"replica {label}", cwd=ROOT, env=api_only)
            )
        command = [BIN / "mcp-tasks", "worker", "server.py", "--ready"]
        workers = [
            stack.enter_context(
                started(command, "worker", cwd=ROOT, env=env, stdout=subprocess.PIPE)
            )
            for _ in range(2)
        ]
        urls = []
        for (label, port), replica in replicas.items():
            wait_for_port(port, replica, f"replica {label}")
            urls.append(f"http://127.0.0.1:{port}/mcp")
            console.print(f"replica {label} (API only) on {urls[-1]}")
        labels = {}
        for number, worker in enumerate(workers, 1):
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != b"ready":  # printed once it claims tasks
                raise SystemExit(f"worker {number} did not start")
            labels[worker.pid] = f"worker {number} (pid {worker.pid})"
            console.print(f"{labels[worker.pid]} ready")
        yield redis_url, urls, labels


async def drive(
    redis_url: str, replicas: list[str], labels: dict[int, str], tasks: int, seconds: float
) -> bool:
    """Run the load and print the summary; False if Ctrl-C cut it short."""
    created_on: collections.Counter[str] = collections.Counter()
    read_from: collections.Counter[str] = collections.Counter()
    in_flight = asyncio.Semaphore(50)
    ids: list[str] = []
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def interrupt() -> None:
        console.print("Ctrl-C: letting the tasks in flight finish (again to force)")
        stopping.set()
        loop.remove_signal_handler(signal.SIGINT)

    loop.add_signal_handler(signal.SIGINT, interrupt)
    tasks_a, tasks_b = TasksClient(), TasksClient()
    async with (
        Client(replicas[0], extensions=[tasks_a]) as a,
        Client(replicas[1], extensions=[tasks_b]) as b,
    ):
        clients = {"A": (a, tasks_a), "B": (b, tasks_b)}

        async def one(number: int) -> None:
            here, there = ("A", "B") if number % 2 == 0 else ("B", "A")
            async with in_flight:
                if stopping.is_set():
                    return
                client, tasks_here = clients[here]
                task = await tasks_here.call_tool(client, "sleep", {"seconds": seconds})
                # The same task through the other replica: its state lives in Redis.
                other, tasks_there = clients[there]
                final = await tasks_there.handle(other, task.task_id).wait(push=False)
            text = (final.result or {}).get("structuredContent", {}).get("result")
            if text != f"slept {seconds}s":
                raise SystemExit(f"task {task.task_id}: unexpected result {final.result!r}")
            ids.append(task.task_id)
            created_on[here] += 1
            read_from[there] += 1

        begin = time.perf_counter()
        await asyncio.gather(*(one(number) for number in range(tasks)))
        wall = time.perf_counter() - begin

    ran_on: collections.Counter[str] = collections.Counter()
    async with Docket(name=NAME, url=redis_url) as docket:  # the engine knows who ran what
        for task_id in ids:
            state = await docket.get(task_id)
            worker = state.worker if state is not None and state.worker else "?"
            pid = int(worker.rsplit("-", 2)[1]) if worker.count("-") >= 2 else 0  # host-pid-id
            ran_on[labels.get(pid, worker)] += 1

    table = Table("", "count", title=f"{tasks} x sleep({seconds}), 2 replicas, 2 workers")
    for replica in "AB":
        table.add_row(f"created on replica {replica}", str(created_on[replica]))
        table.add_row(f"result read from replica {replica}", str(read_from[replica]))
    for label in sorted(ran_on):
        table.add_row(f"ran on {label}", str(ran_on[label]))
    table.add_row("completed", str(len(ids)))
    table.add_row("wall time", f"{wall:.2f} s")
    table.add_row("throughput", f"{len(ids) / wall:.1f} tasks/s")
    console.print(table)
    return not stopping.is_set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=100, help="how many tasks (default 100)")
    parser.add_argument("--seconds", type=float, default=0.2, help="how long each one sleeps")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on SIGTERM too
    try:
        with cluster() as (redis_url, replicas, labels):
            finished = asyncio.run(drive(redis_url, replicas, labels, args.tasks, args.seconds))
    except KeyboardInterrupt:
        finished = False
    if not finished:
        console.print("interrupted; everything it started is stopped")
        sys.exit(130)


if __name__ == "__main__":
    main()
