"""The shipped mcp-tasks server: ``fastmcp run server.py``.

Runs on memory:// with an in-process worker by default; set ``MCP_TASKS_URL=redis://...`` to
share tasks with other replicas and ``mcp-tasks worker server.py`` processes.
"""

from __future__ import annotations

import asyncio

from fastmcp import Context, FastMCP

from mcp_tasks import Tasks

mcp = FastMCP("mcp-tasks")
mcp.add_extension(Tasks())


@mcp.tool(task=True)
async def sleep(seconds: float = 1.0, ctx: Context | None = None) -> str:
    """Sleep for a while, reporting progress every tenth of the way (a demo task)."""
    if not 0 <= seconds <= 3600:
        raise ValueError("seconds must be between 0 and 3600")
    steps = 10
    for step in range(steps):
        if ctx is not None:
            await ctx.report_progress(step, steps, f"slept {seconds * step / steps:.1f}s")
        await asyncio.sleep(seconds / steps)
    return f"slept {seconds}s"


@mcp.tool(task=True)
async def count(to: int = 10) -> int:
    """Count to a number and return it: a no-op task for benchmarks."""
    if to < 0:
        raise ValueError("to must not be negative")
    return to


if __name__ == "__main__":
    mcp.run()
