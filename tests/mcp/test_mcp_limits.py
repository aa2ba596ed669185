"""Per-caller limits and size limits, with the errors a client sees, in both dialects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastmcp import Client, FastMCP
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS

from mcp_tasks import Tasks
from mcp_tasks.server.errors import LIMIT_REACHED
from tests.helpers.dockets import purge
from tests.helpers.mcp import legacy, modern

pytestmark = pytest.mark.anyio


class Limited:
    def __init__(self, url: str, name: str) -> None:
        self.gate = asyncio.Event()
        self.tasks = Tasks(
            url=url,
            name=name,
            max_argument_bytes=1_000,
            max_result_bytes=2_000,
            max_unfinished_per_caller=2,
        )
        self.mcp = FastMCP("limits")
        self.mcp.add_extension(self.tasks)
        gate = self.gate

        @self.mcp.tool(task=True)
        async def held(note: str = "") -> str:
            await gate.wait()
            return "released"

        @self.mcp.tool(task=True)
        async def blob(size: int) -> str:
            return "x" * size


@pytest.fixture
async def limited(url: str, docket_name: str) -> AsyncIterator[Limited]:
    yield Limited(url, docket_name)
    await purge(url, docket_name)


async def test_oversize_arguments_are_refused_in_both_dialects(limited: Limited) -> None:
    big = {"note": "x" * 2_000}
    async with Client(limited.mcp) as client:
        with pytest.raises(MCPError) as error:
            await modern(client, "tools/call", {"name": "held", "arguments": big})
        assert error.value.error.code == INVALID_PARAMS
        assert "arguments are too large" in error.value.error.message
        assert "maximum is 1000" in error.value.error.message
    async with Client(limited.mcp, mode="legacy") as client:
        with pytest.raises(MCPError) as error:
            await legacy(client, "tools/call", {"name": "held", "arguments": big, "task": {}})
        assert error.value.error.code == INVALID_PARAMS
        assert "arguments are too large" in error.value.error.message


async def test_an_oversize_result_fails_the_task_with_a_clear_message(limited: Limited) -> None:
    async with Client(limited.mcp, mode="legacy") as client:
        created = await legacy(
            client, "tools/call", {"name": "blob", "arguments": {"size": 5_000}, "task": {}}
        )
        task_id = created["task"]["taskId"]
        await limited.tasks.docket.wait(task_id, timeout=10)
        task = await legacy(client, "tasks/get", {"taskId": task_id})
        assert task["status"] == "failed"
        result: dict[str, Any] = await legacy(client, "tasks/result", {"taskId": task_id})
        assert result["isError"] is True
        assert "too large" in result["content"][0]["text"]
        small = await legacy(
            client, "tools/call", {"name": "blob", "arguments": {"size": 100}, "task": {}}
        )
        done = await legacy(client, "tasks/result", {"taskId": small["task"]["taskId"]})
        assert done.get("isError") is not True and done["content"][0]["text"] == "x" * 100


async def test_unfinished_tasks_per_caller_are_capped(limited: Limited) -> None:
    call = {"name": "held", "arguments": {}, "task": {}}
    async with (
        Client(limited.mcp, mode="legacy") as alice,
        Client(limited.mcp, mode="legacy") as bob,
    ):
        first = await legacy(alice, "tools/call", call)
        await legacy(alice, "tools/call", call)
        with pytest.raises(MCPError) as error:
            await legacy(alice, "tools/call", call)
        assert error.value.error.code == LIMIT_REACHED
        assert "at most 2 unfinished tasks" in error.value.error.message
        assert error.value.error.data == {"reason": "unfinished", "limit": 2}
        # Another caller is not affected by alice's tasks.
        await legacy(bob, "tools/call", call)
        # Once alice's tasks finish she may create again.
        limited.gate.set()
        await legacy(alice, "tasks/result", {"taskId": first["task"]["taskId"]})
        await legacy(alice, "tools/call", call)


async def test_creation_rate_per_caller_is_capped(url: str, docket_name: str) -> None:
    tasks = Tasks(url=url, name=docket_name, max_creations_per_minute=3)
    mcp = FastMCP("rate")
    mcp.add_extension(tasks)

    @mcp.tool(task=True)
    async def noop() -> None:
        return None

    try:
        async with Client(mcp, mode="legacy") as client:
            call = {"name": "noop", "arguments": {}, "task": {}}
            for _ in range(3):
                await legacy(client, "tools/call", call)
            with pytest.raises(MCPError) as error:
                await legacy(client, "tools/call", call)
            assert error.value.error.code == LIMIT_REACHED
            assert "at most 3 tasks may be created" in error.value.error.message
            data = error.value.error.data
            assert data["reason"] == "rate" and 0 < data["retryAfterSeconds"] <= 60
            # A plain call of the same tool is not a task and is not limited.
            plain = await client.call_tool("noop", {})
            assert not plain.is_error
    finally:
        await purge(url, docket_name)


def test_limits_are_checked_when_configured() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Tasks(max_unfinished_per_caller=0)
    with pytest.raises(ValueError, match="must be positive"):
        Tasks(max_argument_bytes=0)


async def test_with_a_key_redis_holds_only_ciphertext_of_calls_and_results(
    url: str, docket_name: str
) -> None:
    from mcp_tasks.engine.codec import new_encryption_key
    from tests.helpers.dockets import dump

    tasks = Tasks(url=url, name=docket_name, encryption_key=new_encryption_key())
    mcp = FastMCP("sealed")
    mcp.add_extension(tasks)

    @mcp.tool(task=True)
    async def shout(secret: str) -> str:
        return secret.upper()

    try:
        async with Client(mcp, mode="legacy") as client:
            call = {"name": "shout", "arguments": {"secret": "quiet-words-123"}, "task": {}}
            created = await legacy(client, "tools/call", call)
            result = await legacy(client, "tasks/result", {"taskId": created["task"]["taskId"]})
            assert result["content"][0]["text"] == "QUIET-WORDS-123"
            stored = await dump(tasks.docket)
            assert created["task"]["taskId"].encode() in stored
            assert b"quiet-words-123" not in stored and b"QUIET-WORDS-123" not in stored
    finally:
        await purge(url, docket_name)


async def test_a_task_store_outage_is_a_clean_error_in_both_dialects(tmp_path: Any) -> None:
    """While Redis is down, tasks/* answer -32603 'unavailable' without Redis internals
    (the SDK would otherwise send the exception text, host and port included, as code 0)."""
    from mcp_tasks.server.errors import STORE_UNAVAILABLE
    from tests.helpers.redis_process import RedisProcess

    redis_server = RedisProcess(tmp_path)
    redis_server.start()
    try:
        tasks = Tasks(url=redis_server.url, name="outage", worker=False)
        mcp = FastMCP("outage")
        mcp.add_extension(tasks)

        @mcp.tool(task=True)
        async def noop() -> None:
            return None

        async with Client(mcp, mode="legacy") as old, Client(mcp) as new:
            created = await legacy(old, "tools/call", {"name": "noop", "arguments": {}, "task": {}})
            task_id = created["task"]["taskId"]
            redis_server.kill()
            for error in [
                await failure(legacy(old, "tasks/get", {"taskId": task_id})),
                await failure(legacy(old, "tools/call", {"name": "noop", "task": {}})),
                await failure(modern(new, "tasks/get", {"taskId": task_id})),
            ]:
                assert error.error.code == INTERNAL_ERROR
                assert error.error.message == STORE_UNAVAILABLE
                assert str(redis_server.port) not in str(error.error)
    finally:
        redis_server.kill()


async def failure(request: Any) -> MCPError:
    with pytest.raises(MCPError) as error:
        await request
    return error.value
