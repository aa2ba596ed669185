"""A task runs as its caller and through the server's own middleware, in both dialects.

Over real HTTP with bearer tokens: fastmcp middleware (``on_call_tool``) sees task calls of
both dialects and can refuse them; a tool's ``auth=`` check and ``get_access_token()`` see
the caller's identity on the worker, though the bearer token itself is never stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastmcp import Client, FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.auth.providers.jwt import StaticTokenVerifier
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import Middleware
from fastmcp.utilities.authorization import require_scopes
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from mcp_tasks import Tasks
from mcp_tasks.server.runner import REDACTED
from tests.helpers.dockets import purge
from tests.helpers.mcp import legacy, modern
from tests.helpers.servers import serving_in_process

pytestmark = pytest.mark.anyio

TOKENS = {
    "token-alice": {"client_id": "alice", "scopes": ["read", "write"], "sub": "alice"},
    "token-bob": {"client_id": "bob", "scopes": ["read"], "sub": "bob"},
}


class Policy(Middleware):
    """Sees every tools/call; refuses any whose arguments say so."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def on_call_tool(self, context: Any, call_next: Any) -> Any:
        self.seen.append(context.message.name)
        if (context.message.arguments or {}).get("note") == "refuse":
            raise ToolError("refused by policy")
        return await call_next(context)


@contextlib.asynccontextmanager
async def serving(url: str, name: str) -> AsyncIterator[tuple[str, Policy, Tasks]]:
    tasks = Tasks(url=url, name=name)
    policy = Policy()
    mcp = FastMCP("caller", auth=StaticTokenVerifier(TOKENS))
    mcp.add_extension(tasks)
    mcp.add_middleware(policy)

    @mcp.tool(task=True, auth=require_scopes("write"))
    async def whoami(note: str = "") -> dict[str, Any]:
        token = get_access_token()
        assert token is not None
        return {"client": token.client_id, "scopes": token.scopes, "token": token.token}

    async with serving_in_process(mcp.http_app()) as address:
        yield address, policy, tasks


async def test_a_task_runs_as_its_caller_in_both_dialects(url: str, docket_name: str) -> None:
    try:
        async with serving(url, docket_name) as (address, policy, tasks):
            async with Client(address, auth="token-alice", mode="legacy") as alice:
                created = await legacy(
                    alice, "tools/call", {"name": "whoami", "arguments": {}, "task": {}}
                )
                result = await legacy(alice, "tasks/result", {"taskId": created["task"]["taskId"]})
                assert result["structuredContent"] == {
                    "client": "alice",
                    "scopes": ["read", "write"],
                    "token": REDACTED,
                }
            async with Client(address, auth="token-alice") as alice:
                created = await modern(alice, "tools/call", {"name": "whoami", "arguments": {}})
                task_id = created["taskId"]
                await tasks.docket.wait(task_id, timeout=10)
                task = await modern(alice, "tasks/get", {"taskId": task_id})
                assert task["status"] == "completed"
                assert task["result"]["structuredContent"]["client"] == "alice"
            assert policy.seen == ["whoami", "whoami"]  # fastmcp middleware saw both
    finally:
        await purge(url, docket_name)


async def test_a_caller_without_the_scope_cannot_create_the_task(
    url: str, docket_name: str
) -> None:
    try:
        async with serving(url, docket_name) as (address, _, tasks):
            async with Client(address, auth="token-bob", mode="legacy") as bob:
                with pytest.raises(MCPError) as error:
                    await legacy(bob, "tools/call", {"name": "whoami", "arguments": {}, "task": {}})
                assert error.value.error.code == INVALID_PARAMS
            async with Client(address, auth="token-bob") as bob:
                answer = await modern(bob, "tools/call", {"name": "whoami", "arguments": {}})
                assert answer.get("isError") is True and "taskId" not in answer
            assert await tasks.docket.depth() == (0, 0)
    finally:
        await purge(url, docket_name)


async def test_middleware_can_refuse_a_task_call_in_both_dialects(
    url: str, docket_name: str
) -> None:
    refused = {"name": "whoami", "arguments": {"note": "refuse"}}
    try:
        async with serving(url, docket_name) as (address, policy, tasks):
            async with Client(address, auth="token-alice", mode="legacy") as alice:
                answer = await legacy(alice, "tools/call", {**refused, "task": {}})
                assert answer["isError"] is True and "task" not in answer
                assert "refused by policy" in answer["content"][0]["text"]
            async with Client(address, auth="token-alice") as alice:
                answer = await modern(alice, "tools/call", refused)
                assert answer["isError"] is True and "taskId" not in answer
            assert policy.seen == ["whoami", "whoami"]
            assert await tasks.docket.depth() == (0, 0)  # no task was created
    finally:
        await purge(url, docket_name)
