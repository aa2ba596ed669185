"""Trivial tasks for demos and benchmarks."""

from __future__ import annotations

import asyncio

from fastmcp import Context, FastMCP
from fastmcp.exceptions import ToolError


def register(mcp: FastMCP) -> None:
    @mcp.tool(task=True)
    async def sleep(seconds: float = 1.0, ctx: Context | None = None) -> str:
        """Sleep for a while (0 to 3600 seconds), reporting progress every tenth of the way."""
        if not 0 <= seconds <= 3600:
            raise ToolError("seconds must be between 0 and 3600")
        steps = 10
        for step in range(steps):
            if ctx is not None:
                await ctx.report_progress(step, steps, f"slept {seconds * step / steps:.1f}s")
            await asyncio.sleep(seconds / steps)
        return f"slept {seconds}s"

    @mcp.tool(task=True)
    async def count(to: int = 10) -> int:
        """Return the number it was given (0 or more) at once: a no-op task for benchmarks."""
        if to < 0:
            raise ToolError("to must not be negative")
        return to
