"""The docket's everyday contract: add, run, read, wait, watch — on memory:// and Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from mcp_tasks.engine import (
    Docket,
    IndexPosition,
    SerializationError,
    Status,
    TaskNotFound,
    UnknownFunction,
    Worker,
    current_task,
    events,
)
from tests.helpers.dockets import running

pytestmark = pytest.mark.anyio


async def crunch(n: int, mode: str = "fast") -> dict[str, object]:
    await current_task().report_progress(1, 2, "halfway")
    return {"doubled": n * 2, "mode": mode}


async def test_add_run_and_read_the_result(docket: Docket) -> None:
    docket.register(crunch)
    execution = await docket.add(crunch)(21, mode="slow")
    assert execution.created and execution.status is Status.QUEUED
    queued = await docket.get(execution.key)
    assert queued is not None and queued.status is Status.QUEUED and queued.attempt == 0

    worker = Worker(docket)
    async with running(worker):
        final = await docket.wait(execution.key, timeout=10)

    assert final.status is Status.COMPLETED
    assert final.result == {"doubled": 42, "mode": "slow"}
    assert final.attempt == 1
    assert final.worker == worker.name
    assert final.progress is not None and final.progress.message == "halfway"
    assert final.progress.current == 1 and final.progress.total == 2
    assert final.started_at is not None and final.finished_at is not None
    assert final.created_at <= final.started_at <= final.finished_at


async def test_task_keys_are_unguessable(docket: Docket) -> None:
    docket.register(crunch)
    keys = {(await docket.add(crunch)(1)).key for _ in range(20)}
    assert len(keys) == 20
    assert all(len(k) == 32 and int(k, 16) >= 0 for k in keys)  # 128 bits, hex


async def test_watch_pushes_every_change_until_terminal(docket: Docket) -> None:
    release = asyncio.Event()

    async def stepwise() -> str:
        ctx = current_task()
        await ctx.report_progress(1, 3, "one")
        await release.wait()
        await ctx.report_progress(2, 3, "two")
        return "done"

    docket.register(stepwise)
    execution = await docket.add(stepwise)()
    watching = docket.watch(execution.key)
    first = await anext(watching)  # before any worker runs: the task is still queued
    seen: list[tuple[Status, str | None]] = [(first.status, None)]
    async with running(Worker(docket)):
        async for state in watching:
            seen.append((state.status, state.progress.message if state.progress else None))
            if state.progress and state.progress.message == "one":
                release.set()
    assert first.status is Status.QUEUED and first.progress is None
    assert (Status.RUNNING, "one") in seen
    assert seen[-1][0] is Status.COMPLETED
    statuses = [s for s, _ in seen]
    assert statuses.index(Status.RUNNING) < statuses.index(Status.COMPLETED)


async def test_a_change_nobody_announced_reaches_a_waiter_after_silence(
    docket: Docket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pub/sub delivers at most once: a writer killed before its PUBLISH (a held script under
    # min_replicas) must not leave a waiter hanging. A waiter re-reads after silence.
    monkeypatch.setattr(events, "RECHECK_SECONDS", 0.2)
    docket.register(crunch)
    task = await docket.add(crunch, delay=600)(1)
    waiter = asyncio.create_task(docket.wait(task.key, timeout=10))
    await asyncio.sleep(0.05)  # let it subscribe and read the first state
    await docket.client.hset(docket.keys.run(task.key), "status", "cancelled")  # no event
    final = await waiter
    assert final.status is Status.CANCELLED
    await docket.client.zrem(docket.keys.scheduled, task.key)


async def test_failed_task_records_the_error(docket: Docket) -> None:
    async def explode() -> None:
        raise ValueError("bad input: 7")

    docket.register(explode)
    execution = await docket.add(explode)()
    async with running(Worker(docket)):
        final = await docket.wait(execution.key, timeout=10)
    assert final.status is Status.FAILED
    assert final.error is not None
    assert final.error.type == "ValueError" and final.error.message == "bad input: 7"
    assert final.error.traceback and "explode" in final.error.traceback
    assert final.result is None


async def test_an_ended_task_keeps_no_arguments(docket: Docket) -> None:
    """A finished record is kept for the result's TTL: the call's arguments (often its
    largest value) leave it when the task ends, however it ends."""

    async def explode(blob: str) -> None:
        raise ValueError("no")

    async def wait_forever(blob: str) -> None:
        await asyncio.Event().wait()

    docket.register(crunch)
    docket.register(explode)
    docket.register(wait_forever)
    blob = "x" * 500
    done = await docket.add(crunch)(1, mode=blob)
    failed = await docket.add(explode)(blob)
    later = await docket.add(wait_forever, when=datetime.now(UTC) + timedelta(hours=1))(blob)
    assert await docket.client.hexists(docket.keys.run(later.key), "call")  # needed until then
    assert await docket.cancel(later.key)
    async with running(Worker(docket)):
        for execution in (done, failed):
            await docket.wait(execution.key, timeout=10)
    for execution, status in (
        (done, Status.COMPLETED),
        (failed, Status.FAILED),
        (later, Status.CANCELLED),
    ):
        run = docket.keys.run(execution.key)
        fields = {k.decode() for k in await docket.client.hkeys(run)}
        assert "call" not in fields and "sid" not in fields, (status, fields)
        state = await docket.get(execution.key)
        assert state is not None and state.status is status


async def test_terminal_state_expires_after_the_result_ttl(
    url: str, docket_name: str, purged: None
) -> None:
    async with Docket(name=docket_name, url=url, result_ttl=timedelta(seconds=30)) as docket:
        docket.register(crunch)
        execution = await docket.add(crunch)(1)
        async with running(Worker(docket)):
            await docket.wait(execution.key, timeout=10)
        ttl = await docket.client.pttl(docket.keys.run(execution.key))
        assert 0 < ttl <= 30_000


async def test_sync_functions_run_in_a_thread(docket: Docket) -> None:
    import threading

    def blocking(n: int) -> str:
        return f"{n}:{threading.current_thread() is threading.main_thread()}"

    docket.register(blocking)
    execution = await docket.add(blocking)(5)
    async with running(Worker(docket)):
        final = await docket.wait(execution.key, timeout=10)
    assert final.result == "5:False"


async def test_arguments_round_trip_as_json_into_annotated_types(docket: Docket) -> None:
    received: list[object] = []

    async def typed(when: datetime, delta: timedelta, tags: set[str]) -> str:
        received.extend([when, delta, tags])
        return when.isoformat()

    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    docket.register(typed)
    execution = await docket.add(typed)(moment, timedelta(seconds=90), {"a", "b"})
    raw = await docket.client.hget(docket.keys.run(execution.key), "call")
    assert raw is not None and b"2026-01-02T03:04:05Z" in raw  # JSON, not pickle
    async with running(Worker(docket)):
        final = await docket.wait(execution.key, timeout=10)
    assert final.status is Status.COMPLETED, final.error
    assert received == [moment, timedelta(seconds=90), {"a", "b"}]


async def test_bad_input_gets_clear_errors(docket: Docket) -> None:
    async def registered(n: int) -> int:
        return n

    async def stranger() -> None: ...

    docket.register(registered)
    with pytest.raises(UnknownFunction, match="not registered"):
        docket.add(stranger)
    with pytest.raises(UnknownFunction, match="not registered"):
        docket.add("no-such-function")
    with pytest.raises(SerializationError, match="not JSON-serializable"):
        await docket.add(registered)(object())
    with pytest.raises(TypeError, match="bad arguments for task"):
        await docket.add(registered)(1, 2)
    with pytest.raises(ValueError, match="negative"):
        docket.add(registered, delay=-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        docket.add(registered, when=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="line breaks"):
        docket.add(registered, key="a\nb")
    with pytest.raises(TaskNotFound):
        await docket.wait("no-such-task", timeout=1)
    with pytest.raises(TaskNotFound):
        await docket.cancel("no-such-task")
    assert await docket.get("no-such-task") is None


async def test_unserializable_result_fails_the_task_clearly(docket: Docket) -> None:
    async def returns_a_socket() -> object:
        return object()

    docket.register(returns_a_socket)
    execution = await docket.add(returns_a_socket)()
    async with running(Worker(docket)):
        final = await docket.wait(execution.key, timeout=10)
    assert final.status is Status.FAILED
    assert final.error is not None and final.error.type == "SerializationError"


async def test_task_of_a_function_the_worker_lacks_fails_clearly(
    url: str, docket_name: str, purged: None
) -> None:
    async def only_on_the_client() -> None: ...

    async with (
        Docket(name=docket_name, url=url) as client,
        Docket(name=docket_name, url=url) as worker_side,
    ):
        client.register(only_on_the_client)
        execution = await client.add(only_on_the_client)()
        async with running(Worker(worker_side)):
            final = await client.wait(execution.key, timeout=10)
    assert final.status is Status.FAILED
    assert final.error is not None and "not registered" in final.error.message


@pytest.mark.parametrize(
    "bad",
    ["", "http://localhost", "redis://", "redis://host:notaport", "redis://h/abc", "memory://x/y"],
)
def test_malformed_urls_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        Docket(name="x", url=bad)


def test_bad_docket_names_are_rejected() -> None:
    for bad in ["", "has space", "brace{", "x" * 101]:
        with pytest.raises(ValueError, match="invalid docket name"):
            Docket(name=bad)


async def test_memory_urls_are_isolated_stores(docket_name: str) -> None:
    async def noop() -> None: ...

    async with (
        Docket(name=docket_name, url="memory://iso-a") as a,
        Docket(name=docket_name, url="memory://iso-b") as b,
        Docket(name=docket_name, url="memory://iso-a") as a2,
    ):
        a.register(noop)
        execution = await a.add(noop)()
        assert await a2.get(execution.key) is not None  # same URL, same store
        assert await b.get(execution.key) is None  # another URL sees nothing


async def test_every_key_shares_the_docket_hash_tag(docket: Docket) -> None:
    async def limited(customer: str) -> None: ...

    from mcp_tasks.engine import ConcurrencyLimit

    docket.register(limited, concurrency=ConcurrencyLimit(1, argument="customer"))
    first = await docket.add(limited, delay=60)("acme")
    await docket.add(limited)("acme")
    async with running(Worker(docket)):
        await docket.wait((await docket.add(limited)("acme")).key, timeout=10)
    keys = [k.decode() async for k in docket.client.scan_iter(match="*", count=1000)]
    mine = [k for k in keys if docket.name in k]
    assert any(":stream" in k for k in mine) and any(":scheduled" in k for k in mine)
    assert any(first.key in k for k in mine)
    assert all(k.startswith(f"mcp-tasks:{{{docket.name}}}:") for k in mine), mine


async def test_a_task_can_keep_its_state_longer_or_shorter_than_the_default(
    docket: Docket,
) -> None:
    docket.register(crunch)
    short = await docket.add(crunch, ttl=5)(1)
    long = await docket.add(crunch, ttl=timedelta(days=2))(2)
    cancelled = await docket.add(crunch, ttl=7, delay=60)(3)
    await docket.cancel(cancelled.key)
    async with running(Worker(docket)):
        await docket.wait(short.key, timeout=10)
        await docket.wait(long.key, timeout=10)
    assert 0 < await docket.client.pttl(docket.keys.run(short.key)) <= 5_000
    assert await docket.client.pttl(docket.keys.run(long.key)) > 86_400_000
    assert 0 < await docket.client.pttl(docket.keys.run(cancelled.key)) <= 7_000
    with pytest.raises(ValueError, match="ttl must be positive"):
        docket.add(crunch, ttl=0)


async def test_a_running_task_asks_and_any_process_answers(
    url: str, docket_name: str, purged: None
) -> None:
    async def confirm(path: str) -> str:
        answer = await current_task().ask({"question": f"delete {path}?"})
        return f"{path}: {answer['reply']}"

    async with (
        Docket(name=docket_name, url=url) as worker_side,
        Docket(name=docket_name, url=url) as client,
    ):
        worker_side.register(confirm)
        client.register(confirm)
        execution = await client.add(confirm)("/tmp/x")
        async with running(Worker(worker_side)):
            async for state in client.watch(execution.key):
                if state.questions:
                    break
            assert state.status is Status.RUNNING
            ((question_id, question),) = state.questions.items()
            assert question == {"question": "delete /tmp/x?"}
            assert await client.answer(execution.key, {"no-such-question": 1}) == 0
            assert await client.answer(execution.key, {question_id: {"reply": "yes"}}) == 1
            assert await client.answer(execution.key, {question_id: {"reply": "no"}}) == 0
            final = await client.wait(execution.key, timeout=10)
    assert final.result == "/tmp/x: yes" and final.questions == {}


async def listed(
    docket: Docket, tag: str, limit: int, after: IndexPosition | None = None
) -> list[str]:
    """Every task key of the index ``tag``, page by page from ``after``."""
    keys: list[str] = []
    while True:
        page, after = await docket.list_index(tag, after, limit)
        keys += [state.key for state in page]
        if after is None:
            return keys


async def test_list_index_pages_through_a_tag_and_forgets_expired_tasks(docket: Docket) -> None:
    docket.register(crunch)
    keys = [(await docket.add(crunch, index="alice")(n)).key for n in range(5)]
    await docket.add(crunch, index="bob")(99)
    for gone in (keys[1], keys[2]):  # as if their state had expired
        await docket.client.delete(docket.keys.run(gone))

    seen = await listed(docket, "alice", 2)
    # Every live task once (those added in the same millisecond may come in any order).
    assert sorted(seen) == sorted([keys[0], keys[3], keys[4]]) and len(seen) == 3
    remaining = await docket.client.zrange(docket.keys.index("alice"), 0, -1)
    assert sorted(k.decode() for k in remaining) == sorted([keys[0], keys[3], keys[4]])


async def test_paging_an_index_misses_no_task_when_expired_ones_leave_it(
    docket: Docket,
) -> None:
    """A page ends at a task, not a count: expired entries leaving the index (as a new task
    joins it) between two pages must not push a live task into the page already read."""
    docket.register(crunch)
    keys = [f"k{n}" for n in range(6)]
    for key in keys:
        await docket.add(crunch, key=key, index="alice")(1)
    first, after = await docket.list_index("alice", None, 2)
    assert [state.key for state in first] == ["k0", "k1"] and after is not None
    await docket.client.delete(docket.keys.run("k0"))  # as if its state had expired
    await docket.add(crunch, key="k6", index="alice")(1)  # joining drops k0 from the index
    assert b"k0" not in await docket.client.zrange(docket.keys.index("alice"), 0, -1)
    assert await listed(docket, "alice", 2, after) == ["k2", "k3", "k4", "k5", "k6"]


async def test_a_page_boundary_inside_one_millisecond_splits_it_exactly(docket: Docket) -> None:
    """Tasks created in the same millisecond share a score: a page ending among them must
    resume right after the last one listed, neither repeating nor skipping any."""
    docket.register(crunch)
    keys = [f"t{n:02d}" for n in range(12)]
    await docket.client.zadd(docket.keys.index("bob"), {key: 1_000 for key in keys})
    for key in keys:
        await docket.add(crunch, key=key)(1)  # a record for each, listed only by the zadd
    assert await listed(docket, "bob", 5) == keys


async def test_an_index_nobody_lists_stays_near_its_live_tasks(docket: Docket) -> None:
    """A principal creating tasks forever (a 2026-07-28 client never lists) must not grow its
    index forever: adding to it drops tasks whose state expired, even behind long-lived ones."""
    docket.register(crunch)
    for n in range(5):  # long-lived tasks at the head of the index
        await docket.add(crunch, index="alice")(n)
    previous: list[str] = []
    for _ in range(20):
        for gone in previous:  # the last round's tasks expire
            await docket.client.delete(docket.keys.run(gone))
        previous = [(await docket.add(crunch, index="alice")(n)).key for n in range(50)]
    size = await docket.client.zcard(docket.keys.index("alice"))
    # 1,005 tasks joined, 55 are live; without pruning all 1,005 would stay. A simulation of
    # this sampling puts the size at 55-80; twice the live tasks leaves room for chance.
    assert 55 <= size <= 110
    live = {k.decode() for k in await docket.client.zrange(docket.keys.index("alice"), 0, -1)}
    assert set(previous) <= live  # a live task is never dropped


async def test_lone_surrogates_round_trip_through_errors_and_progress(docket: Docket) -> None:
    """A lone surrogate is valid JSON and a valid ``str``: an argument may carry one into
    an error message or a progress message, which must be stored and read back as is
    (pydantic's own JSON refuses them; a failed run must still be recorded)."""

    async def quoting(value: str) -> None:
        await current_task().report_progress(1, 2, f"at {value}")
        raise ValueError(f"bad value {value}")

    docket.register(quoting)
    execution = await docket.add(quoting)("a\ud800b")
    async with running(Worker(docket)):
        final = await docket.wait(execution.key, timeout=10)
    assert final.status is Status.FAILED
    assert final.error is not None and final.error.message == "bad value a\ud800b"
    assert final.progress is not None and final.progress.message == "at a\ud800b"
