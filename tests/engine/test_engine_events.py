"""The event hub under stress: concurrent followers, lost connections, failing listeners.

Every process hears its tasks through one pub/sub connection; what a user relies on is that
a follower told "ready" misses no later change of its task, whatever else happens on that
connection meanwhile, and that after any loss of it every follower is told to read afresh.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.client import PubSub

from mcp_tasks.engine import Docket, Status, events, subscriptions
from mcp_tasks.engine.events import RESYNC, Event
from tests.helpers.redis_process import RedisProcess

pytestmark = pytest.mark.anyio


async def queued_tasks(docket: Docket, count: int) -> list[str]:
    """Tasks that stay queued (no worker here) until cancelled: cancelling one is an event
    on its own channel."""

    async def job() -> None: ...

    docket.register(job)
    return [execution.key for execution in await docket.add_many(job, [()] * count)]


async def final_status(docket: Docket, key: str, events: asyncio.Queue[Event]) -> list[str]:
    """Follow ``key`` as a user of the hub does: its events, and on a resync a fresh read
    (messages may have been lost); returns what it heard, ending with the task's final
    status."""
    heard = []
    async with asyncio.timeout(10):
        while True:
            event = await events.get()
            heard.append(event.status)
            if event.status == RESYNC:
                state = await docket.get(key)
                if state is not None and state.terminal:
                    return [*heard, state.status.value]
            elif event.status in {s.value for s in Status if s.terminal}:
                return heard


async def test_a_follower_cancelled_while_subscribing_does_not_fail_the_others(
    docket: Docket,
) -> None:
    (key,) = await queued_tasks(docket, 1)
    entered = asyncio.Event()

    async def follow() -> list[str]:
        async with docket.hub.subscription(key) as events:
            entered.set()
            return await final_status(docket, key, events)

    async def give_up() -> None:
        async with docket.hub.subscription(key):
            pass

    staying = asyncio.create_task(follow())
    leaving = asyncio.create_task(give_up())
    await asyncio.sleep(0)  # both wait for the same confirmation now
    leaving.cancel()
    await entered.wait()  # the one that stayed was not cancelled with the other
    assert await docket.cancel(key)
    assert await staying == [Status.CANCELLED.value]


async def test_a_follower_told_ready_hears_the_next_change_while_others_come_and_go(
    docket: Docket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A follower joins a task whose channel is being dropped, while another channel is
    being added in the same batch: the channel on its way out must not count as subscribed
    for the one who wants it again, or a change made after its UNSUBSCRIBE is never heard."""
    keys = await queued_tasks(docket, 20)
    subscribe, unsubscribe = PubSub.subscribe, PubSub.unsubscribe
    dropped = asyncio.Event()

    async def slow_subscribe(self: PubSub, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.01)  # a slow network: others run while it is on its way
        return await subscribe(self, *args, **kwargs)

    async def noted_unsubscribe(self: PubSub, *args: Any) -> Any:
        await unsubscribe(self, *args)
        dropped.set()

    monkeypatch.setattr(PubSub, "subscribe", slow_subscribe)
    monkeypatch.setattr(PubSub, "unsubscribe", noted_unsubscribe)
    heard: list[Event] = []
    for round_ in range(10):
        key, other = keys[2 * round_], keys[2 * round_ + 1]
        dropped.clear()

        async def follow_again(key: str = key) -> list[str]:
            async with docket.hub.subscription(key) as events:
                await dropped.wait()  # the old subscription's UNSUBSCRIBE went out
                assert await docket.cancel(key)
                return await final_status(docket, key, events)

        async with docket.hub.subscription(key):
            pass  # key's channel was confirmed; leaving makes a drop due...
        docket.hub.add_task_listener(other, heard.append)  # ...in one batch with an add
        follower = asyncio.create_task(follow_again())  # (runs while that batch is sent)
        assert await follower == [Status.CANCELLED.value], f"round {round_}"
        docket.hub.remove_task_listener(other, heard.append)
        assert await docket.cancel(other)


async def test_a_silently_repaired_connection_resyncs_every_follower(docket: Docket) -> None:
    """redis-py repairs a dropped pub/sub connection inside its read and resubscribes by
    itself; what was published meanwhile is lost, so the followers must be told."""
    first, second = await queued_tasks(docket, 2)
    heard: list[Event] = []
    docket.hub.add_task_listener(second, heard.append)
    async with docket.hub.subscription(first) as events:
        await docket.hub.ready(second)
        connection = _current_pubsub(docket).connection
        assert connection is not None
        await connection.disconnect()
        # (On memory:// the read notices only with the next message, this cancel's.)
        assert await docket.cancel(first)
        heard_first = await final_status(docket, first, events)
        assert RESYNC in heard_first and heard_first[-1] == Status.CANCELLED.value
        async with asyncio.timeout(10):
            while not any(e.status == RESYNC for e in heard):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        # ...and the followers hear the changes after it.
        assert await docket.cancel(second)
        async with asyncio.timeout(10):
            while not any(e.status == Status.CANCELLED.value for e in heard):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    docket.hub.remove_task_listener(second, heard.append)


async def test_a_failing_subscribe_reconnects_instead_of_losing_the_channel(
    docket: Docket, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await queued_tasks(docket, 2)
    async with docket.hub.subscription(first):
        pass  # the connection is up
    real = PubSub.subscribe
    failures: list[tuple[Any, ...]] = []

    async def subscribe_failing_once(self: PubSub, *args: Any, **kwargs: Any) -> Any:
        if not failures:
            failures.append(args)
            raise RuntimeError("a SUBSCRIBE that went wrong")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(PubSub, "subscribe", subscribe_failing_once)
    async with docket.hub.subscription(second) as events:
        assert failures  # the sync loop's SUBSCRIBE failed...
        assert await docket.cancel(second)
        assert (await final_status(docket, second, events))[-1] == Status.CANCELLED.value


async def test_a_failing_listener_does_not_silence_the_others(docket: Docket) -> None:
    key, later = await queued_tasks(docket, 2)

    def broken(event: Event) -> None:
        raise ValueError("a listener's bug")

    docket.hub.add_task_listener(key, broken)
    docket.hub.add_task_listener(later, broken)
    async with docket.hub.subscription(key, later) as events:
        assert await docket.cancel(key)
        assert await final_status(docket, key, events) == [Status.CANCELLED.value]
        assert await docket.cancel(later)  # the connection still reads
        assert await final_status(docket, later, events) == [Status.CANCELLED.value]
    docket.hub.remove_task_listener(key, broken)
    docket.hub.remove_task_listener(later, broken)


async def test_ready_for_a_task_nobody_follows_returns_at_once(docket: Docket) -> None:
    (key,) = await queued_tasks(docket, 1)
    await docket.hub.start()
    async with asyncio.timeout(1):
        await docket.hub.ready(key)
    await docket.cancel(key)


def _current_pubsub(docket: Docket) -> PubSub:
    """(Reaching in: no public way to drop the hub's connection from the client side, and
    killing it server-side has no equivalent on memory://.)"""
    pubsub = docket.hub._connection._pubsub
    assert pubsub is not None
    return pubsub


async def test_a_redis_that_stops_answering_does_not_hang_a_new_follower(
    tmp_path: Path, docket_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition, played by SIGSTOP (a process of its own: memory:// has no network to
    lose): following waits for Redis's confirmation only so long, then goes on."""
    monkeypatch.setattr(subscriptions, "CONFIRM_SECONDS", 0.5)
    server = RedisProcess(tmp_path)
    server.start()
    assert server.process is not None
    try:
        async with Docket(name=docket_name, url=server.url) as docket:
            (key,) = await queued_tasks(docket, 1)
            await docket.hub.start()
            server.process.send_signal(signal.SIGSTOP)
            try:
                async with asyncio.timeout(5):
                    async with docket.hub.subscription(key) as events:
                        pass
            finally:
                server.process.send_signal(signal.SIGCONT)
            async with docket.hub.subscription(key) as events:
                assert await docket.cancel(key)
                assert (await final_status(docket, key, events))[-1] == Status.CANCELLED.value
    finally:
        server.kill()


async def test_a_connection_replaced_just_before_closing_is_closed_too(
    url: str, docket_name: str, purged: None
) -> None:
    """The hub replaces its connection after a failed SUBSCRIBE; closing the docket at that
    moment must end the old reader too, not leave it subscribed (and reconnecting)."""
    async with Docket(name=docket_name, url=url) as docket:
        await docket.hub.start()
        docket.hub._connection._restart_reader()  # (what a failed SUBSCRIBE does)
    readers = [t for t in asyncio.all_tasks() if t.get_name() == "mcp-tasks events"]
    assert [t for t in readers if not t.done()] == []


def test_silence_rechecks_keep_within_the_process_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every listener re-reads its tasks after silence; thousands of them in one process
    must not make that a storm (a third of the CPU, in waves), nor all re-read together."""
    monkeypatch.setattr(events, "_listeners", 10)
    few = [events.recheck_seconds() for _ in range(500)]
    assert min(few) >= 7.5 and max(few) <= 12.5  # 10 s, spread by a quarter
    assert max(few) - min(few) > 2.5
    monkeypatch.setattr(events, "_listeners", 5_000)
    many = [events.recheck_seconds() for _ in range(500)]
    assert min(many) >= 18.75 and max(many) <= 31.25  # 5,000 / 200 a second = 25 s


async def test_an_open_subscription_counts_as_a_listener(docket: Docket) -> None:
    before = events._listeners
    async with docket.hub.subscription("a" * 32, "b" * 32):
        assert events._listeners == before + 1
    assert events._listeners == before


async def test_a_connection_that_stops_answering_pings_is_replaced(
    docket: Docket, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A half-open connection (a partition, a crashed host: no error, no RST) reads nothing
    and looks subscribed for ever. Its PINGs go unanswered: the hub starts a fresh one and
    resyncs the followers, who then hear the task's changes again."""
    monkeypatch.setattr(subscriptions, "PING_SECONDS", 0.05)
    (key,) = await queued_tasks(docket, 1)
    lost = subscriptions.UNANSWERED_PINGS
    ping = PubSub.ping

    async def black_hole(self: PubSub, *args: Any) -> Any:
        nonlocal lost
        if lost:  # the first connection's PINGs vanish, as on a dead TCP connection
            lost -= 1
            return None
        return await ping(self, *args)

    monkeypatch.setattr(PubSub, "ping", black_hole)
    async with docket.hub.subscription(key) as events:
        async with asyncio.timeout(10):
            assert (await events.get()).status == RESYNC
        assert "stopped answering PINGs" in caplog.text
        assert await docket.cancel(key)
        assert await final_status(docket, key, events) == [Status.CANCELLED.value]


async def test_an_answering_connection_is_kept(
    docket: Docket, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(subscriptions, "PING_SECONDS", 0.02)
    (key,) = await queued_tasks(docket, 1)
    async with docket.hub.subscription(key) as events:
        await asyncio.sleep(0.5)  # ~25 PINGs, each answered
        assert events.empty()  # no resync: the connection was never replaced
    assert "stopped answering PINGs" not in caplog.text
