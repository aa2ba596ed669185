"""Redelivery under load: a dead worker's task must not wait behind all new work.

Found by the chaos run (benchmarks/chaos.py): with every slot of every live worker busy and
new tasks arriving steadily, a freed slot always went to the next new task, because a worker
only took over a dead worker's tasks when it had a free slot at its maintenance tick. The
killed workers' tasks waited up to a minute instead of about ``redelivery_timeout``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

import pytest

from mcp_tasks.engine import Docket, Status, Worker
from mcp_tasks.engine.keys import GROUP
from tests.helpers.dockets import running

pytestmark = pytest.mark.anyio


async def until(condition: Callable[[], bool], changed: asyncio.Event | None = None) -> None:
    """Until ``condition`` holds: re-checked on ``changed``, else every 10 ms (the worker's
    internal flag has no event to wait on)."""
    async with asyncio.timeout(10):
        while not condition():
            if changed is None:
                await asyncio.sleep(0.01)
            else:
                changed.clear()
                await changed.wait()


class Holds:
    """A task function ``hold(label)`` that runs until its label's gate is set, noting the
    order tasks start in."""

    def __init__(self) -> None:
        self.gates: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.started: list[str] = []
        self.changed = asyncio.Event()

    async def hold(self, label: str) -> str:
        self.started.append(label)
        self.changed.set()
        await self.gates[label].wait()
        return label


async def test_a_dead_workers_task_takes_the_next_free_slot_before_new_work(
    docket: Docket,
) -> None:
    holds = Holds()
    gates, started, changed = holds.gates, holds.started, holds.changed
    docket.register(holds.hold, name="hold")
    orphan = await docket.add("hold")("orphan")
    # A worker that died right after claiming it: the entry sits in the group's pending list.
    claimed = await docket.client.xreadgroup(
        GROUP, "dead-worker", {docket.keys.stream: ">"}, count=1
    )
    assert claimed, "the dead worker should have claimed the first task"
    for i in range(2):
        await docket.add("hold")(f"busy-{i}")
    for i in range(5):
        await docket.add("hold")(f"new-{i}")
    # 1 s: the orphan must not be overdue before the worker has filled its slots with the
    # busy tasks (with 0.2 s a loaded machine sometimes gave the orphan a first slot).
    worker = Worker(docket, concurrency=2, redelivery_timeout=1.0)
    async with running(worker):
        await until(lambda: sorted(started) == ["busy-0", "busy-1"], changed)
        # Every slot is busy; once the orphan is overdue the worker notes it (the only way
        # to know it has: this is the moment a freed slot must go to the orphan).
        await until(lambda: worker._reclaim_first)
        gates["busy-0"].set()
        await until(lambda: len(started) == 3, changed)
        assert started[2] == "orphan", started
        for label in ["orphan", "busy-1", *(f"new-{i}" for i in range(5))]:
            gates[label].set()
        final = await docket.wait(orphan.key, timeout=10)
    assert final.status is Status.COMPLETED and final.result == "orphan"
    assert final.attempt == 1  # the dead worker never started it: no attempt was spent


async def test_a_dead_workers_task_is_found_behind_many_live_ones(docket: Docket) -> None:
    """One XAUTOCLAIM looks at only 10 x COUNT pending entries from where it starts: with
    more live entries ahead of a dead worker's, a worker with one free slot never saw it."""
    started: list[str] = []

    async def note(label: str) -> str:
        started.append(label)
        return label

    docket.register(note, name="note")
    for i in range(15):
        await docket.add("note")(f"live-{i}")
    orphan = await docket.add("note")("orphan")
    stream = docket.keys.stream
    # A live worker holds the first fifteen (idle 0 ms); a dead one the last, long overdue.
    delivered = await docket.client.xreadgroup(GROUP, "live-worker", {stream: ">"}, count=16)
    last = delivered[0][1][-1][0]  # type: ignore[index]
    await docket.client.xclaim(stream, GROUP, "dead-worker", 0, [last], idle=60_000, justid=True)
    worker = Worker(docket, concurrency=1, redelivery_timeout=4)
    async with running(worker):
        final = await docket.wait(orphan.key, timeout=20)
    assert final.status is Status.COMPLETED
    assert started[0] == "orphan", started  # the live worker's fifteen were not overdue yet


async def test_memory_worker_waiting_for_new_work_takes_a_noted_orphan_when_a_slot_frees(
    docket_name: str,
) -> None:
    """memory:// only (on Redis the claim loop blocks in XREADGROUP instead): the claim loop
    waits for new work while it has a free slot; the maintenance loop then takes that slot
    for one dead worker's task and notes a second one. When a slot frees, the claim loop
    must take the noted task itself, not leave it to the next maintenance tick."""
    async with Docket(name=docket_name, url=f"memory://{docket_name}") as docket:
        holds = Holds()
        gates, started, changed = holds.gates, holds.started, holds.changed
        reclaimed_by: dict[str, str] = {}
        docket.register(holds.hold, name="hold")
        await docket.add("hold")("first-orphan")
        second = await docket.add("hold")("second-orphan")
        claimed = await docket.client.xreadgroup(
            GROUP, "dead-worker", {docket.keys.stream: ">"}, count=2
        )
        ids = [sid for sid, _ in claimed[0][1]]  # type: ignore[index]
        await docket.client.xclaim(docket.keys.stream, GROUP, "dead-worker", 0, ids, idle=600_000)
        await docket.add("hold")("busy")
        worker = Worker(docket, concurrency=2, redelivery_timeout=1.0)
        reclaim = worker._reclaim

        async def reclaim_noting_who(count: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
            entries = await reclaim(count)
            task = asyncio.current_task()
            for _sid, fields in entries:
                reclaimed_by[fields[b"key"].decode()] = task.get_name() if task else "?"
            return entries

        worker._reclaim = reclaim_noting_who  # type: ignore[method-assign]
        async with running(worker):
            # busy runs at once; a maintenance tick takes the last slot for the first orphan
            await until(lambda: sorted(started) == ["busy", "first-orphan"], changed)
            await until(lambda: worker._reclaim_first)  # the next tick notes the second
            gates["busy"].set()
            await until(lambda: "second-orphan" in started, changed)
            for gate in gates.values():
                gate.set()
            await docket.wait(second.key, timeout=10)
        assert reclaimed_by[second.key] != "mcp-tasks maintenance", reclaimed_by


async def test_a_taken_over_task_and_new_work_never_run_beyond_concurrency(
    docket: Docket,
) -> None:
    """An idle worker takes a dead worker's task on its maintenance tick while its claim loop
    waits for new work (on Redis: blocked in XREADGROUP, asking for as many tasks as it had
    free slots). Work arriving next must wait for a slot: ``concurrency=1`` is a promise, e.g.
    for a job that needs the whole machine."""
    holds = Holds()
    gates, started, changed = holds.gates, holds.started, holds.changed
    running_now, peak = [0], [0]

    async def hold(label: str) -> str:
        running_now[0] += 1
        peak[0] = max(peak[0], running_now[0])
        try:
            return await holds.hold(label)
        finally:
            running_now[0] -= 1

    docket.register(hold, name="hold")
    orphan = await docket.add("hold")("orphan")
    claimed = await docket.client.xreadgroup(
        GROUP, "dead-worker", {docket.keys.stream: ">"}, count=1
    )
    assert claimed, "the dead worker should have claimed the task"
    worker = Worker(docket, concurrency=1, redelivery_timeout=0.2)
    async with running(worker):
        await until(lambda: started == ["orphan"], changed)
        fresh = await docket.add("hold")("new")
        if docket.backend.memory is None:
            # The blocked read hands the new task to this worker at once: wait until the
            # worker has either started it (the bug) or set it aside for its next free slot.
            await until(lambda: "new" in started or worker._reclaim_first)
        assert started == ["orphan"] and peak[0] == 1
        gates["orphan"].set()
        gates["new"].set()
        assert (await docket.wait(fresh.key, timeout=10)).status is Status.COMPLETED
    assert (await docket.wait(orphan.key, timeout=10)).status is Status.COMPLETED
    assert peak[0] == 1
