"""The server of the scale run (``benchmarks/scale.py``): two task tools that only wait.

``until(offset)`` waits for the moment the run writes to the Redis key ``scale:end`` (a unix
time) and sleeps until ``offset`` seconds after it, so tasks created over many seconds, and
followed by listeners that connect afterwards, end when the run wants: one by one over the
steady phase (offsets spread over it), then all in the same second (the burst). One poller
per worker process reads the key (ten GETs a second, whatever the number of tasks).
``nap(seconds)`` sleeps for a while (the pollers' tasks, of many lengths). Settings come from
the environment as for any server (``MCP_TASKS_URL``, ``MCP_TASKS_NAME``,
``MCP_TASKS_WORKER``). Each garbage collection of 20 ms or more is logged as a line
``gc-pause <unix time> <generation> <ms>``, and in a server each wake-up of its event loop
20 ms or more late as ``loop-lag <unix time> <ms>`` (the run reads them from the logs).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as redis
from fastmcp import FastMCP

from mcp_tasks import Tasks

END_KEY = "scale:end"
GC_LOGGED_MS = 20.0
_collecting = 0.0


def _time_collections(phase: str, info: dict[str, Any]) -> None:
    global _collecting
    if phase == "start":
        _collecting = time.perf_counter()
        return
    took = (time.perf_counter() - _collecting) * 1000
    if took >= GC_LOGGED_MS:
        print(f"gc-pause {time.time():.3f} {info['generation']} {took:.1f}", flush=True)


gc.callbacks.append(_time_collections)


async def _watch_loop() -> None:
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(0.01)
        late = (time.perf_counter() - asked - 0.01) * 1000
        if late >= GC_LOGGED_MS:
            print(f"loop-lag {time.time():.3f} {late:.1f}", flush=True)


@contextlib.asynccontextmanager
async def _lifespan(_: FastMCP) -> AsyncIterator[dict[str, Any]]:
    watch = asyncio.create_task(_watch_loop())
    try:
        yield {}
    finally:
        watch.cancel()


mcp = FastMCP("scale", lifespan=_lifespan)
mcp.add_extension(Tasks())

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
async def until(offset: float = 0.0) -> float:
    """Sleep until ``offset`` seconds after the moment in ``scale:end`` (once the run has
    written it); answer that moment."""
    global _end
    if _end is None:
        _end = asyncio.create_task(_read_end())
    at = await asyncio.shield(_end) + offset
    await asyncio.sleep(max(0.0, at - time.time()))
    return at


@mcp.tool(task=True)
async def nap(seconds: float) -> float:
    """Sleep ``seconds``; answer them."""
    await asyncio.sleep(seconds)
    return seconds
