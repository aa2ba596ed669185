"""The processes of a chaos run (``benchmarks/chaos.py``): API-only server replicas and the
worker processes that are SIGKILLed and replaced, with their logs in one folder.

A module of its own so that chaos.py stays a readable size; chaos.py imports it from this
folder (see the note on sys.path there).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import topology

if TYPE_CHECKING:
    from chaos import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SERVER_FILE = "benchmarks/chaos_server.py"


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
            "MCP_TASKS_MIN_REPLICAS": str(settings.min_replicas),
            "MCP_TASKS_REPLICA_TIMEOUT": str(settings.replica_timeout),
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
            port = topology.free_port()
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
