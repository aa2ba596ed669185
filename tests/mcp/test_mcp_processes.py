"""Two HTTP server replicas and a separate worker process sharing one Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Iterator

import pytest
from fastmcp import Client

from mcp_tasks.engine import Docket, Status
from tests.helpers.dockets import purge
from tests.helpers.mcp import Recorder, modern, modern_conforms
from tests.helpers.servers import BIN, ROOT, http_server, stop

pytestmark = pytest.mark.anyio


@pytest.fixture
def cluster(redis_url: str, docket_name: str) -> Iterator[tuple[str, str]]:
    """Replica A and replica B (API only) and one `mcp-tasks worker` process."""
    env = {"MCP_TASKS_URL": redis_url, "MCP_TASKS_NAME": docket_name, "MCP_TASKS_WORKER": "0"}
    with contextlib.ExitStack() as stack:
        replica_a = stack.enter_context(http_server("server.py", env))
        replica_b = stack.enter_context(http_server("server.py", env))
        worker = subprocess.Popen(
            [str(BIN / "mcp-tasks"), "worker", "server.py", "--ready"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
        )
        stack.callback(stop, [worker])
        assert worker.stdout is not None and worker.stdout.readline().strip() == b"ready"
        yield replica_a, replica_b
    asyncio.run(purge(redis_url, docket_name))  # once every process of the docket has stopped


async def test_create_on_one_replica_read_and_cancel_on_the_other(
    cluster: tuple[str, str], redis_url: str, docket_name: str
) -> None:
    replica_a, replica_b = cluster
    recorder = Recorder()
    notifications = recorder.binding("notifications/tasks")
    async with (
        Docket(name=docket_name, url=redis_url) as docket,
        Client(replica_a) as a,
        Client(replica_b, message_handler=recorder, extensions=[notifications]) as b,
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
        # Push comes from replica B too: it hears the worker's changes through Redis.
        listening = asyncio.create_task(
            modern(b, "subscriptions/listen", {"notifications": {"taskIds": [slow["taskId"]]}})
        )
        await recorder.until(lambda: recorder.acks)
        await modern(b, "tasks/cancel", {"taskId": slow["taskId"]})
        await recorder.until(lambda: any(s["status"] == "cancelled" for s in recorder.statuses))
        await asyncio.wait_for(listening, 10)
        final = await docket.wait(slow["taskId"], timeout=10)
        assert final.status is Status.CANCELLED
    await purge(redis_url, docket_name)
