"""The server of the scale run (``benchmarks/scale.py``): two task tools that only wait.

``until()`` waits for the moment the run writes to the Redis key ``scale:end`` (a unix time)
and sleeps until then, so tasks created over many seconds, and followed by listeners that
connect afterwards, all end in the same second: the burst. One poller per worker process
reads the key (ten GETs a second, whatever the number of tasks). ``nap(seconds)`` sleeps for a
while (the pollers' tasks, of many lengths). Settings come from the environment as for any
server (``MCP_TASKS_URL``, ``MCP_TASKS_NAME``, ``MCP_TASKS_WORKER``).
"""

from __future__ import annotations

import asyncio
import os
import time

import redis.asyncio as redis
from fastmcp import FastMCP

from mcp_tasks import Tasks

mcp = FastMCP("scale")
mcp.add_extension(Tasks())


END_KEY = "scale:end"
_end: asyncio.Task[float] | None = None


async def _read_end() -> float:
    client = redis.Redis.from_url(os.environ["MCP_TASKS_URL"])
    try:
        while (value := await client.get(END_KEY)) is None:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.1)
        return float(value)
    finally:
        await client.aclose()


@mcp.tool(task=True)
async def until() -> float:
    """Sleep until the moment in ``scale:end`` (once the run has written it); answer it."""
    global _end
    if _end is None:
        _end = asyncio.create_task(_read_end())
    at = await asyncio.shield(_end)
    await asyncio.sleep(max(0.0, at - time.time()))
    return at


@mcp.tool(task=True)
async def nap(seconds: float) -> float:
    """Sleep ``seconds``; answer them."""
    await asyncio.sleep(seconds)
    return seconds
