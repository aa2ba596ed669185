"""Coalesced reads (``engine/reads.py``): what a burst of listeners relies on.

Reads made in one tick go out together (one pipeline, one ``HGETALL`` per task however many
readers ask for it), and a read never returns a record older than the moment it was asked
for, on memory://, Redis and Redis Cluster.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mcp_tasks.engine import Docket, Status, Worker
from tests.helpers.dockets import running

pytestmark = pytest.mark.anyio


async def noop(n: int) -> int:
    return n


def count_sends(docket: Docket, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each read batch sent: the tasks it reads (each an ``HGETALL`` of its
    run hash and a ``GET`` of its large values)."""
    sizes: list[int] = []
    client = docket.client
    plain, pipeline = client.hgetall, client.pipeline

    async def hgetall(key: Any) -> Any:
        sizes.append(1)
        return await plain(key)

    def counted(*args: Any, **kwargs: Any) -> Any:
        pipe = pipeline(*args, **kwargs)
        execute, queue = pipe.execute, pipe.hgetall
        queued: list[Any] = []

        def add(key: Any) -> Any:
            queued.append(key)
            return queue(key)

        async def run(*a: Any, **k: Any) -> Any:
            sizes.append(len(queued))
            return await execute(*a, **k)

        pipe.hgetall = add  # type: ignore[method-assign]
        pipe.execute = run  # type: ignore[method-assign]
        return pipe

    monkeypatch.setattr(client, "hgetall", hgetall)
    monkeypatch.setattr(client, "pipeline", counted)
    return sizes


async def test_reads_of_one_tick_share_one_round_trip(
    docket: Docket, monkeypatch: pytest.MonkeyPatch
) -> None:
    docket.register(noop)
    keys = [(await docket.add(noop)(i)).key for i in range(20)]
    sizes = count_sends(docket, monkeypatch)
    # 20 tasks, each read by three listeners at once, and one unknown id.
    states = await asyncio.gather(*(docket.get(k) for k in keys * 3), docket.get("0" * 32))
    assert sizes == [21]  # one pipeline: one HGETALL per distinct task
    assert [s.key for s in states[:20] if s is not None] == keys
    assert states[:20] == states[20:40] == states[40:60]
    assert states[-1] is None

    sizes.clear()
    assert (await docket.get(keys[0])) is not None  # a lone read: its own small pipeline
    assert sizes == [1]


async def test_a_read_asked_after_a_change_sees_it(docket: Docket) -> None:
    """A reader woken by an event must not get the record of a batch sent before it."""
    docket.register(noop)
    key = (await docket.add(noop)(7)).key
    before = asyncio.ensure_future(docket.get(key))
    await asyncio.sleep(0)  # that read's batch is on its way
    async with running(Worker(docket)):
        final = await docket.wait(key, timeout=10)
        assert final.status is Status.COMPLETED
        after = await docket.get(key)
    assert (await before) is not None
    assert after is not None and after.status is Status.COMPLETED and after.result == 7


async def test_a_cancelled_reader_does_not_fail_the_others(docket: Docket) -> None:
    docket.register(noop)
    key = (await docket.add(noop)(1)).key
    first = asyncio.ensure_future(docket.get(key))
    second = asyncio.ensure_future(docket.get(key))
    await asyncio.sleep(0)
    first.cancel()
    state = await second
    assert state is not None and state.key == key
    with pytest.raises(asyncio.CancelledError):
        await first
