"""``min_replicas`` through MCP: a handle only for a task the replicas confirmed.

On a primary with a replica behind Sentinel, task calls of both dialects work as usual; on
the session's cluster, whose masters have no replicas, nothing can be confirmed, so a task
call is answered with a clear error (and the task is withdrawn), while a plain call works.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastmcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR

from mcp_tasks.server.errors import NOT_CONFIRMED
from tests.helpers.dockets import purge
from tests.helpers.mcp import Harness, legacy, modern
from tests.helpers.sentinel import SentinelGroup

pytestmark = pytest.mark.anyio


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path)
    try:
        group.start()
        yield group
    finally:
        group.close()


async def test_confirmed_tasks_work_in_both_dialects(
    group: SentinelGroup, docket_name: str
) -> None:
    harness = Harness(group.url, docket_name, min_replicas=1)
    async with Client(harness.mcp) as client:
        created = await modern(client, "tools/call", {"name": "crunch", "arguments": {"n": 4}})
        await harness.finished(created["taskId"])
        got = await modern(client, "tasks/get", {"taskId": created["taskId"]})
        assert got["status"] == "completed"
        assert got["result"]["structuredContent"] == {"result": 8}
    async with Client(harness.mcp, mode="legacy") as client:
        call = {"name": "crunch", "arguments": {"n": 5}, "task": {}}
        created = await legacy(client, "tools/call", call)
        task_id = created["task"]["taskId"]
        result = await legacy(client, "tasks/result", {"taskId": task_id})
        assert result["structuredContent"] == {"result": 10}


async def test_unconfirmed_task_calls_get_a_clear_error(cluster_url: str, docket_name: str) -> None:
    harness = Harness(cluster_url, docket_name, min_replicas=1, replica_timeout=0.1)
    try:
        async with Client(harness.mcp) as client:
            with pytest.raises(MCPError) as error:
                await modern(client, "tools/call", {"name": "crunch", "arguments": {"n": 1}})
            assert error.value.error.code == INTERNAL_ERROR
            assert error.value.error.message == NOT_CONFIRMED
            assert (await client.call_tool("plain", {})).data == "plain"
        async with Client(harness.mcp, mode="legacy") as client:
            call = {"name": "crunch", "arguments": {"n": 1}, "task": {}}
            with pytest.raises(MCPError) as error:
                await legacy(client, "tools/call", call)
            assert error.value.error.message == NOT_CONFIRMED
            # The withdrawn task is cancelled (a worker that had already started it in the
            # 0.1 s the replicas were waited for stops it), unless it had already finished:
            # either way it is not left working.
            listed = await legacy(client, "tasks/list", {})
            for task in listed["tasks"]:
                await harness.finished(task["taskId"])
                final = await legacy(client, "tasks/get", {"taskId": task["taskId"]})
                assert final["status"] in ("cancelled", "completed"), final
    finally:
        await purge(cluster_url, docket_name)
