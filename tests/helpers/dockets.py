"""Dockets in tests: the shared Redis, running workers for a block, and cleaning up after."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import redis

from mcp_tasks.engine import Docket, Worker
from mcp_tasks.engine.keys import Keys

REDIS_URL = os.environ.get("MCP_TASKS_TEST_REDIS", "redis://127.0.0.1:6379/0")
"""The shared Redis of the engine and MCP tests (``MCP_TASKS_TEST_REDIS`` overrides it)."""


async def purge(url: str, name: str) -> None:
    """Delete a test docket's keys from the shared Redis."""
    if not url.startswith("redis"):
        return
    client: Any = (
        redis.asyncio.RedisCluster.from_url(url.replace("+cluster", ""))
        if "+cluster" in url
        else redis.asyncio.Redis.from_url(url)
    )
    try:
        keys = [k async for k in client.scan_iter(match=Keys(name).pattern, count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def leftover_keys(url: str, name: str) -> list[bytes]:
    """A test docket's keys still in a shared Redis."""
    client: Any = (
        redis.RedisCluster.from_url(url.replace("+cluster", ""))
        if "+cluster" in url
        else redis.Redis.from_url(url)
    )
    try:
        return list(client.scan_iter(match=Keys(name).pattern, count=1000))
    finally:
        client.close()


@contextlib.asynccontextmanager
async def running(*workers: Worker) -> AsyncIterator[None]:
    """Run workers in the background for the duration of the block, then stop them."""
    tasks = []
    for worker in workers:
        await worker.start()
        tasks.append(asyncio.create_task(worker.run_forever()))
    try:
        yield
    finally:
        for worker in workers:
            await worker.stop(grace=5)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def dump(docket: Docket) -> bytes:
    """Every byte the docket's keys hold in Redis, whatever their type."""
    client: Any = docket.client
    chunks: list[bytes] = []
    async for key in client.scan_iter(match=docket.keys.pattern):
        kind = (await client.type(key)).decode()
        if kind == "hash":
            for field, value in (await client.hgetall(key)).items():
                chunks += [field, value]
        elif kind == "stream":
            for _, fields in await client.xrange(key):
                for field, value in fields.items():
                    chunks += [field, value]
        elif kind == "zset":
            chunks += await client.zrange(key, 0, -1)
        elif kind == "list":
            chunks += await client.lrange(key, 0, -1)
        elif kind == "string":
            chunks.append(await client.get(key))
        chunks.append(key)
    return b"\n".join(chunks)
