"""fastmcp-tasks' own server (not ours), for ``tests/e2e/test_client_against_peer.py``.

It runs in ``.venv-peer`` (fastmcp-tasks pins its own fastmcp): ``.venv-peer/bin/fastmcp run
tests/processes/peer_server.py --transport http``. Its docket is in-process (``memory://``).
"""

from __future__ import annotations

import asyncio

from fastmcp import Context, FastMCP
from fastmcp_tasks import TasksExtension

mcp = FastMCP("peer")
mcp.add_extension(TasksExtension(url="memory://", name="peer"))


@mcp.tool(task=True)
async def steps(n: int, ctx: Context) -> int:
    """Report progress n times, then answer n."""
    for step in range(n):
        await ctx.report_progress(step, n, f"step {step}")
        await asyncio.sleep(0.05)
    return n


@mcp.tool(task=True)
async def hang() -> str:
    """Sleep for a minute (to be cancelled)."""
    await asyncio.sleep(60)
    return "never"
