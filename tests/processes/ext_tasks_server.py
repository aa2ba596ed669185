"""The server the official 2026-07-28 client drives (``tests/ts2026/client.mjs``):
``fastmcp run tests/processes/ext_tasks_server.py``.

The docket comes from ``MCP_TASKS_URL`` (``memory://`` by default) and ``MCP_TASKS_NAME``.
"""

from __future__ import annotations

import asyncio

from fastmcp import Context, FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.utilities.tasks import TaskConfig  # its home in 4.1 and 4.2 (no fastmcp.server.tasks)

from mcp_tasks import Tasks

mcp = FastMCP("ext-tasks-interop")
mcp.add_extension(Tasks())


@mcp.tool(task=True)
async def count(to: int) -> int:
    return to


@mcp.tool(task=True)
async def sleep(seconds: float, ctx: Context) -> str:
    await ctx.report_progress(0, 1, "sleeping")
    await asyncio.sleep(seconds)
    await ctx.report_progress(1, 1, "awake")
    return f"slept {seconds}s"


@mcp.tool(task=True)
async def confirm(path: str, ctx: Context) -> str:
    answer = await ctx.elicit(f"Delete {path}?", bool)
    return f"deleted {path}" if answer.action == "accept" and answer.data else f"kept {path}"


@mcp.tool(task=True)
async def fail() -> str:
    raise ToolError("boom")


@mcp.tool(task=TaskConfig(mode="required"))
async def only_task(to: int) -> int:
    return to
