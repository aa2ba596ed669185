"""Two HTTP server replicas and a separate worker process sharing one Redis."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from conftest import purge
from fastmcp import Client
from servers import BIN, ROOT, free_port, stop, wait_for_port
from test_mcp_dialects import modern, modern_conforms

from mcp_tasks.engine import Docket, Status

pytestmark = pytest.mark.anyio


@pytest.fixture
def cluster(redis_url: str, docket_name: str) -> Iterator[tuple[str, str]]:
    """Replica A and replica B (API only) and one `mcp-tasks worker` process."""
    env = {
        **os.environ,
        "MCP_TASKS_URL": redis_url,
        "MCP_TASKS_NAME": docket_name,
        "MCP_TASKS_WORKER": "0",
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        ports = [free_port(), free_port()]
        for port in ports:
            processes.append(
                subprocess.Popen(
                    [
                        str(BIN / "fastmcp"),
                        "run",
                        "server.py",
                        "--transport",
                        "http",
                        "--port",
                        str(port),
                        "--no-banner",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        worker = subprocess.Popen(
            [str(BIN / "mcp-tasks"), "worker", "server.py", "--ready"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
        )
        processes.append(worker)
        assert worker.stdout is not None and worker.stdout.readline().strip() == b"ready"
        for port, process in zip(ports, processes, strict=False):
            wait_for_port(port, process)
        yield f"http://127.0.0.1:{ports[0]}/mcp", f"http://127.0.0.1:{ports[1]}/mcp"
    finally:
        stop(processes)


async def test_create_on_one_replica_read_and_cancel_on_the_other(
    cluster: tuple[str, str], redis_url: str, docket_name: str
) -> None:
    replica_a, replica_b = cluster
    async with (
        Docket(name=docket_name, url=redis_url) as docket,
        Client(replica_a) as a,
        Client(replica_b) as b,
    ):
        created = await modern(a, "tools/call", {"name": "count", "arguments": {"to": 7}})
        final = await docket.wait(created["taskId"], timeout=30)
        assert final.status is Status.COMPLETED
        got = await modern(b, "tasks/get", {"taskId": created["taskId"]})
        modern_conforms("GetTaskResult", got)
        assert got["status"] == "completed"
        assert got["result"]["structuredContent"] == {"result": 7}

        slow = await modern(a, "tools/call", {"name": "sleep", "arguments": {"seconds": 60}})
        async for state in docket.watch(slow["taskId"]):
            if state.status is Status.RUNNING:
                break
        await modern(b, "tasks/cancel", {"taskId": slow["taskId"]})
        final = await docket.wait(slow["taskId"], timeout=10)
        assert final.status is Status.CANCELLED
    await purge(redis_url, docket_name)
