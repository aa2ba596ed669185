"""Replica failover: tasks created on replica A, A SIGKILLed while they run, read on B.

Two API-only HTTP replicas (``fastmcp run tests/processes/failover_server.py``) and one separate
``mcp-tasks worker`` share the real Redis (this test's own docket name). Clients of both
dialects create tasks on A; while they run A is killed; the same callers, now connected to B,
keep following them: the 2026-07-28 caller through a ``subscriptions/listen`` push stream on
B that was open when A died, then ``tasks/get``; the 2025-11-25 caller with the blocking
``tasks/result``, ``tasks/get`` and ``tasks/list`` on B.

Why the callers authenticate (bearer tokens, ``StaticTokenVerifier``): an unauthenticated
2025-11-25 task over HTTP belongs to its HTTP session, and a session lives in the memory of
the replica that made it. B has never heard of A's session (a client resending A's
``Mcp-Session-Id`` to B gets 404), so a new session on B would rightly be told the task does
not exist. With a principal the task belongs to the principal, which any replica recognises
from the token: that is the honest failover for that dialect. (2026-07-28 is sessionless;
unauthenticated, its tasks are bound to no one and reachable by id from anywhere.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client

from mcp_tasks.engine import Docket, Status
from mcp_tasks.server.runner import TOOL_FUNCTION
from tests.helpers.dockets import purge
from tests.helpers.mcp import Recorder, legacy, legacy_conforms, modern, modern_conforms
from tests.helpers.redis_process import RedisProcess
from tests.helpers.servers import BIN, ROOT, free_port, stop, wait_for_port

pytestmark = pytest.mark.anyio
SERVER = "tests/processes/failover_server.py"
SECONDS = 3.0  # how long each task runs: A dies well within it


class Fleet:
    """Replica A, replica B and a worker process on one docket."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env}
        self.ports = {name: free_port() for name in ("a", "b")}
        self.replicas = {name: self._replica(port) for name, port in self.ports.items()}
        self.worker = subprocess.Popen(
            [str(BIN / "mcp-tasks"), "worker", SERVER, "--ready"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
        )

    def _replica(self, port: int) -> subprocess.Popen[bytes]:
        command = [str(BIN / "fastmcp"), "run", SERVER, "--transport", "http", "--no-banner"]
        return subprocess.Popen(
            [*command, "--port", str(port), "--log-level", "WARNING"],
            cwd=ROOT,
            env={**self.env, "MCP_TASKS_WORKER": "0"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self) -> None:
        for name, process in self.replicas.items():
            wait_for_port(self.ports[name], process)
        assert self.worker.stdout is not None
        assert self.worker.stdout.readline().strip() == b"ready"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}/mcp"

    def kill_a(self) -> None:
        self.replicas["a"].send_signal(signal.SIGKILL)
        assert self.replicas["a"].wait(10) == -signal.SIGKILL

    def close(self) -> None:
        stop([*self.replicas.values(), self.worker])


@pytest.fixture
def fleet(redis_url: str, docket_name: str) -> Iterator[Fleet]:
    fleet = Fleet({"MCP_TASKS_URL": redis_url, "MCP_TASKS_NAME": docket_name})
    try:
        fleet.wait_ready()
        yield fleet
    finally:
        fleet.close()
        asyncio.run(purge(redis_url, docket_name))  # once every process of the docket stopped


@contextlib.asynccontextmanager
async def connected(url: str, token: str, **options: Any) -> AsyncIterator[Client[Any]]:
    """A client whose server may die under it: leaving it then raises nothing."""
    client = Client(url, auth=token, timeout=30, **options)
    await client.__aenter__()
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await client.__aexit__(None, None, None)


async def all_running(docket: Docket, task_ids: list[str]) -> None:
    async def running(task_id: str) -> None:
        async for state in docket.watch(task_id):
            if state.status is Status.RUNNING and state.progress is not None:
                return

    async with asyncio.timeout(30):
        await asyncio.gather(*(running(t) for t in task_ids))


async def test_tasks_outlive_the_replica_that_created_them(
    fleet: Fleet, redis_url: str, docket_name: str
) -> None:
    recorder = Recorder()
    pushes = recorder.binding("notifications/tasks")
    async with (
        Docket(name=docket_name, url=redis_url) as docket,
        connected(fleet.url("a"), "modern-token") as a_modern,
        connected(fleet.url("a"), "legacy-token", mode="legacy") as a_legacy,
        connected(
            fleet.url("b"), "modern-token", message_handler=recorder, extensions=[pushes]
        ) as b_modern,
    ):
        assert a_legacy.protocol_version == "2025-11-25"
        modern_ids = []
        for n in (1, 2):
            call = {"name": "slow", "arguments": {"n": n, "seconds": SECONDS}}
            modern_ids.append((await modern(a_modern, "tools/call", call))["taskId"])
        legacy_ids = []
        for n in (3, 4):
            call = {"name": "slow", "arguments": {"n": n, "seconds": SECONDS}, "task": {}}
            legacy_ids.append((await legacy(a_legacy, "tools/call", call))["task"]["taskId"])
        await all_running(docket, modern_ids + legacy_ids)
        # B's push stream for the modern tasks is open before A dies.
        listening = asyncio.create_task(
            modern(b_modern, "subscriptions/listen", {"notifications": {"taskIds": modern_ids}})
        )
        await recorder.until(lambda: recorder.acks)
        assert (recorder.acks[0].notifications.model_extra or {}) == {"taskIds": modern_ids}

        fleet.kill_a()
        for task_id in modern_ids + legacy_ids:  # A died while every task was still running
            state = await docket.get(task_id)
            assert state is not None and state.status is Status.RUNNING, state

        # 2025-11-25: the same principal, a new session on B, follows its tasks to the end.
        async with connected(fleet.url("b"), "legacy-token", mode="legacy") as b_legacy:
            async with asyncio.timeout(30):
                results = await asyncio.gather(
                    *(legacy(b_legacy, "tasks/result", {"taskId": t}) for t in legacy_ids)
                )
            for n, result in zip((3, 4), results, strict=True):
                legacy_conforms("CallToolResult", result)
                assert result["structuredContent"] == {"result": n * 10}
            for task_id in legacy_ids:
                got = await legacy(b_legacy, "tasks/get", {"taskId": task_id})
                legacy_conforms("GetTaskResult", got)
                assert got["status"] == "completed"
            listed = await legacy(b_legacy, "tasks/list", {})
            assert {t["taskId"] for t in listed["tasks"]} == set(legacy_ids)

        # 2026-07-28: B pushed every change to the end; the listen ended by itself.
        await asyncio.wait_for(listening, 30)
        for n, task_id in zip((1, 2), modern_ids, strict=True):
            final = [s for s in recorder.statuses if s["taskId"] == task_id][-1]
            final.pop("_meta", None)
            modern_conforms("DetailedTask", final)
            assert final["status"] == "completed"
            assert final["result"]["structuredContent"] == {"result": n * 10}
            got = await modern(b_modern, "tasks/get", {"taskId": task_id})
            assert got["status"] == "completed"
            assert got["result"]["structuredContent"] == {"result": n * 10}
        # Each ran once: the worker never died, only the replica did.
        for task_id in modern_ids + legacy_ids:
            state = await docket.get(task_id)
            assert state is not None and state.attempt == 1
    await purge(redis_url, docket_name)


def start_worker(url: str, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN / "mcp-tasks"), "worker", SERVER, "--ready", "--url", url],
        cwd=ROOT,
        env={**os.environ, "MCP_TASKS_NAME": name},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def test_a_worker_started_while_redis_is_down_waits_for_it(tmp_path: Path) -> None:
    """Found by the chaos run: a replacement worker started during a Redis restart exited
    with a traceback instead of waiting, so fewer workers ran after every outage."""
    own = RedisProcess(tmp_path)  # its port is free: nothing answers there yet
    worker = start_worker(own.url, "outage")
    try:
        assert worker.stderr is not None and worker.stdout is not None
        async with asyncio.timeout(30):
            line = await asyncio.to_thread(worker.stderr.readline)
        assert b"unreachable" in line and b"waiting for it" in line, line
        assert worker.poll() is None
        own.start()
        async with asyncio.timeout(30):
            assert (await asyncio.to_thread(worker.stdout.readline)).strip() == b"ready"
        async with Docket(name="outage", url=own.url) as docket:
            docket.register(lambda tool, arguments: None, name=TOOL_FUNCTION)
            call = await docket.add(TOOL_FUNCTION)("slow", {"n": 2, "seconds": 0})
            final = await docket.wait(call.key, timeout=30)
        assert final.status is Status.COMPLETED
        assert final.result["structuredContent"] == {"result": 20}
    finally:
        stop([worker])
        own.kill()
