"""``mcp_tasks.client`` against our server, in-process, on every backend, in both dialects.

What a Python caller relies on: a handle at once, changes followed until the end (pushed in
both dialects, or polled), progress numbers that end full, the tool's own result, cancel,
input answered (``tasks/update`` in 2026, the elicitation handler in 2025), a handle resumed
from its id on another connection, and a plain ``call_tool`` of a task tool still answering
the tool's result.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastmcp import Client, Context, FastMCP
from mcp.shared.exceptions import MCPError
from mcp_types import METHOD_NOT_FOUND

from mcp_tasks import Tasks
from mcp_tasks.client import ProgressNumbers, TasksClient, tasks_client
from mcp_tasks.server import push
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


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_follow_poll_and_plain_calls_end_with_the_tools_result(
    server: FastMCP, mode: str
) -> None:
    tasks = TasksClient()
    async with tasks.connect(server, mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        pushed = await tasks.call_tool(client, "steps", {"n": 5})
        seen = [state async for state in pushed.follow()]
        assert seen[-1].status == "completed"
        assert seen[-1].result is not None
        assert seen[-1].result["structuredContent"] == {"result": 5}
        # Pushed: every change, numbers and message together, the same in both dialects
        # (2025-11-25's come as notifications/progress on the call's token).
        during = {(s.progress, s.status_message) for s in seen[:-1]}
        assert (ProgressNumbers(4, 5), "step 4") in during, during
        assert seen[-1].progress == ProgressNumbers(5, 5)  # the last report was 4 of 5

        polled = await tasks.call_tool(client, "steps", {"n": 2})
        final = await polled.wait(push=False)
        assert final.result is not None and final.result["structuredContent"] == {"result": 2}
        assert final.progress == ProgressNumbers(2, 2)

        plain = await client.call_tool("steps", {"n": 3})  # resolved through the claim
        assert plain.data == 3


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_cancel_input_and_resume_on_another_connection(server: FastMCP, mode: str) -> None:
    async def yes(message: str, response_type: Any, params: Any, context: Any) -> Any:
        return {"value": True}  # the 2025-11-25 way: asked while tasks/result waits

    tasks = TasksClient()
    options: dict[str, Any] = {"extensions": [tasks], "mode": mode, "elicitation_handler": yes}
    async with Client(server, **options) as client:
        hanging = await tasks.call_tool(client, "hang")
        await hanging.cancel()
        assert (await hanging.wait()).status == "cancelled"

        asking = await tasks.call_tool(client, "confirm")
        async for state in asking.follow():
            if state.status == "input_required" and mode == "auto":
                assert state.input_requests is not None
                (question,) = state.input_requests
                await asking.answer({question: {"action": "accept", "content": {"value": True}}})
            if state.terminal:
                break
        assert state.status == "completed"
        assert state.result is not None and state.result["structuredContent"] == {"result": "went"}

        later = await tasks.call_tool(client, "steps", {"n": 3})
    other = TasksClient()
    async with Client(server, extensions=[other], mode=mode) as again:  # type: ignore[arg-type]
        resumed = await other.handle(again, later.task_id).wait()
        assert resumed.status == "completed"


async def test_follow_polls_a_server_that_has_no_push(
    server: FastMCP, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server without ``subscriptions/listen`` (fastmcp-tasks' has none): polled."""

    async def no_listen(*args: Any) -> Any:
        raise MCPError(code=METHOD_NOT_FOUND, message="Method not found")

    monkeypatch.setattr(push, "listen", no_listen)
    tasks = TasksClient()
    async with Client(server, extensions=[tasks]) as client:
        task = await tasks.call_tool(client, "steps", {"n": 2})
        seen = [state.status async for state in task.follow()]
    assert seen[-1] == "completed"


async def test_two_follows_of_one_task_each_see_every_state_once(server: FastMCP) -> None:
    tasks = TasksClient()
    async with Client(server, extensions=[tasks]) as client:
        task = await tasks.call_tool(client, "steps", {"n": 5})

        async def follow() -> list[Any]:
            return [state async for state in task.follow()]

        first, second = await asyncio.gather(follow(), follow())
    for seen in (first, second):
        # Each follower's own stream, not the other's too: no state twice in a row, and the
        # end once.
        shown = [state.model_dump(exclude={"meta"}) for state in seen]
        assert all(a != b for a, b in itertools.pairwise(shown)), shown
        assert [s.status for s in seen].count("completed") == 1
        assert seen[-1].status == "completed"


async def test_2025_status_changes_are_pushed_without_a_message_handler(server: FastMCP) -> None:
    """``Client(extensions=[tasks])`` alone: the status notifications still arrive (an
    extension's binding), and the end comes from ``tasks/result``, not from polling."""

    async def ask(message: str, response_type: Any, params: Any, context: Any) -> Any:
        return {"value": False}

    tasks = TasksClient()
    options: dict[str, Any] = {"extensions": [tasks], "mode": "legacy", "elicitation_handler": ask}
    async with Client(server, **options) as client:
        task = await tasks.call_tool(client, "confirm")
        task.poll_interval_ms = 3_600_000  # a poll would hang the test: only push can end it
        seen = [state.status async for state in task.follow()]
    assert seen[-1] == "completed", seen


async def test_a_long_lived_client_keeps_a_bounded_number_of_progress_tokens(
    server: FastMCP, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks_client, "KEPT_TOKENS", 3)
    tasks = TasksClient()
    async with tasks.connect(server, mode="legacy") as client:
        handles = [await tasks.call_tool(client, "steps", {"n": 1}) for _ in range(5)]
        assert list(tasks._tokens.values()) == [h.task_id for h in handles[-3:]]
        final = await handles[-1].wait()
    assert final.progress == ProgressNumbers(1, 1)
