"""Cluster-wide statistics and the recent-tasks list, kept by the scripts — memory://, Redis
and a Redis Cluster."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from mcp_tasks.engine import Docket, Retry, Status, Worker, current_task
from mcp_tasks.engine.inspection import newer_than, recent, summaries
from mcp_tasks.engine.keys import GROUP, RUN_BUCKETS_MS
from mcp_tasks.engine.scripts import source
from mcp_tasks.engine.stats import read_stats
from mcp_tasks.engine.worker import cancel_and_wait
from tests.helpers.dockets import purge, running

pytestmark = pytest.mark.anyio
LUA = Path(__file__).resolve().parents[2] / "mcp_tasks" / "engine" / "lua"


def test_the_scripts_and_python_agree_on_the_histogram_buckets() -> None:
    common = source("finish")  # what Redis runs: the generated preamble included
    found = re.search(r"RUN_BUCKETS_MS = \{([^}]*)\}", common)
    assert found is not None
    assert tuple(int(b) for b in found.group(1).replace("\n", " ").split(",")) == RUN_BUCKETS_MS


async def test_outcomes_are_counted_by_label(docket: Docket) -> None:
    release = asyncio.Event()
    flaky_runs = 0

    async def ok(seconds: float = 0) -> str:
        await asyncio.sleep(seconds)
        return "ok"

    async def broken() -> str:
        raise ValueError("broken")

    async def flaky() -> str:
        nonlocal flaky_runs
        flaky_runs += 1
        if flaky_runs == 1:
            raise ValueError("first time unlucky")
        return "second time lucky"

    async def error_result() -> str:
        current_task().mark_errored()
        return "an error, reported as a result"

    async def blocked() -> str:
        await release.wait()
        return "released"

    docket.register(ok, name="ok")
    docket.register(broken, name="broken")
    docket.register(flaky, name="flaky", retry=Retry(attempts=2, delay=0))
    docket.register(error_result, name="error_result")
    docket.register(blocked, name="blocked")

    done = [await docket.add(ok)() for _ in range(3)]
    done.append(await docket.add(ok, label="tool:slow")(0.06))
    done.append(await docket.add(broken)())
    done.append(await docket.add(flaky)())
    errored = await docket.add(error_result)()
    done.append(errored)
    never_run = await docket.add(ok, label="tool:cancelled")()
    assert await docket.cancel(never_run.key)
    stuck = await docket.add(blocked)()
    later = await docket.add(ok, delay=3600)()

    async with running(Worker(docket)):
        for execution in done:
            await docket.wait(execution.key, timeout=10)
        async for state in docket.watch(stuck.key):
            if state.status is Status.RUNNING:
                break
        running_now = await read_stats(docket)
        assert await docket.cancel(stuck.key)
        await docket.wait(stuck.key, timeout=10)

    assert (running_now.running, running_now.scheduled, running_now.queued) == (1, 1, 0)
    stats = await read_stats(docket)
    assert stats.counters["created"] == {
        "ok": 4,  # the deferred one too
        "tool:slow": 1,
        "broken": 1,
        "flaky": 1,
        "error_result": 1,
        "tool:cancelled": 1,
        "blocked": 1,
    }
    assert stats.counters["completed"] == {"ok": 3, "tool:slow": 1, "flaky": 1}
    assert stats.counters["failed"] == {"broken": 1, "error_result": 1}
    assert stats.counters["retried"] == {"flaky": 1}
    assert stats.counters["cancelled"] == {"tool:cancelled": 1, "blocked": 1}
    assert stats.counters["redelivered"] == {}
    assert (stats.queued, stats.running, stats.scheduled) == (0, 0, 1)
    # Every run that ended has a run time: both attempts of flaky, and the cancelled run.
    runs = {label: times.count for label, times in stats.run_times.items()}
    assert runs == {
        "ok": 3,
        "tool:slow": 1,
        "broken": 1,
        "flaky": 2,
        "error_result": 1,
        "blocked": 1,
    }
    slow = stats.run_times["tool:slow"]
    assert 60 <= slow.sum_ms < 60_000
    bucket = next(i for i, bound in enumerate(RUN_BUCKETS_MS) if slow.sum_ms <= bound)
    assert slow.buckets[bucket] == 1 and sum(slow.buckets) == 1
    assert (await docket.get(errored.key)).status is Status.COMPLETED  # type: ignore[union-attr]
    (summary,) = await summaries(docket, [errored.key])
    assert summary.errored and summary.status is Status.COMPLETED
    assert later.status is Status.SCHEDULED


async def test_a_task_taken_over_from_a_dead_worker_counts_as_redelivered(
    docket: Docket,
) -> None:
    async def job() -> int:
        if current_task().attempt == 1:
            await asyncio.sleep(3600)  # the first worker "dies" while running it
        return current_task().attempt

    docket.register(job, name="job")
    execution = await docket.add(job)()
    ghost = Worker(docket, name="ghost", redelivery_timeout=0.2)
    reply = await docket.client.xreadgroup(GROUP, "ghost", {docket.keys.stream: ">"}, count=1)
    entries = reply[0][1]  # type: ignore[index]
    await ghost._start(entries)  # running on the ghost, which never finishes or renews it
    assert (await docket.get(execution.key)).status is Status.RUNNING  # type: ignore[union-attr]
    try:
        async with running(Worker(docket, redelivery_timeout=0.2)):
            final = await docket.wait(execution.key, timeout=10)
    finally:
        for run in ghost._runs.values():
            if run.task is not None:
                await cancel_and_wait(run.task)
    assert final.status is Status.COMPLETED and final.result == 2
    stats = await read_stats(docket)
    assert stats.counters["redelivered"] == {"job": 1}
    assert stats.counters["completed"] == {"job": 1}


async def test_recent_lists_the_latest_tasks_without_their_payloads(docket: Docket) -> None:
    async def secret(password: str) -> str:
        await current_task().report_progress(1, 4, "a quarter")
        return f"the result of {password}"

    docket.register(secret, name="secret")
    first = await docket.add(secret, label="vault", meta={"owner": "alice"})("hunter2")
    second = await docket.add(secret)("swordfish")
    async with running(Worker(docket)):
        await docket.wait(first.key, timeout=10)
        await docket.wait(second.key, timeout=10)
    listed = await recent(docket, limit=10)
    # Newest first; tasks added in the same millisecond come in their keys' order.
    assert listed == sorted(listed, key=lambda s: (s.created_at, s.key), reverse=True)
    by_key = {s.key: s for s in listed}
    assert set(by_key) == {first.key, second.key}
    assert (by_key[first.key].label, by_key[second.key].label) == ("vault", "secret")
    done = by_key[second.key]
    assert done.status is Status.COMPLETED and done.attempt == 1 and done.worker
    assert done.progress is not None and done.progress.message == "a quarter"
    assert done.started_at is not None and done.finished_at is not None
    dumped = " ".join(s.model_dump_json() for s in listed)
    for leak in ("hunter2", "swordfish", "the result of", "alice"):
        assert leak not in dumped
    oldest_ms = round(min(s.created_at for s in listed).timestamp() * 1000)
    newest_ms = round(max(s.created_at for s in listed).timestamp() * 1000)
    assert set(await newer_than(docket, oldest_ms - 1)) == {first.key, second.key}
    assert await newer_than(docket, newest_ms) == []


async def test_the_recent_list_is_trimmed(url: str, docket_name: str) -> None:
    async def noop(n: int) -> int:
        return n

    async with Docket(name=docket_name, url=url, keep_recent=10) as docket:
        docket.register(noop, name="noop")
        batch = await docket.add_many(noop, [(n,) for n in range(200)])
        assert await docket.client.zcard(docket.keys.recent) == 10
        # One batch shares one creation time; among equals the order is the keys' order.
        newest = [s.key for s in await recent(docket, limit=20)]
        assert newest == sorted((e.key for e in batch), reverse=True)[:10]
        for n in range(70):  # one at a time, trimmed every 64 adds of a label
            await docket.add(noop)(n)
        assert 10 <= await docket.client.zcard(docket.keys.recent) <= 10 + 64
        stats = await read_stats(docket)
        assert stats.counters["created"] == {"noop": 270}
        assert stats.queued == 270
    await purge(url, docket_name)
