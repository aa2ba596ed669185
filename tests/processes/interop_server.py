"""The server the interop clients drive: ``fastmcp run tests/interop/interop_server.py``."""

from __future__ import annotations

import asyncio

from fastmcp import Context, FastMCP

from mcp_tasks import Tasks

mcp = FastMCP("interop")
mcp.add_extension(Tasks())


@mcp.tool(task=True)
async def count(to: int) -> int:
    return to


@mcp.tool(task=True)
async def sleep(seconds: float, ctx: Context) -> str:
    await ctx.report_progress(0, 1, "sleeping")
    await asyncio.sleep(seconds)
    return "awake"


@mcp.tool(task=True)
async def confirm(path: str, ctx: Context) -> str:
    answer = await ctx.elicit(f"Delete {path}?", bool)
    return f"deleted {path}" if answer.action == "accept" and answer.data else f"kept {path}"
