"""HTTP routing headers on task calls: ``Mcp-Param-*`` and ``Mcp-Name`` are checked.

Over streamable HTTP, mcp 2.3 checks a 2026-07-28 ``tools/call``'s ``Mcp-Param-*`` headers
against the called tool's input schema (fastmcp 4.2 answers that lookup from its own cache;
on 4.1 the SDK lists the tools). Whichever does it, what a user relies on is the same: task
calls and plain calls of ordinary tools go through, and a header that contradicts a
parameter the tool declares (``x-mcp-header``) is refused, for tools added while serving too.
``Mcp-Name`` naming another task than the body is refused by our handlers (-32020).
"""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastmcp import Client, FastMCP
from fastmcp.client.transports import StreamableHttpTransport
from mcp.shared.exceptions import MCPError
from mcp_types import HEADER_MISMATCH
from pydantic import Field

from mcp_tasks import Tasks
from mcp_tasks.protocol import EXTENSION_ID
from tests.helpers.dockets import purge
from tests.helpers.mcp import modern
from tests.helpers.servers import serving_in_process

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


async def regional(
    region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
) -> str:
    return region


def build(url: str, name: str, *, annotated: bool = False) -> FastMCP:
    mcp = FastMCP("header-check")
    mcp.add_extension(Tasks(url=url, name=name))

    @mcp.tool(task=True)
    async def double(n: int) -> int:
        return n * 2

    if annotated:
        mcp.tool(regional)
    return mcp


async def test_task_and_plain_calls_go_through(backend: str, docket_name: str) -> None:
    mcp = build(backend, docket_name)
    try:
        async with serving_in_process(mcp.http_app()) as address, Client(address) as client:
            for n in range(3):
                assert (await client.call_tool("double", {"n": n})).data == 2 * n
                call = {"name": "double", "arguments": {"n": n}}
                created = await modern(client, "tools/call", call)
                assert created["resultType"] == "task"
    finally:
        await purge(backend, docket_name)


async def test_a_declared_header_is_checked(backend: str, docket_name: str) -> None:
    mcp = build(backend, docket_name, annotated=True)
    try:
        async with serving_in_process(mcp.http_app()) as address:
            async with Client(address) as client:
                await client.list_tools()  # the client learns the header and sends it
                assert (await client.call_tool("regional", {"region": "eu"})).data == "eu"
            liar = StreamableHttpTransport(address, headers={"Mcp-Param-Region": "us"})
            async with Client(liar) as client:
                with pytest.raises(MCPError, match="Mcp-Param-Region header does not match"):
                    await client.call_tool_mcp("regional", {"region": "eu"})
    finally:
        await purge(backend, docket_name)


async def test_a_header_declared_while_serving_is_checked(backend: str, docket_name: str) -> None:
    mcp = build(backend, docket_name)
    try:
        async with serving_in_process(mcp.http_app()) as address:
            async with Client(address) as client:
                assert (await client.call_tool("double", {"n": 1})).data == 2
            mcp.tool(regional)  # added while serving: the server now declares a header
            liar = StreamableHttpTransport(address, headers={"Mcp-Param-Region": "us"})
            async with Client(liar) as client:
                for _ in range(2):
                    with pytest.raises(MCPError, match="Mcp-Param-Region header does not match"):
                        await client.call_tool_mcp("regional", {"region": "eu"})
            async with Client(address) as client:
                assert (await client.call_tool("double", {"n": 3})).data == 6
    finally:
        await purge(backend, docket_name)


async def test_a_mismatched_mcp_name_is_refused_briefly(backend: str, docket_name: str) -> None:
    """``Mcp-Name`` naming another task than the body is -32020, and the answer quotes a
    huge id shortened, not whole."""
    mcp = build(backend, docket_name)
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "probe", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {EXTENSION_ID: {}}},
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tasks/get",
        "mcp-name": "another",
    }
    body = {"taskId": "a" * 100_000, "_meta": meta}
    try:
        request = {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": body}
        async with (
            serving_in_process(mcp.http_app()) as address,
            httpx.AsyncClient(timeout=10) as http,
        ):
            response = await http.post(address, headers=headers, json=request)
        error = response.json()["error"]
        assert error["code"] == HEADER_MISMATCH
        assert "Mcp-Name header 'another' does not match" in error["message"]
        assert len(response.content) < 500
    finally:
        await purge(backend, docket_name)
