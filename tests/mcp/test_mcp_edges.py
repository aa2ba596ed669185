"""Edges of the task requests that races and expiry reach: answered per spec, never code 0.

- 2025-11-25 ``tasks/cancel`` racing the task's own end: a cancel the server accepts ends the
  task ``cancelled`` (the reply says so), even when the run returns a result in that instant;
  a cancel that comes too late is -32602.
- A task that expires while its request is being handled answers -32602, like a task that
  never existed, not the engine's exception as code 0.
- Protocol versions from before tasks (2025-06-18): no tasks capability, tasks/* is -32601
  even with the 2026 opt-in in ``_meta``, and a task-only tool cannot be called (-32601).
- Stateless HTTP without auth: no context to bind a 2025-11-25 task to, so it is bound to no
  one (its id keeps it private, as the spec allows and the README says) and tasks/list is
  empty.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastmcp import Client, FastMCP
from fastmcp.utilities.tasks import TaskConfig
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from mcp_tasks import Tasks
from tests.helpers.dockets import purge
from tests.helpers.mcp import legacy, legacy_conforms, modern
from tests.helpers.raw_http import LEGACY, Raw
from tests.helpers.servers import serving_in_process

pytestmark = pytest.mark.anyio


class Server:
    def __init__(self, url: str, name: str) -> None:
        self.tasks = Tasks(url=url, name=name)
        self.started = asyncio.Event()
        self.mcp = FastMCP("edges")
        started = self.started

        @self.mcp.tool(task=True)
        async def stubborn() -> str:
            """Finishes with a result even when cancelled: the worst case of a cancel that
            arrives as the run ends."""
            started.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(60)
            return "finished anyway"

        @self.mcp.tool(task=True)
        async def quick() -> str:
            return "done"

        @self.mcp.tool(task=TaskConfig(mode="required"))
        async def only_task() -> str:
            return "ran"

        self.mcp.add_extension(self.tasks)


@pytest.fixture
async def server(url: str, docket_name: str) -> AsyncIterator[Server]:
    yield Server(url, docket_name)
    await purge(url, docket_name)


async def test_an_accepted_legacy_cancel_replies_cancelled(server: Server) -> None:
    async with Client(server.mcp, mode="legacy") as client:
        call = {"name": "stubborn", "arguments": {}, "task": {}}
        task_id = (await legacy(client, "tools/call", call))["task"]["taskId"]
        await asyncio.wait_for(server.started.wait(), 10)
        reply = await legacy(client, "tasks/cancel", {"taskId": task_id})
        legacy_conforms("CancelTaskResult", reply)
        assert reply["status"] == "cancelled"
        got = await legacy(client, "tasks/get", {"taskId": task_id})
        assert got["status"] == "cancelled"


async def test_a_legacy_cancel_of_an_ended_task_is_refused(server: Server) -> None:
    async with Client(server.mcp, mode="legacy") as client:
        call = {"name": "quick", "arguments": {}, "task": {}}
        task_id = (await legacy(client, "tools/call", call))["task"]["taskId"]
        await server.tasks.docket.wait(task_id, timeout=10)
        with pytest.raises(MCPError) as refused:
            await legacy(client, "tasks/cancel", {"taskId": task_id})
        assert refused.value.error.code == INVALID_PARAMS
        assert "already completed" in refused.value.error.message


@pytest.mark.parametrize("dialect", ["legacy", "modern"])
async def test_a_task_expiring_mid_request_answers_like_an_unknown_one(
    server: Server, dialect: str
) -> None:
    mode = "legacy" if dialect == "legacy" else "auto"
    async with Client(server.mcp, mode=mode) as client:
        send = legacy if dialect == "legacy" else modern
        call: dict[str, Any] = {"name": "stubborn", "arguments": {}}
        if dialect == "legacy":
            call["task"] = {}
            task_id = (await send(client, "tools/call", call))["task"]["taskId"]
        else:
            task_id = (await send(client, "tools/call", call))["taskId"]
        running = server.tasks.docket
        original = running.cancel

        async def expire_then_cancel(key: str) -> bool:
            await running.client.delete(running.keys.run(key))  # its TTL ran out just now
            return await original(key)

        running.cancel = expire_then_cancel  # type: ignore[method-assign]
        with pytest.raises(MCPError) as answered:
            await send(client, "tasks/cancel", {"taskId": task_id})
        assert answered.value.error.code == INVALID_PARAMS
        assert answered.value.error.message == f"Unknown task: {task_id}"


async def test_a_protocol_version_before_tasks_has_none(server: Server) -> None:
    async with (
        serving_in_process(server.mcp.http_app()) as address,
        httpx.AsyncClient(timeout=20) as http,
    ):
        raw = Raw(http, address, "2025-06-18", modern_meta=True)  # sends the 2026 opt-in too
        started = await raw.open()
        assert started["protocolVersion"] == "2025-06-18"
        assert "tasks" not in started["capabilities"]
        for method in ("tasks/get", "tasks/cancel", "tasks/result", "tasks/list", "tasks/update"):
            answer = await raw.send(method, f'{{"taskId": "{"0" * 32}"}}')
            assert answer["error"]["code"] == -32601, (method, answer)
        listen = await raw.send("subscriptions/listen", '{"notifications": {"taskIds": []}}')
        assert listen["error"]["code"] == -32601, listen
        refused = await raw.send("tools/call", '{"name": "only_task", "arguments": {}}')
        assert refused["error"]["code"] == -32601, refused
        assert "must be called as a task" in refused["error"]["message"]
        inline = await raw.send("tools/call", '{"name": "quick", "arguments": {}}')
        assert inline["result"]["content"][0]["text"] == "done", inline


async def test_stateless_http_tasks_are_bound_to_no_one_and_listed_nowhere(
    server: Server,
) -> None:
    app = server.mcp.http_app(stateless_http=True)
    async with serving_in_process(app) as address, httpx.AsyncClient(timeout=20) as http:
        creator = Raw(http, address, LEGACY)
        await creator.open()
        created = await creator.send("tools/call", '{"name": "quick", "arguments": {}, "task": {}}')
        task_id = created["result"]["task"]["taskId"]
        listed = await creator.send("tasks/list", "{}")
        assert listed["result"]["tasks"] == []
        docket = server.tasks.docket  # and no list was written that nothing could ever read
        pattern = docket.keys.index("*")
        assert [key async for key in docket.client.scan_iter(match=pattern)] == []
        stranger = Raw(http, address, LEGACY)  # another request: no session, no identity
        await stranger.open()
        await server.tasks.docket.wait(task_id, timeout=10)
        got = await stranger.send("tasks/get", f'{{"taskId": "{task_id}"}}')
        assert got["result"]["status"] == "completed"
