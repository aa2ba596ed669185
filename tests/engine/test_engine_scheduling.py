"""Scheduling, dedup keys, retries, timeouts and perpetual tasks — on memory:// and Redis."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from mcp_tasks.engine import Docket, Perpetual, Retry, Status, Worker, current_task
from tests.helpers.dockets import running

pytestmark = pytest.mark.anyio


async def test_delayed_task_waits_until_due(docket: Docket) -> None:
    started: list[float] = []

    async def later() -> None:
        started.append(time.time())

    docket.register(later)
    added_at = time.time()
    execution = await docket.add(later, delay=0.3)()
    assert execution.status is Status.SCHEDULED
    state = await docket.get(execution.key)
    assert state is not None and state.status is Status.SCHEDULED and state.when is not None
    async with running(Worker(docket)):
        final = await docket.wait(execution.key, timeout=10)
    assert final.status is Status.COMPLETED
    assert started[0] - added_at >= 0.29


async def test_when_in_the_past_runs_at_once(docket: Docket) -> None:
    async def now() -> str:
        return "ran"

    docket.register(now)
    execution = await docket.add(now, when=datetime.now(UTC) - timedelta(hours=1))()
    assert execution.status is Status.QUEUED
    async with running(Worker(docket)):
        assert (await docket.wait(execution.key, timeout=10)).result == "ran"


async def test_due_tasks_move_to_the_stream_exactly_once_under_racing_workers(
    docket: Docket,
) -> None:
    runs: Counter[int] = Counter()

    async def once(i: int) -> None:
        runs[i] += 1

    docket.register(once)
    when = datetime.now(UTC) + timedelta(milliseconds=300)
    keys = [(await docket.add(once, when=when)(i)).key for i in range(60)]
    workers = [Worker(docket, concurrency=5) for _ in range(3)]
    async with running(*workers):
        for key in keys:
            assert (await docket.wait(key, timeout=10)).status is Status.COMPLETED
    assert runs == Counter(range(60))


async def test_dedup_key_returns_the_existing_task(docket: Docket) -> None:
    ran: list[int] = []

    async def report(n: int) -> int:
        ran.append(n)
        return n

    docket.register(report)
    first = await docket.add(report, key="nightly-report", delay=60)(1)
    second = await docket.add(report, key="nightly-report")(2)
    assert first.created and not second.created
    assert second.key == "nightly-report" and second.status is Status.SCHEDULED
    state = await docket.get("nightly-report")
    assert state is not None and state.status is Status.SCHEDULED  # still the first, deferred

    replaced = await docket.add(report, key="nightly-report", replace=True)(3)
    assert replaced.created and replaced.status is Status.QUEUED
    async with running(Worker(docket)):
        final = await docket.wait("nightly-report", timeout=10)
    assert final.result == 3 and ran == [3]  # the replaced task never ran

    # Once finished, the key is free for a new task.
    again = await docket.add(report, key="nightly-report")(4)
    assert again.created
    async with running(Worker(docket)):
        assert (await docket.wait("nightly-report", timeout=10)).result == 4


async def test_replace_reschedules_a_queued_task_and_the_old_entry_never_runs(
    docket: Docket,
) -> None:
    ran: list[int] = []

    async def job(n: int) -> None:
        ran.append(n)

    docket.register(job)
    await docket.add(job, key="k")(1)  # queued now
    await docket.add(job, key="k", replace=True, delay=0.2)(2)  # pushed back
    async with running(Worker(docket)):
        final = await docket.wait("k", timeout=10)
    assert final.status is Status.COMPLETED and ran == [2]


async def test_retries_until_success(docket: Docket) -> None:
    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(current_task().attempt)
        if len(attempts) < 3:
            raise ConnectionResetError("try again")
        return "ok"

    docket.register(flaky, retry=Retry(attempts=3, delay=0.05))
    execution = await docket.add(flaky)()
    async with running(Worker(docket)):
        final = await docket.wait(execution.key, timeout=10)
    assert final.status is Status.COMPLETED and final.result == "ok"
    assert attempts == [1, 2, 3] and final.attempt == 3


async def test_retries_give_up_after_max_attempts(docket: Docket) -> None:
    seen: list[float] = []

    async def broken() -> None:
        seen.append(time.monotonic())
        raise RuntimeError("always")

    docket.register(broken, retry=Retry(attempts=3, delay=0.05, backoff=2))
    execution = await docket.add(broken)()
    async with running(Worker(docket)):
        final = await docket.wait(execution.key, timeout=10)
    assert final.status is Status.FAILED and final.attempt == 3
    assert final.error is not None and final.error.message == "always"
    assert len(seen) == 3
    assert seen[1] - seen[0] >= 0.045 and seen[2] - seen[1] >= 0.095  # 50 ms, then 100 ms


def test_backoff_schedule() -> None:
    fixed = Retry(attempts=5, delay=2)
    assert [fixed.delay_before(a) for a in (1, 2, 3)] == [2, 2, 2]
    exponential = Retry(attempts=10, delay=1, backoff=2, max_delay=5)
    assert [exponential.delay_before(a) for a in (1, 2, 3, 4)] == [1, 2, 4, 5]
    with pytest.raises(ValueError):
        Retry(attempts=0)
    with pytest.raises(ValueError):
        Retry(delay=-1)


async def test_timeout_fails_a_slow_task(docket: Docket) -> None:
    async def slow() -> None:
        await asyncio.sleep(30)

    docket.register(slow, timeout=0.1)
    execution = await docket.add(slow)()
    async with running(Worker(docket)):
        final = await docket.wait(execution.key, timeout=10)
    assert final.status is Status.FAILED
    assert final.error is not None and final.error.type == "TimeoutError"
    assert "timeout of 0.1s" in final.error.message


async def test_timed_out_task_is_retried(docket: Docket) -> None:
    async def sometimes_slow() -> str:
        if current_task().attempt == 1:
            await asyncio.sleep(30)
        return "second time lucky"

    docket.register(sometimes_slow, timeout=0.1, retry=Retry(attempts=2, delay=0))
    execution = await docket.add(sometimes_slow)()
    async with running(Worker(docket)):
        final = await docket.wait(execution.key, timeout=10)
    assert final.status is Status.COMPLETED and final.attempt == 2


async def test_perpetual_task_runs_once_per_interval_across_three_workers(
    docket: Docket,
) -> None:
    starts: list[float] = []  # wall-clock seconds each run began
    dues: list[float] = []  # the slot each run was due in, as the docket recorded it
    active = 0
    overlaps = 0
    enough = asyncio.Event()

    async def tick() -> None:
        nonlocal active, overlaps
        active += 1
        overlaps += active > 1
        starts.append(time.time())
        record = await docket.get(current_task().key)
        assert record is not None and record.when is not None
        dues.append(record.when.timestamp())
        await asyncio.sleep(0.02)
        active -= 1
        if len(starts) >= 6:
            enough.set()

    interval = 0.2
    function = docket.register(tick, perpetual=Perpetual(every=interval))
    workers = [Worker(docket, concurrency=4) for _ in range(3)]
    async with running(*workers):
        await asyncio.wait_for(enough.wait(), timeout=10)
    assert overlaps == 0
    # Never early: each run starts at or after its slot.
    assert all(start >= due - 0.005 for start, due in zip(starts, dues, strict=True))
    # One run per slot, slots on one grid: consecutive runs are due whole intervals apart,
    # never the same slot twice. A run that starts late (a stalled machine) keeps to the grid
    # and the slots it missed are skipped rather than run in a burst, so a gap of two intervals
    # is allowed; most gaps are exactly one.
    slots = [(b - a) / interval for a, b in itertools.pairwise(dues)]
    assert all(round(n) >= 1 and abs(n - round(n)) < 0.05 for n in slots), slots
    assert sum(round(n) == 1 for n in slots) >= 3, slots
    state = await docket.get(function.name)  # a perpetual task's key is its function's name
    assert state is not None and state.status is Status.SCHEDULED
    # Exactly one instance exists, whichever worker scheduled it.
    assert await docket.scheduled_keys() == [function.name]


def test_perpetual_schedules() -> None:
    now = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    every = Perpetual(every=timedelta(minutes=1))
    assert every.first(now) == now
    previous = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert every.following(previous, now) == datetime(2026, 1, 1, 12, 1, tzinfo=UTC)
    # Missed slots are skipped, not run in a burst.
    long_ago = datetime(2026, 1, 1, 11, 0, 0, tzinfo=UTC)
    assert every.following(long_ago, now) == datetime(2026, 1, 1, 12, 1, tzinfo=UTC)
    cron = Perpetual(cron="*/15 * * * *")
    assert cron.first(now) == datetime(2026, 1, 1, 12, 15, tzinfo=UTC)
    assert cron.following(None, now) == datetime(2026, 1, 1, 12, 15, tzinfo=UTC)
    with pytest.raises(ValueError, match="invalid cron"):
        Perpetual(cron="every tuesday")
    with pytest.raises(ValueError, match="exactly one"):
        Perpetual()
    with pytest.raises(ValueError, match="positive"):
        Perpetual(every=0)


async def test_cron_task_is_scheduled_for_its_next_match(docket: Docket) -> None:
    async def hourly() -> None: ...

    docket.register(hourly, name="hourly", perpetual=Perpetual(cron="0 * * * *"))
    async with running(Worker(docket)):
        state = await docket.get("hourly")
    assert state is not None and state.status is Status.SCHEDULED
    assert state.when is not None and state.when.minute == 0 and state.when > datetime.now(UTC)
