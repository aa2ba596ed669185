"""The ``Mcp-Param`` header check without a ``tools/list`` per call, and still a check.

mcp 2.3 validates a 2026-07-28 ``tools/call``'s ``Mcp-Param-*`` headers over HTTP and, with
no schema lookup on the server, lists every tool through fastmcp to do it. ``Tasks`` answers
that lookup while no tool could declare such a header; these tests hold it to the same
outcome as the listing: no listing on a plain server, the check still rejecting a wrong
header where a tool declares one, and the listing back once the server stops being plain.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import httpx
import pytest
from conftest import purge
from fastmcp import Client, FastMCP
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.server.middleware import Middleware
from fastmcp.server.middleware.tool_injection import ToolInjectionMiddleware
from fastmcp.server.transforms import Namespace
from fastmcp.tools import Tool
from mcp.shared.exceptions import MCPError
from mcp_types import HEADER_MISMATCH
from pydantic import Field
from servers import serving_in_process
from test_mcp_dialects import modern

from mcp_tasks import Tasks
from mcp_tasks.protocol import EXTENSION_ID
from mcp_tasks.server.header_check import HeaderSchemaLookup

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


class Listings(Middleware):
    """Counts the ``tools/list`` requests fastmcp serves, the SDK's own included (from the
    generic ``on_request`` hook: a middleware with ``on_list_tools`` makes a server not plain)."""

    def __init__(self) -> None:
        self.count = 0

    async def on_request(self, context: Any, call_next: Any) -> Any:
        if context.method == "tools/list":
            self.count += 1
        return await call_next(context)


async def regional(
    region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
) -> str:
    return region


def build(url: str, name: str, *, annotated: bool = False) -> tuple[FastMCP, Listings]:
    mcp = FastMCP("header-check")
    mcp.add_extension(Tasks(url=url, name=name))
    listings = Listings()
    mcp.add_middleware(listings)

    @mcp.tool(task=True)
    async def double(n: int) -> int:
        return n * 2

    if annotated:
        mcp.tool(regional)
    return mcp, listings


async def test_a_plain_server_checks_calls_without_listing_its_tools(
    backend: str, docket_name: str
) -> None:
    mcp, listings = build(backend, docket_name)
    try:
        async with serving_in_process(mcp.http_app()) as address, Client(address) as client:
            assert isinstance(mcp._mcp_server.get_tool_input_schema, HeaderSchemaLookup)
            await client.call_tool("double", {"n": 0})  # the client may list tools once itself
            before = listings.count
            for n in range(3):
                assert (await client.call_tool("double", {"n": n})).data == 2 * n
                call = {"name": "double", "arguments": {"n": n}}
                created = await modern(client, "tools/call", call)
                assert created["resultType"] == "task"
            assert listings.count == before
    finally:
        await purge(backend, docket_name)


async def test_a_declared_header_is_still_checked(backend: str, docket_name: str) -> None:
    mcp, listings = build(backend, docket_name, annotated=True)
    try:
        async with serving_in_process(mcp.http_app()) as address:
            assert mcp._mcp_server.get_tool_input_schema is None  # the SDK lists, as before
            async with Client(address) as client:
                await client.list_tools()  # the client learns the header and sends it
                assert (await client.call_tool("regional", {"region": "eu"})).data == "eu"
            liar = StreamableHttpTransport(address, headers={"Mcp-Param-Region": "us"})
            async with Client(liar) as client:
                with pytest.raises(MCPError, match="Mcp-Param-Region header does not match"):
                    await client.call_tool_mcp("regional", {"region": "eu"})
            assert listings.count >= 2
    finally:
        await purge(backend, docket_name)


async def test_the_listing_comes_back_once_the_server_is_not_plain(
    backend: str, docket_name: str
) -> None:
    mcp, listings = build(backend, docket_name)
    try:
        async with serving_in_process(mcp.http_app()) as address:
            async with Client(address) as client:
                assert (await client.call_tool("double", {"n": 1})).data == 2
                before = listings.count
                assert (await client.call_tool("double", {"n": 1})).data == 2
                assert listings.count == before
            mcp.tool(regional)  # added while serving: the server now declares a header
            liar = StreamableHttpTransport(address, headers={"Mcp-Param-Region": "us"})
            async with Client(liar) as client:
                for _ in range(2):  # the call that finds the change is checked too
                    with pytest.raises(MCPError, match="Mcp-Param-Region header does not match"):
                        await client.call_tool_mcp("regional", {"region": "eu"})
            assert mcp._mcp_server.get_tool_input_schema is None
            async with Client(address) as client:
                before = listings.count
                assert (await client.call_tool("double", {"n": 3})).data == 6
                assert listings.count > before
    finally:
        await purge(backend, docket_name)


async def test_a_mismatched_mcp_name_is_refused_briefly(backend: str, docket_name: str) -> None:
    """``Mcp-Name`` naming another task than the body is -32020, and the answer quotes a
    huge id shortened, not whole."""
    mcp, _ = build(backend, docket_name)
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


class Relister(Middleware):
    async def on_list_tools(self, context: Any, call_next: Any) -> Any:
        return await call_next(context)


class Stamp(Tool):
    """A hand-made tool whose schema holds a value JSON cannot encode."""

    async def run(self, arguments: dict[str, Any]) -> Any:
        return "ok"


def plain() -> FastMCP:
    mcp = FastMCP("plain")

    @mcp.tool
    async def double(n: int) -> int:
        return n * 2

    return mcp


def test_what_counts_as_plain() -> None:
    """The lookup vouches only for servers whose every listable tool it can see."""
    mcp = plain()
    assert HeaderSchemaLookup(mcp).applies()
    mcp.disable(names={"double"})  # visibility only hides tools
    assert HeaderSchemaLookup(mcp).applies()
    odd = {"type": "object", "properties": {"at": {"type": "string", "default": date(2026, 1, 1)}}}
    mcp.add_tool(Stamp(name="stamp", parameters=odd))
    assert HeaderSchemaLookup(mcp).applies()  # an odd schema neither breaks nor fools it

    annotated = [
        lambda m: m.tool(regional),
        lambda m: m.add_middleware(ToolInjectionMiddleware([Tool.from_function(regional)])),
    ]
    unknowable = [
        lambda m: m.add_middleware(Relister()),
        lambda m: m.mount(plain(), namespace="sub"),
        lambda m: m.add_transform(Namespace("x")),
    ]
    for change in [*annotated, *unknowable]:
        mcp = plain()
        change(mcp)
        assert not HeaderSchemaLookup(mcp).applies()
