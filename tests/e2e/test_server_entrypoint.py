"""The shipped server.py, started the way the README says, answers as a task server."""

from __future__ import annotations

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from tests.helpers.servers import BIN, ROOT, http_server

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


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "0"},
    },
}
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


async def test_the_shipped_server_refuses_other_origins_and_hosts() -> None:
    """DNS rebinding: a page on another origin (or a name resolving to this host) must not
    reach the server; the 2025-11-25 transport spec requires Origin validation (403)."""
    allowed = {"FASTMCP_HTTP_ALLOWED_ORIGINS": '["https://app.example.com"]'}
    with http_server("server.py", {"MCP_TASKS_URL": "memory://", **allowed}) as url:
        async with httpx.AsyncClient(timeout=10) as http:
            plain = await http.post(url, headers=HEADERS, json=INITIALIZE)
            assert plain.status_code == 200, plain.text
            evil = {**HEADERS, "origin": "http://evil.example.com"}
            refused = await http.post(url, headers=evil, json=INITIALIZE)
            assert refused.status_code == 403, refused.text
            rebound = {**evil, "host": "evil.example.com"}
            assert (await http.post(url, headers=rebound, json=INITIALIZE)).status_code in (
                403,
                421,
            )
            own = {**HEADERS, "origin": "https://app.example.com"}
            assert (await http.post(url, headers=own, json=INITIALIZE)).status_code == 200
