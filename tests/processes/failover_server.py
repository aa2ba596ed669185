"""The server of the replica failover test (tests/test_failover.py).

Bearer-token auth (``StaticTokenVerifier``): a task belongs to the token's principal, so any
replica answers its owner, in either dialect. Without a principal a 2025-11-25 task over HTTP
is bound to the HTTP session, which lives in one replica's memory and dies with it.
"""

from __future__ import annotations

import asyncio

from fastmcp import Context, FastMCP
from fastmcp.server.auth import StaticTokenVerifier

from mcp_tasks import Tasks

TOKENS = {
    "modern-token": {"client_id": "failover", "sub": "modern-user", "scopes": []},
    "legacy-token": {"client_id": "failover", "sub": "legacy-user", "scopes": []},
}

mcp = FastMCP("failover", auth=StaticTokenVerifier(TOKENS))
mcp.add_extension(Tasks())


@mcp.tool(task=True)
async def slow(n: int, seconds: float, ctx: Context) -> int:
    """Report that it started, sleep, report that it is done; answer ``n * 10``."""
    await ctx.report_progress(0, 1, f"started {n}")
    await asyncio.sleep(seconds)
    await ctx.report_progress(1, 1, f"finishing {n}")
    return n * 10
