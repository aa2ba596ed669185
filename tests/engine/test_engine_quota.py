"""Quotas: admission control per tag (unfinished tasks, creation rate), across processes."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from mcp_tasks.engine import Docket, Quota, QuotaExceeded, Status, Worker
from tests.helpers.dockets import running

pytestmark = pytest.mark.anyio


async def test_unfinished_cap_refuses_then_admits_once_a_task_finishes(docket: Docket) -> None:
    gate = asyncio.Event()

    async def held() -> str:
        await gate.wait()
        return "done"

    docket.register(held)
    alice = Quota("alice", max_unfinished=2)
    first = await docket.add(held, quota=alice)()
    second = await docket.add(held, quota=alice)()
    with pytest.raises(QuotaExceeded, match="at most 2 unfinished tasks") as refused:
        await docket.add(held, quota=alice)()
    assert refused.value.reason == "unfinished" and refused.value.tag == "alice"
    # The refused task was never stored; another tag has its own quota.
    await docket.add(held, quota=Quota("bob", max_unfinished=1))()

    # Cancelling one frees its place at once.
    await docket.cancel(first.key)
    third = await docket.add(held, quota=alice)()
    with pytest.raises(QuotaExceeded):
        await docket.add(held, quota=alice)()

    # Finishing frees places too.
    async with running(Worker(docket)):
        gate.set()
        for execution in (second, third):
            assert (await docket.wait(execution.key, timeout=10)).status is Status.COMPLETED
    await docket.add(held, quota=alice)()
    await docket.add(held, quota=alice)()


async def test_creation_rate_is_capped_per_window(docket: Docket) -> None:
    async def noop() -> None:
        return None

    docket.register(noop)
    quota = Quota("alice", max_per_window=3, window=1.0)
    for _ in range(3):
        await docket.add(noop, quota=quota)()
    with pytest.raises(QuotaExceeded, match="at most 3 tasks may be created") as refused:
        await docket.add(noop, quota=quota)()
    assert refused.value.reason == "rate"
    retry_after = refused.value.retry_after
    assert retry_after is not None and 0 <= retry_after <= 1.0
    await docket.add(noop, quota=Quota("bob", max_per_window=1))()  # others unaffected
    await anyio.sleep(retry_after + 0.05)  # the window the error named has ended
    await docket.add(noop, quota=quota)()


async def test_an_add_that_creates_nothing_is_not_charged(docket: Docket) -> None:
    """Repeating a deduplicated add (a client retrying the same key) or rescheduling a task
    must not use up the caller's quota: only a created task counts."""

    async def noop() -> None:
        return None

    docket.register(noop)
    quota = Quota("alice", max_per_window=2, max_unfinished=2, window=60.0)
    first = await docket.add(noop, key="report", quota=quota)()
    again = await docket.add(noop, key="report", quota=quota)()  # the same task, not a new one
    assert first.created and not again.created
    moved = await docket.add(noop, key="report", replace=True, delay=30, quota=quota)()
    assert moved.created and moved.status is Status.SCHEDULED
    await docket.add(noop, quota=quota)()  # the second task this window: admitted
    with pytest.raises(QuotaExceeded) as refused:
        await docket.add(noop, quota=quota)()
    assert refused.value.reason in ("rate", "unfinished")
    unfinished = await docket.client.zcard(docket.keys.quota("alice"))
    assert unfinished == 2  # the refused add left nothing behind either


def test_quota_values_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Quota("x", max_unfinished=0)
    with pytest.raises(ValueError, match="window must be positive"):
        Quota("x", max_per_window=1, window=0)
