"""An ended task's record as Redis keeps it: compact, and read back whole.

When a task ends, its run hash is written anew with its short values only, and its long ones
(result, error, metadata, a long progress message) go to a key beside it (``settle`` in
``lua/common.lua``), so Redis keeps the hash in its compact listpack encoding. What a user
relies on: every read (``get``, ``wait``, ``list_index``, the dashboard's summaries and error
type) sees the whole record as before, whatever the values hold; both keys live as long; a
replaced task never shows its predecessor's values; on memory://, Redis and Redis Cluster.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from mcp_tasks.engine import Docket, Status, Worker, current_task
from mcp_tasks.engine.clock import now_ms
from mcp_tasks.engine.inspection import error_type, summaries
from mcp_tasks.engine.keys import COMPACT_VALUE_BYTES
from mcp_tasks.engine.scripts import FinishRow
from tests.helpers.dockets import running

pytestmark = pytest.mark.anyio

# What a netstring reader could trip on: its own separators, a quote, a line break, UTF-8.
TRICKY = 'a:1,"b"\n2:, 3:x,, — ünïcødé ✓ ' * 8
LONG_MESSAGE = "step 9 of 10: " + "x" * 80


async def talkative(text: str) -> dict[str, str]:
    await current_task().report_progress(9, 10, LONG_MESSAGE)
    return {"echo": text, "more": TRICKY}


async def broken(text: str) -> None:
    raise RuntimeError(f"it broke on {text}")


async def test_an_ended_task_reads_back_whole_from_a_compact_record(
    url: str, docket_name: str, purged: None
) -> None:
    meta = {"tool": "talkative", "owner": "user:" + "o" * 90}
    async with Docket(name=docket_name, url=url, result_ttl=timedelta(minutes=5)) as docket:
        docket.register(talkative)
        docket.register(broken)
        done = await docket.add(talkative, meta=meta, index="mine")(TRICKY)
        failed = await docket.add(broken, meta=meta, index="mine")(TRICKY)
        async with running(Worker(docket)):
            completed = await docket.wait(done.key, timeout=10)
            errored = await docket.wait(failed.key, timeout=10)

        assert completed.status is Status.COMPLETED
        assert completed.result == {"echo": TRICKY, "more": TRICKY}
        assert completed.meta == meta
        assert completed.progress is not None and completed.progress.message == LONG_MESSAGE
        assert errored.status is Status.FAILED and errored.error is not None
        assert errored.error.type == "RuntimeError" and TRICKY in errored.error.message
        assert await docket.get(done.key) == completed
        listed, _ = await docket.list_index("mine")
        # (Tasks created in the same millisecond are listed in their keys' order.)
        by_key = {state.key: state for state in listed}
        assert by_key == {done.key: completed, failed.key: errored}
        (summary, _) = await summaries(docket, [done.key, failed.key])
        assert summary.progress == completed.progress
        assert await error_type(docket, failed.key) == "RuntimeError"

        for key in (done.key, failed.key):
            run, large = docket.keys.run(key), docket.keys.large(key)
            fields = await docket.client.hgetall(run)
            longest = max(len(part) for pair in fields.items() for part in pair)
            assert longest <= COMPACT_VALUE_BYTES, fields
            assert b"call" not in fields  # never shown once it has ended
            # The long values live exactly as long as the record (and a little longer, so
            # a reader who finds the record finds them).
            run_ttl, large_ttl = await docket.client.pttl(run), await docket.client.pttl(large)
            assert 0 < run_ttl <= 300_000 and run_ttl <= large_ttl <= run_ttl + 61_000
            if not docket.backend.is_memory:  # Redis's encoding, which fakeredis does not model
                assert await docket.client.object("encoding", run) == b"listpack"


async def test_a_short_outcome_needs_no_large_key(docket: Docket) -> None:
    async def small() -> int:
        return 7

    docket.register(small)
    execution = await docket.add(small)()
    async with running(Worker(docket)):
        final = await docket.wait(execution.key, timeout=10)
    assert final.result == 7
    assert not await docket.client.exists(docket.keys.large(execution.key))


async def test_a_replaced_task_does_not_show_its_predecessors_values(docket: Docket) -> None:
    docket.register(talkative)
    first = await docket.add(talkative, key="again")("first " + TRICKY)
    async with running(Worker(docket)):
        await docket.wait(first.key, timeout=10)
    assert await docket.client.exists(docket.keys.large("again"))
    second = await docket.add(talkative, key="again")("second")
    assert second.created and second.status is Status.QUEUED
    assert not await docket.client.exists(docket.keys.large("again"))
    state = await docket.get("again")
    assert state is not None and state.status is Status.QUEUED
    assert state.result is None and state.progress is None


async def test_a_cancelled_task_is_settled_too(docket: Docket) -> None:
    docket.register(talkative)
    later = await docket.add(talkative, delay=3600, meta={"note": "n" * 100})(TRICKY)
    assert await docket.cancel(later.key)
    state = await docket.get(later.key)
    assert state is not None and state.status is Status.CANCELLED
    assert state.meta == {"note": "n" * 100}
    fields = await docket.client.hgetall(docket.keys.run(later.key))
    assert max(len(value) for value in fields.values()) <= COMPACT_VALUE_BYTES


async def test_a_late_finish_of_an_ended_task_keeps_its_moved_values(docket: Docket) -> None:
    """A worker that lost its task (it ended elsewhere, say cancelled) may still report an
    outcome: the record is settled again and must not drop what the first settle moved."""
    docket.register(talkative)
    later = await docket.add(talkative, delay=3600, meta={"note": "n" * 100})(TRICKY)
    assert await docket.cancel(later.key)
    row = FinishRow(
        sid="0-1",
        key=later.key,
        outcome="failed",
        data='{"type":"Late","message":"' + "m" * 80 + '"}',
        when_ms=0,
        limit=None,
        ttl="",
        counter="",
        label="talkative",
        started_ms="",
    )
    await docket.scripts.finish(now_ms(), docket.result_ttl_ms, [row])
    state = await docket.get(later.key)
    assert state is not None and state.meta == {"note": "n" * 100}
    assert state.error is not None and state.error.message == "m" * 80


async def test_a_new_task_never_shows_an_expired_namesakes_large_values(docket: Docket) -> None:
    """A large key outlives its run hash by a minute; a task added under the same key in
    that minute must not be read with the old task's result or metadata."""
    docket.register(talkative)
    old = await docket.add(talkative, key="same", meta={"who": "o" * 100})(TRICKY)
    async with running(Worker(docket)):
        await docket.wait(old.key, timeout=10)
    await docket.client.delete(docket.keys.run("same"))  # its hash expired, its large key not
    await docket.add(talkative, key="same", meta={"who": "new"}, delay=3600)("again")
    state = await docket.get("same")
    assert state is not None and state.status is Status.SCHEDULED
    assert state.result is None and state.meta == {"who": "new"}
    assert await docket.cancel("same")  # settled: the stale large key is replaced
    state = await docket.get("same")
    assert state is not None and state.meta == {"who": "new"} and state.result is None


async def test_summaries_show_long_labels_and_what_was_written_after_the_end(
    docket: Docket,
) -> None:
    docket.register(talkative)
    label = "a-rather-long-label-" + "l" * 80
    execution = await docket.add(talkative, label=label)(TRICKY)
    async with running(Worker(docket)):
        await docket.wait(execution.key, timeout=10)
    (summary,) = await summaries(docket, [execution.key])
    assert summary.label == label
    assert summary.progress is not None and summary.progress.message == LONG_MESSAGE
    # A write to the hash after the task ended (a late report) wins over the moved value.
    later = '{"current":10,"total":10,"message":"late"}'
    await docket.client.hset(docket.keys.run(execution.key), "progress", later)
    state = await docket.get(execution.key)
    assert state is not None and state.progress is not None
    assert state.progress.message == "late"
