"""fastmcp's Progress() dependency style, reporting to the docket when the tool is a task."""

from __future__ import annotations

import pytest
from fastmcp import Client, FastMCP

from mcp_tasks import Progress, Tasks
from tests.helpers.dockets import purge
from tests.helpers.mcp import legacy

pytestmark = pytest.mark.anyio


async def test_progress_dependency_reports_to_the_docket(url: str, docket_name: str) -> None:
    tasks = Tasks(url=url, name=docket_name)
    mcp = FastMCP("progress")
    mcp.add_extension(tasks)

    @mcp.tool(task=True)
    async def steps(count: int, progress: Progress = Progress()) -> int:
        await progress.set_total(count)
        for _ in range(count):
            await progress.increment()
        await progress.set_message("all done")
        return progress.current or 0

    try:
        async with Client(mcp, mode="legacy") as client:
            created = await legacy(
                client, "tools/call", {"name": "steps", "arguments": {"count": 3}, "task": {}}
            )
            task_id = created["task"]["taskId"]
            result = await legacy(client, "tasks/result", {"taskId": task_id})
            assert result["structuredContent"] == {"result": 3}
            state = await tasks.docket.get(task_id)
            assert state is not None and state.progress is not None
            assert (state.progress.current, state.progress.total) == (3, 3)
            assert state.progress.message == "all done"
            # Called without a task, the same tool still works (fastmcp's in-memory progress).
            plain = await client.call_tool("steps", {"count": 2})
            assert plain.data == 2
    finally:
        await purge(url, docket_name)
