"""Cancellation, concurrency limits, redelivery, leases and shutdown — memory:// and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
import redis

from mcp_tasks.engine import ConcurrencyLimit, Docket, Status, Worker, current_task
from mcp_tasks.engine.inspection import snapshot
from mcp_tasks.engine.keys import GROUP
from tests.helpers.dockets import running

pytestmark = pytest.mark.anyio


async def test_cancelled_scheduled_task_never_runs(docket: Docket) -> None:
    ran: list[str] = []

    async def later() -> None:
        ran.append("later")

    docket.register(later)
    execution = await docket.add(later, delay=0.2)()
    assert await docket.cancel(execution.key)
    state = await docket.get(execution.key)
    assert state is not None and state.status is Status.CANCELLED
    assert await docket.scheduled_keys() == []
    marker = await docket.add(later, delay=0.3)()  # something that does run, after it
    async with running(Worker(docket)):
        await docket.wait(marker.key, timeout=10)
    assert ran == ["later"]  # only the marker
    assert (await docket.get(execution.key)).status is Status.CANCELLED  # type: ignore[union-attr]


async def test_cancelled_queued_task_never_runs(docket: Docket) -> None:
    ran: list[int] = []

    async def job(n: int) -> None:
        ran.append(n)

    docket.register(job)
    doomed = await docket.add(job)(1)
    survivor = await docket.add(job)(2)
    assert await docket.cancel(doomed.key)
    async with running(Worker(docket)):
        await docket.wait(survivor.key, timeout=10)
    assert ran == [2]
    final = await docket.get(doomed.key)
    assert final is not None and final.status is Status.CANCELLED


async def test_running_task_is_cancelled_promptly(docket: Docket) -> None:
    started = asyncio.Event()
    saw_cancel: list[bool] = []

    async def endless() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            saw_cancel.append(current_task().cancel_requested)
            raise

    docket.register(endless)
    execution = await docket.add(endless)()
    async with running(Worker(docket)):
        await asyncio.wait_for(started.wait(), 10)
        t0 = time.monotonic()
        assert await docket.cancel(execution.key)
        final = await docket.wait(execution.key, timeout=10)
        elapsed = time.monotonic() - t0
    assert final.status is Status.CANCELLED
    assert saw_cancel == [True]
    assert elapsed < 1.0  # a generous ceiling; the benchmark reports the real latency


async def test_an_accepted_cancel_wins_over_a_run_that_finishes_anyway(docket: Docket) -> None:
    """Once ``cancel`` has said yes, the task ends ``cancelled``, even when its run still
    returns a result (here it swallows the cancellation; in life it finishes in the same
    instant): a caller told "cancelled" must never see another outcome."""
    started = asyncio.Event()

    async def stubborn() -> str:
        started.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(60)
        return "finished anyway"

    docket.register(stubborn)
    execution = await docket.add(stubborn)()
    async with running(Worker(docket)):
        await asyncio.wait_for(started.wait(), 10)
        assert await docket.cancel(execution.key)
        final = await docket.wait(execution.key, timeout=10)
    assert final.status is Status.CANCELLED
    assert final.result is None


async def test_cancel_of_a_finished_task_reports_false(docket: Docket) -> None:
    async def quick() -> int:
        return 1

    docket.register(quick)
    execution = await docket.add(quick)()
    async with running(Worker(docket)):
        await docket.wait(execution.key, timeout=10)
    assert await docket.cancel(execution.key) is False
    assert (await docket.get(execution.key)).status is Status.COMPLETED  # type: ignore[union-attr]


async def _track_concurrency(
    docket: Docket, limit: ConcurrencyLimit, calls: list[str], workers: int
) -> tuple[int, dict[str, int]]:
    active: dict[str, int] = {}
    peak: dict[str, int] = {}
    overall_peak = 0

    async def limited(customer: str) -> None:
        nonlocal overall_peak
        active[customer] = active.get(customer, 0) + 1
        peak[customer] = max(peak.get(customer, 0), active[customer])
        overall_peak = max(overall_peak, sum(active.values()))
        await asyncio.sleep(0.05)
        active[customer] -= 1

    docket.register(limited, concurrency=limit)
    keys = [(await docket.add(limited)(c)).key for c in calls]
    pool = [Worker(docket, concurrency=5) for _ in range(workers)]
    async with running(*pool):
        for key in keys:
            assert (await docket.wait(key, timeout=20)).status is Status.COMPLETED
    return overall_peak, peak


async def test_concurrency_limit_per_function_across_workers(docket: Docket) -> None:
    overall, _ = await _track_concurrency(
        docket, ConcurrencyLimit(2), ["a"] * 8 + ["b"] * 4, workers=2
    )
    assert overall == 2


async def test_concurrency_limit_per_argument_value(docket: Docket) -> None:
    overall, peak = await _track_concurrency(
        docket, ConcurrencyLimit(1, argument="customer"), ["acme"] * 5 + ["globex"] * 5, workers=2
    )
    assert peak == {"acme": 1, "globex": 1}
    assert overall == 2  # the two customers did run side by side


async def test_dead_workers_task_is_redelivered(docket: Docket) -> None:
    """A worker that claimed a task and died (never acked) loses it to a live worker."""

    async def job() -> str:
        return "finished by the survivor"

    docket.register(job)
    execution = await docket.add(job)()
    # The "dead" worker: claims the entry through the group, then never acknowledges it.
    claimed = await docket.client.xreadgroup(
        GROUP, "dead-worker", {docket.keys.stream: ">"}, count=10
    )
    assert claimed and claimed[0][1]
    survivor = Worker(docket, redelivery_timeout=0.3)
    async with running(survivor):
        final = await docket.wait(execution.key, timeout=10)
    assert final.status is Status.COMPLETED and final.worker == survivor.name


async def test_live_worker_keeps_its_long_task(docket: Docket) -> None:
    """A task running longer than the redelivery timeout is not taken by another worker."""
    starts: list[str] = []
    started = asyncio.Event()

    async def long_job() -> None:
        starts.append(current_task().key)
        started.set()
        await asyncio.sleep(2.5)

    # 2.5 s of work, 0.8 s of redelivery timeout: the lease is renewed every 0.2 s, so only
    # an event-loop stall of 0.6 s (not the 0.23 s a 0.3 s timeout allowed, which a loaded
    # CI machine once reached) would let the other worker take the task.
    docket.register(long_job)
    execution = await docket.add(long_job)()
    holder = Worker(docket, redelivery_timeout=0.8)
    async with running(holder):
        await asyncio.wait_for(started.wait(), 10)
        async with running(Worker(docket, redelivery_timeout=0.8)):
            final = await docket.wait(execution.key, timeout=10)
    assert final.status is Status.COMPLETED and final.attempt == 1
    assert starts == [execution.key]


async def test_graceful_stop_finishes_short_tasks_and_hands_back_long_ones(
    docket: Docket,
) -> None:
    both_started = asyncio.Event()
    runs: list[str] = []

    async def job(kind: str) -> str:
        runs.append(kind)
        if len(runs) == 2:
            both_started.set()
        if kind == "long" and len(runs) <= 2:
            await asyncio.sleep(30)
        else:
            await asyncio.sleep(0.05)
        return kind

    docket.register(job)
    short = await docket.add(job)("short")
    long = await docket.add(job)("long")
    first = Worker(docket, concurrency=2)
    await first.start()
    runner = asyncio.create_task(first.run_forever())
    await asyncio.wait_for(both_started.wait(), 10)
    await first.stop(grace=0.3)
    await runner
    assert (await docket.get(short.key)).status is Status.COMPLETED  # type: ignore[union-attr]
    handed_back = await docket.get(long.key)
    assert handed_back is not None and handed_back.status is Status.QUEUED
    assert handed_back.attempt == 0  # a hand-back is not a failed attempt
    async with running(Worker(docket)):
        final = await docket.wait(long.key, timeout=10)
    assert final.status is Status.COMPLETED and final.result == "long"


async def test_run_until_finished_drains_and_returns(docket: Docket) -> None:
    async def job(n: int) -> int:
        return n

    docket.register(job)
    executions = await docket.add_many(job, [(i,) for i in range(50)])
    later = await docket.add(job, delay=0.2)(99)
    async with Worker(docket, concurrency=8) as worker:
        await asyncio.wait_for(worker.run_until_finished(), timeout=20)
    for execution in [*executions, later]:
        state = await docket.get(execution.key)
        assert state is not None and state.status is Status.COMPLETED
    assert await docket.depth() == (0, 0)


async def test_backlog_reads_the_stream_and_the_schedule_together(docket: Docket) -> None:
    """What run_until_finished decides on: queued tasks and scheduled keys in one read."""

    async def job(n: int) -> int:
        return n

    docket.register(job)
    assert await docket.backlog() == (0, [])
    await docket.add_many(job, [(1,), (2,)])
    later = await docket.add(job, delay=60)(3)
    assert await docket.backlog() == (2, [later.key])
    assert await docket.backlog(limit=1) == (2, [later.key])
    with pytest.raises(ValueError, match="limit"):
        await docket.backlog(limit=0)


async def test_backlog_counts_tasks_parked_on_a_concurrency_limit(docket: Docket) -> None:
    """A parked task is off the stream until a slot frees; the worker must not call that
    finished."""
    gate = asyncio.Event()
    started = asyncio.Event()

    async def job(n: int) -> int:
        started.set()
        await gate.wait()
        return n

    docket.register(job, concurrency=ConcurrencyLimit(1))
    _first, second = await docket.add_many(job, [(1,), (2,)])
    async with running(Worker(docket, concurrency=4)):
        await started.wait()
        async with asyncio.timeout(10):  # no event says "parked": look until it left the stream
            while (await docket.depth())[0] != 1:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert await docket.backlog() == (2, [])  # one running on the stream, one parked
        gate.set()
        await docket.wait(second.key, timeout=10)
    assert await docket.backlog() == (0, [])


async def test_many_waiters_share_one_subscription(docket: Docket) -> None:
    gate = asyncio.Event()

    async def job(n: int) -> int:
        await gate.wait()
        return n

    docket.register(job)
    executions = await docket.add_many(job, [(i,) for i in range(1000)])
    async with running(Worker(docket, concurrency=200)):
        waiters = [asyncio.create_task(docket.wait(e.key, timeout=30)) for e in executions]
        async with asyncio.timeout(20):
            # No event announces a subscription, so look until every waiter listens.
            while sum(len(q) for q in docket.hub._queues.values()) < 1000:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert await subscribers(docket) == 1  # one connection: 1,000 waiters and the worker
        gate.set()
        results = await asyncio.gather(*waiters)
    assert [r.result for r in results] == list(range(1000))


async def test_a_process_hears_only_the_tasks_it_follows(docket: Docket) -> None:
    """A task's events go to its own channel, subscribed only while something here follows
    it: a replica's event traffic follows its own listeners, not the whole docket's."""
    gate = asyncio.Event()

    async def job() -> str:
        await gate.wait()
        return "done"

    docket.register(job)
    followed, ignored = await docket.add_many(job, [(), ()])
    async with running(Worker(docket)):
        waiter = asyncio.create_task(docket.wait(followed.key, timeout=30))
        async with asyncio.timeout(20):
            while followed.key not in docket.hub._queues:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await docket.hub.ready(followed.key)
        assert await subscribers(docket, docket.keys.task_events(followed.key)) == 1
        assert await subscribers(docket, docket.keys.task_events(ignored.key)) == 0
        assert await subscribers(docket, docket.keys.events) == 0  # no dashboard here
        gate.set()
        assert (await waiter).result == "done"
        await docket.wait(ignored.key, timeout=30)
    async with asyncio.timeout(20):  # the waiters left: their channels are dropped
        while await subscribers(docket, docket.keys.task_events(followed.key)):  # noqa: ASYNC110 - Redis's count
            await asyncio.sleep(0.01)


async def subscribers(docket: Docket, channel: str | None = None) -> int:
    """Subscribers of a channel, by default the docket's control channel (every process's
    hub subscribes to it); PUBSUB NUMSUB is per node on a cluster."""
    channel = channel or docket.keys.control
    if not docket.backend.is_cluster:
        ((_channel, count),) = await docket.client.pubsub_numsub(channel)
        return int(count)
    total = 0
    for node in docket.client.get_nodes():  # type: ignore[attr-defined]
        node_client = redis.asyncio.Redis(host=node.host, port=node.port)
        ((_channel, count),) = await node_client.pubsub_numsub(channel)
        await node_client.aclose()
        total += int(count)
    return total


async def _claim_as_dead_worker(docket: Docket, key: str, attempt: int) -> None:
    """Make ``key`` look like a task whose worker started it and then died."""
    claimed = await docket.client.xreadgroup(
        GROUP, "dead-worker", {docket.keys.stream: ">"}, count=10
    )
    assert claimed and claimed[0][1]
    await docket.client.hset(
        docket.keys.run(key),
        mapping={"status": "running", "worker": "dead-worker", "attempt": attempt},
    )


async def test_a_reclaimed_task_waiting_for_a_slot_is_not_lost(docket: Docket) -> None:
    ran: list[str] = []

    async def job(name: str) -> None:
        ran.append(name)

    docket.register(job, concurrency=ConcurrencyLimit(1))
    orphan = await docket.add(job)("orphan")
    await _claim_as_dead_worker(docket, orphan.key, attempt=1)
    # Someone else holds the only slot when the orphan is reclaimed: it must wait, not vanish.
    await docket.client.zadd(docket.keys.limit(docket.function(job).name), {"holder": 2**50})
    survivor = Worker(docket, redelivery_timeout=0.2)
    async with running(survivor):
        async for state in docket.watch(orphan.key):
            if state.status is Status.QUEUED:  # parked: queued again, waiting for the slot
                break
        await docket.client.zrem(docket.keys.limit(docket.function(job).name), "holder")
        final = await docket.wait(orphan.key, timeout=10)
    assert final.status is Status.COMPLETED and ran == ["orphan"]


async def test_a_task_that_keeps_losing_its_worker_is_failed_not_rerun(docket: Docket) -> None:
    ran: list[int] = []

    async def crashy() -> None:
        ran.append(1)

    docket.register(crashy)
    execution = await docket.add(crashy)()
    await _claim_as_dead_worker(docket, execution.key, attempt=3)
    async with running(Worker(docket, redelivery_timeout=0.2, max_deliveries=3)):
        final = await docket.wait(execution.key, timeout=10)
    assert final.status is Status.FAILED and ran == []
    assert final.error is not None and final.error.type == "WorkerLost"


async def test_workers_survive_a_purge(docket: Docket) -> None:
    from mcp_tasks.engine.inspection import purge

    async def job() -> str:
        return "after the purge"

    docket.register(job)
    async with running(Worker(docket)):
        await docket.wait((await docket.add(job)()).key, timeout=10)
        await purge(docket)
        after = await docket.add(job)()
        final = await docket.wait(after.key, timeout=15)
    assert final.result == "after the purge"


async def consumer_names(docket: Docket) -> set[str]:
    consumers = await docket.client.xinfo_consumers(docket.keys.stream, GROUP)
    return {c["name"].decode() if isinstance(c["name"], bytes) else c["name"] for c in consumers}


async def test_consumers_of_stopped_and_dead_workers_do_not_pile_up(docket: Docket) -> None:
    async def quick() -> str:
        return "done"

    docket.register(quick)
    # A worker that stops gracefully takes its consumer out of the group.
    stopped = Worker(docket)
    async with running(stopped):
        await docket.wait((await docket.add(quick)()).key, timeout=10)
        assert stopped.name in await consumer_names(docket)
    assert stopped.name not in await consumer_names(docket)

    # A killed worker's consumer stays; once idle long enough, a live worker removes it —
    # but never one that still holds a task (that would lose it).
    await docket.client.xgroup_createconsumer(docket.keys.stream, GROUP, "killed-idle")
    holder = await docket.add(quick)()
    await docket.client.xreadgroup(GROUP, "killed-holding", {docket.keys.stream: ">"}, count=1)
    sweeper = Worker(docket, redelivery_timeout=60, forget_consumers_after=0.05)
    await asyncio.sleep(0.1)  # both are now idle longer than forget_consumers_after
    await sweeper._forget_consumers()
    names = await consumer_names(docket)
    assert "killed-idle" not in names
    assert "killed-holding" in names  # it still holds `holder`'s entry
    pending = await docket.client.xpending(docket.keys.stream, GROUP)
    assert pending["pending"] == 1
    assert (await docket.get(holder.key)) is not None


async def test_a_started_worker_is_listed_before_it_claims_anything(docket: Docket) -> None:
    """`mcp-tasks status` and the dashboard list a worker from its start (an empty
    XREADGROUP creates no consumer), and no longer once it has stopped gracefully."""
    async with running(Worker(docket, name="listed-at-once")):
        assert "listed-at-once" in [w.name for w in (await snapshot(docket)).workers]
    assert "listed-at-once" not in [w.name for w in (await snapshot(docket)).workers]
