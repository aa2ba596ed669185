"""``mcp_tasks.client`` against a server nobody here wrote: fastmcp-tasks' (2026-07-28).

What a Python caller relies on holds against any server of the extension, not only ours: a
handle at once, changes followed to the end (pushed if the server offers
``subscriptions/listen``, else polled at its ``pollIntervalMs``), the tool's own result,
cancel, and a plain ``call_tool`` of a task tool answering the tool's result. The peer runs
from ``.venv-peer`` (it pins its own fastmcp), over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastmcp import Client

from mcp_tasks.client import TasksClient
from tests.e2e.test_interop_fastmcp_tasks import peer_python
from tests.helpers.servers import http_server

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def peer_url() -> Iterator[str]:
    from pathlib import Path

    bin_dir = Path(peer_python()).parent
    with http_server("tests/processes/peer_server.py", bin_dir=bin_dir) as url:
        yield url


async def test_follow_result_and_cancel_on_the_peers_server(peer_url: str) -> None:
    tasks = TasksClient()
    async with Client(peer_url, extensions=[tasks]) as client:
        assert client.protocol_version == "2026-07-28"
        task = await tasks.call_tool(client, "steps", {"n": 3})
        seen = [state async for state in task.follow()]
        assert seen[-1].status == "completed"
        assert seen[-1].result is not None
        assert seen[-1].result["structuredContent"] == {"result": 3}
        hanging = await tasks.call_tool(client, "hang", {})
        await hanging.cancel()
        final = await hanging.wait()
        assert final.status == "cancelled"
        # A plain call of a task tool: the extension follows the task to the tool's result.
        plain = await client.call_tool("steps", {"n": 1})
        assert plain.data == 1
