"""``mcp_tasks.client`` against our server (2026-07-28), in-process, on every backend.

What a Python caller relies on: a handle at once, changes pushed or polled until the end,
the tool's own result, cancel, input answered with ``tasks/update``, a handle resumed from
its id on another connection, and a plain ``call_tool`` of a task tool still answering the
tool's result. A 2025-11-25 connection is told plainly that this client does not speak it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fastmcp import Client, Context, FastMCP

from mcp_tasks import Tasks
from mcp_tasks.client import TasksClient
from tests.helpers.dockets import purge

pytestmark = pytest.mark.anyio


@pytest.fixture
async def server(url: str, docket_name: str) -> AsyncIterator[FastMCP]:
    mcp = FastMCP("client-test")
    mcp.add_extension(Tasks(url=url, name=docket_name))

    @mcp.tool(task=True)
    async def steps(n: int, ctx: Context) -> int:
        for step in range(n):
            await ctx.report_progress(step, n, f"step {step}")
            await asyncio.sleep(0.02)
        return n

    @mcp.tool(task=True)
    async def hang() -> str:
        await asyncio.sleep(60)
        return "never"

    @mcp.tool(task=True)
    async def confirm(ctx: Context) -> str:
        answer = await ctx.elicit("Go?", bool)
        return "went" if answer.action == "accept" and answer.data else "stayed"

    yield mcp
    await purge(url, docket_name)


async def test_push_poll_and_plain_calls_end_with_the_tools_result(server: FastMCP) -> None:
    tasks = TasksClient()
    async with Client(server, extensions=[tasks]) as client:
        assert client.protocol_version == "2026-07-28"
        pushed = await tasks.call_tool(client, "steps", {"n": 5})
        seen = [state async for state in pushed.follow()]
        assert seen[-1].status == "completed"
        assert seen[-1].result is not None
        assert seen[-1].result["structuredContent"] == {"result": 5}
        assert {s.status_message for s in seen[:-1]} >= {"step 4"}

        polled = await tasks.call_tool(client, "steps", {"n": 2})
        final = await polled.wait(push=False)
        assert final.result is not None and final.result["structuredContent"] == {"result": 2}

        plain = await client.call_tool("steps", {"n": 3})  # resolved through the claim
        assert plain.data == 3


async def test_cancel_input_and_resume_on_another_connection(server: FastMCP) -> None:
    tasks = TasksClient()
    async with Client(server, extensions=[tasks]) as client:
        hanging = await tasks.call_tool(client, "hang")
        await hanging.cancel()
        assert (await hanging.wait()).status == "cancelled"

        asking = await tasks.call_tool(client, "confirm")
        async for state in asking.follow():
            if state.status == "input_required":
                assert state.input_requests is not None
                (question,) = state.input_requests
                await asking.answer({question: {"action": "accept", "content": {"value": True}}})
            if state.terminal:
                break
        assert state.status == "completed"
        assert state.result is not None and state.result["structuredContent"] == {"result": "went"}

        later = await tasks.call_tool(client, "steps", {"n": 3})
    other = TasksClient()
    async with Client(server, extensions=[other]) as again:
        resumed = await other.handle(again, later.task_id).wait()
        assert resumed.status == "completed"


async def test_a_2025_connection_is_refused_plainly(server: FastMCP) -> None:
    tasks = TasksClient()
    async with Client(server, extensions=[tasks], mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        with pytest.raises(RuntimeError, match="did not run as a task"):
            await tasks.call_tool(client, "steps", {"n": 1})
