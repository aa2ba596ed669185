"""``MCP_TASKS_GC_FREEZE``: a started server freezes what it has loaded out of later garbage
collections (a quarter of a replica's CPU in a burst otherwise, see benchmarks/scale.py), and
then what survives each full collection (open streams: second-long pauses otherwise), thawing
it every few minutes so that cycles among once-frozen objects are still reclaimed; ``0``
leaves the process's collector alone; a stopped server leaves it as it was."""

from __future__ import annotations

import gc
import weakref

import pytest
from fastmcp import Client, FastMCP

from mcp_tasks import Tasks
from mcp_tasks.server.collector import THAW_SECONDS, FrozenHeap
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
            collecting = len(gc.callbacks)
        left = gc.get_freeze_count(), len(gc.callbacks)
    finally:
        gc.unfreeze()
        await purge(url, docket_name)
    if setting is None:
        assert frozen > 10_000  # the modules, the server and its tools
        assert left == (0, collecting - 1)  # thawed, its callback gone
    else:
        assert frozen == 0


class Node:
    other: object = None


def test_full_collections_freeze_their_survivors_and_thaw_them_after_a_while() -> None:
    now = [0.0]
    heap = FrozenHeap(clock=lambda: now[0])
    gc.unfreeze()
    heap.start()
    try:
        first = gc.get_freeze_count()
        kept = [[n] for n in range(5_000)]
        gc.collect()  # a full collection: its survivors, these lists among them, frozen
        assert gc.get_freeze_count() >= first + len(kept)

        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        gc.collect()  # the pair is alive: frozen
        del a, b
        gc.collect()
        assert gone() is not None  # a cycle among frozen objects: not reclaimed yet

        now[0] = THAW_SECONDS + 1
        gc.collect()  # time is up: everything thawed
        assert gc.get_freeze_count() == 0
        gc.collect()  # this one walks everything: the cycle is reclaimed, survivors frozen
        assert gone() is None
        assert gc.get_freeze_count() >= len(kept)
    finally:
        heap.stop()
        gc.unfreeze()
