"""The shipped server.py, started the way the README says, answers as a task server."""

from __future__ import annotations

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from servers import BIN, ROOT, http_server

pytestmark = pytest.mark.anyio


async def _check(client: Client[StdioTransport] | Client[str]) -> None:
    tools = {t.name: t for t in await client.list_tools()}
    assert {"sleep", "count"} <= set(tools)
    for name in ("sleep", "count"):
        assert tools[name].execution.task_support == "optional"  # type: ignore[union-attr]
    result = await client.call_tool("count", {"to": 3})  # a plain call still works
    assert result.data == 3


async def test_fastmcp_run_server_py_over_stdio() -> None:
    transport = StdioTransport(
        command=str(BIN / "fastmcp"),
        args=["run", "server.py", "--no-banner"],
        cwd=str(ROOT),
        env={"MCP_TASKS_URL": "memory://"},
    )
    async with Client(transport, mode="legacy") as client:
        await _check(client)


async def test_fastmcp_run_server_py_over_http() -> None:
    with http_server("server.py", {"MCP_TASKS_URL": "memory://"}) as url:
        async with Client(url, mode="legacy") as client:
            await _check(client)
