"""``MCP_TASKS_GC_FREEZE``: a started server freezes what it has loaded out of later garbage
collections (a quarter of a replica's CPU in a burst otherwise, see benchmarks/scale.py),
and ``0`` leaves the process's collector alone."""

from __future__ import annotations

import gc

import pytest
from fastmcp import Client, FastMCP

from mcp_tasks import Tasks
from tests.helpers.dockets import purge

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("setting", [None, "0"])
async def test_a_started_server_freezes_its_heap_unless_told_not_to(
    url: str, docket_name: str, setting: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if setting is None:
        monkeypatch.delenv("MCP_TASKS_GC_FREEZE", raising=False)
    else:
        monkeypatch.setenv("MCP_TASKS_GC_FREEZE", setting)
    mcp = FastMCP("gc")
    mcp.add_extension(Tasks(url=url, name=docket_name))
    gc.unfreeze()
    try:
        async with Client(mcp) as client:
            await client.list_tools()
            frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()
        await purge(url, docket_name)
    if setting is None:
        assert frozen > 10_000  # the modules, the server and its tools
    else:
        assert frozen == 0
