"""Shared fixtures: every engine test runs on memory:// and on the real Redis.

The real Redis is the one on 127.0.0.1:6379 (``MCP_TASKS_TEST_REDIS`` overrides it). When it
does not answer, the Redis-backed tests fail with a clear message; they never skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis

from mcp_tasks.engine import Docket, Worker

REDIS_URL = os.environ.get("MCP_TASKS_TEST_REDIS", "redis://127.0.0.1:6379/0")
_counter = itertools.count()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _require_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"these tests need a Redis server at {REDIS_URL}: {exc}", pytrace=False)


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    """A docket URL: a fresh isolated memory:// store, or the real Redis."""
    if request.param == "redis":
        _require_redis()
        return REDIS_URL
    return f"memory://test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def redis_url() -> str:
    """The real Redis only (for tests about processes and connections)."""
    _require_redis()
    return REDIS_URL


@pytest.fixture
def docket_name(request: pytest.FixtureRequest) -> str:
    """A docket name no other test uses, so tests never see each other's tasks."""
    return f"t{next(_counter)}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def docket(url: str, docket_name: str) -> AsyncIterator[Docket]:
    async with Docket(name=docket_name, url=url) as d:
        yield d
    await purge(url, docket_name)


async def purge(url: str, name: str) -> None:
    """Delete a test docket's keys from the shared Redis."""
    if not url.startswith("redis"):
        return
    client = redis.asyncio.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"mcp-tasks:{{{name}}}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


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
