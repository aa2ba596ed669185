"""The one pub/sub connection of an event hub, kept subscribed to what the hub wants.

Split from ``events.py`` so that the listeners (who follows what) and the connection (which
channels Redis has confirmed on which connection, through outages) can each be read alone.
The hub says which channels it wants; this subscribes and unsubscribes in batches, tells
callers when Redis confirmed, hands every message to the hub, and after any loss of the
connection — including one redis-py repaired by itself inside a read, resubscribing
silently — starts a fresh connection and has the hub resync its listeners, because
messages published meanwhile are gone. A connection that died without a word (no error,
no RST: a partition, a crashed host) is found by PINGs it stops answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from .connection import CONNECTION_ERRORS, reply_text

log = logging.getLogger("mcp_tasks.engine")

CONFIRM_SECONDS = 5.0
"""How long a new follower waits for Redis to confirm its subscription. A Redis that does
not answer (partitioned, stopped) must not turn a ``tasks/get`` into a hang; past this the
follower goes on, and the silence recheck or the resync after the reconnection covers it."""


PING_SECONDS = 5.0
"""How often the connection is PINGed while subscribed. A half-open connection reads
nothing, raises nothing and would look subscribed for ever; listeners' silence rechecks
would only mask it (and workers' control channel has none)."""

UNANSWERED_PINGS = 3
"""PINGs without a PONG before the connection is given up for dead (15-20 s). Not one:
an overloaded process reads its backlog late, and a PONG queued behind it is no sign of a
dead connection (one long stall lets the watchdog send only one PING meanwhile)."""


class _Reconnected(Exception):
    """redis-py re-established the connection inside a command and resubscribed by itself."""


class ChannelSubscriptions:
    def __init__(
        self,
        client: Redis,
        *,
        first: str,
        wanted: Callable[[str], bool],
        all_wanted: Callable[[], set[str]],
        on_message: Callable[[str, bytes | str], None],
        on_resync: Callable[[str], None],
    ) -> None:
        """``first`` is a channel always wanted: a second confirmation of it on one
        connection is the sign that redis-py reconnected behind our back. ``on_resync`` is
        called with a channel once it is subscribed again after a loss (its followers must
        read afresh: what was published meanwhile is gone)."""
        self._client = client
        self._first = first
        self._wanted = wanted
        self._all_wanted = all_wanted
        self._on_message = on_message
        self._on_resync = on_resync
        # On the current connection: confirmed by Redis / SUBSCRIBE sent and not yet
        # confirmed / whose wish changed since the last sync. Callers awaiting a
        # confirmation each hold their own future, so one caller's cancellation is its own.
        self._subscribed: set[str] = set()
        self._sent: set[str] = set()
        self._dirty: set[str] = set()
        self._waiters: defaultdict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._pubsub: PubSub | None = None
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._readers: set[asyncio.Task[None]] = set()  # (the current one, and any ending)
        self._syncer: asyncio.Task[None] | None = None
        # Channels whose followers get a resync when Redis next confirms them: all wanted
        # at a loss, and any wanted during the outage (their followers went on unconfirmed).
        self._unsynced: set[str] = set()
        self._outage = False
        self._closed = False
        self._pings = self._pongs = 0  # on the current connection

    def want(self, channel: str) -> None:
        """Whether ``channel`` is wanted may have changed: the sync loop (next tick)
        subscribes or unsubscribes, batching everything noted meanwhile."""
        self._dirty.add(channel)
        if self._outage:
            self._unsynced.add(channel)
        self._changed.set()

    async def confirmed(self, channels: Iterable[str]) -> None:
        """Return once Redis confirmed these wanted channels, or at once while Redis is
        away (the reconnection resyncs every listener), or after :data:`CONFIRM_SECONDS`."""
        self._ensure_running()
        if self._outage:
            return
        mine: dict[str, asyncio.Future[None]] = {}
        for channel in channels:
            # (A channel nobody wants will never be confirmed: nothing to wait for.)
            if channel not in self._subscribed and self._wanted(channel):
                mine[channel] = asyncio.get_running_loop().create_future()
                self._waiters[channel].add(mine[channel])
        if not mine:
            return
        try:
            _done, late = await asyncio.wait(mine.values(), timeout=CONFIRM_SECONDS)
            if late:
                log.warning("Redis did not confirm %d event subscriptions in time", len(late))
        finally:
            for channel, future in mine.items():
                waiting = self._waiters.get(channel)
                if waiting is not None:
                    waiting.discard(future)
                    if not waiting:
                        del self._waiters[channel]

    async def close(self) -> None:
        self._closed = True
        tasks = [task for task in (*self._readers, self._syncer) if task is not None]
        self._reader = self._syncer = None
        await _cancel_until_done(tasks)
        self._readers.clear()
        self._release(list(self._waiters))
        self._pubsub = None
        self._subscribed.clear()
        self._sent.clear()

    def _release(self, channels: Iterable[str]) -> None:
        """Confirmed, wanted by nobody, or the connection is gone: their waiters go on."""
        for channel in channels:
            for future in self._waiters.pop(channel, ()):
                if not future.done():
                    future.set_result(None)

    def _ensure_running(self) -> None:
        """Start the reader and the sync loop, and again should either have ended (a bug
        must cost a reconnection, not every later event of the process)."""
        if self._closed:
            raise RuntimeError("the docket was closed")
        if self._reader is None or self._reader.done():
            self._start_reader()
        if self._syncer is None or self._syncer.done():
            self._syncer = asyncio.create_task(self._sync(), name="mcp-tasks subscriptions")

    async def _sync(self) -> None:
        """Bring the subscriptions in line with what is wanted, a batch at a time. A channel
        gets at most one unconfirmed SUBSCRIBE, and is unsubscribed only once confirmed,
        so confirmations (in order on the one connection) always tell the true state."""
        while True:
            _raise_if_cancelled()
            await self._changed.wait()
            self._changed.clear()
            pubsub = self._pubsub
            if pubsub is None:
                continue  # (re)connecting: the reader subscribes to everything wanted
            dirty, self._dirty = self._dirty, set()
            add = [c for c in dirty if self._wanted(c) and c not in self._subscribed]
            add = [c for c in add if c not in self._sent]
            drop = [c for c in dirty if not self._wanted(c) and c in self._subscribed]
            self._release([c for c in dirty if not self._wanted(c)])
            self._unsynced.difference_update(c for c in dirty if not self._wanted(c))
            # The bookkeeping changes before the commands go out: a confirmation read while
            # they are on their way must find it already true.
            self._sent.update(add)
            self._subscribed.difference_update(drop)
            try:
                if add:
                    await pubsub.subscribe(*add)
                if drop and pubsub is self._pubsub:
                    await pubsub.unsubscribe(*drop)
            except Exception as exc:
                # Whether Redis got them is unknown, so the connection's state is too: start
                # a fresh one, which subscribes to everything wanted then.
                if pubsub is self._pubsub:
                    if not isinstance(exc, CONNECTION_ERRORS):
                        log.exception("event subscriptions not updated; reconnecting")
                    self._restart_reader()

    def _restart_reader(self) -> None:
        if self._closed:
            return
        old = self._reader
        self._pubsub = None
        self._lost_everything()
        if old is not None:
            old.cancel()  # (and it stops at its next step anyway: it is no longer current)
        self._start_reader(after=old)

    def _start_reader(self, after: asyncio.Task[None] | None = None) -> None:
        reader = asyncio.create_task(self._read(after), name="mcp-tasks events")
        self._reader = reader
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)

    def _current(self) -> bool:
        """Whether the running reader is the hub's: one replaced (or closed) must neither
        deliver nor confirm anything, or it could end an outage the new one is in."""
        return not self._closed and asyncio.current_task() is self._reader

    async def _read(self, after: asyncio.Task[None] | None = None) -> None:
        if after is not None:
            await _cancel_until_done([after])
        delay = 0.05
        watchdog: asyncio.Task[None] | None = None
        while self._current():
            _raise_if_cancelled()
            pubsub = self._client.pubsub()
            self._subscribed.clear()
            self._sent.clear()
            self._dirty.clear()
            try:
                channels = self._all_wanted()
                self._release([c for c in self._waiters if c not in channels])
                self._sent.update(channels)
                await pubsub.subscribe(*channels)
                if not self._current():
                    return
                self._pubsub = pubsub
                if self._dirty:
                    self._changed.set()  # wishes changed while the SUBSCRIBE was on its way
                self._pings = self._pongs = 0
                watchdog = asyncio.create_task(self._watch(pubsub), name="mcp-tasks pings")
                first_confirmed = False
                async for message in pubsub.listen():
                    _raise_if_cancelled()
                    if not self._current():
                        return
                    kind = message["type"]
                    if kind == "pong":
                        self._pongs += 1
                    elif kind == "message":
                        self._on_message(reply_text(message["channel"]), message["data"])
                    elif kind == "subscribe":
                        channel = reply_text(message["channel"])
                        if channel == self._first:
                            if first_confirmed:
                                raise _Reconnected("redis-py reconnected and resubscribed")
                            first_confirmed = True
                        self._on_subscribed(channel)
                        delay = 0.05
            except Exception as exc:
                if not self._current():
                    return
                self._lost(exc)
                await _stopped(watchdog)  # (its PING would reopen the connection)
                watchdog = None
                await self._detach(pubsub)  # (before the backoff: nobody may use it meanwhile)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                await _stopped(watchdog)
                watchdog = None
                await self._detach(pubsub)

    async def _watch(self, pubsub: PubSub) -> None:
        """PING the connection every :data:`PING_SECONDS`; start a fresh one once
        :data:`UNANSWERED_PINGS` went unanswered (PONGs come in order, after every message
        sent before them)."""
        while self._pubsub is pubsub:
            if self._pings - self._pongs >= UNANSWERED_PINGS:
                log.warning(
                    "the event subscription on %s stopped answering PINGs; reconnecting",
                    self._first,
                )
                self._restart_reader()
                return
            self._pings += 1
            try:
                await pubsub.ping()
            except Exception:
                if self._pubsub is pubsub:
                    self._restart_reader()  # (the reader may be stuck on the same connection)
                return
            await asyncio.sleep(PING_SECONDS)

    async def _detach(self, pubsub: PubSub) -> None:
        if self._pubsub is pubsub:
            self._pubsub = None
        if self._current():  # (a replaced reader's waiters are the new connection's)
            self._release(list(self._waiters))  # no confirmation comes from a lost one
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _lost(self, exc: Exception) -> None:
        if not isinstance(exc, (*CONNECTION_ERRORS, _Reconnected)):
            log.exception("the event subscription failed; reconnecting", exc_info=exc)
        elif not self._outage:
            log.warning("lost the event subscription on %s (%s); reconnecting", self._first, exc)
        self._lost_everything()

    def _lost_everything(self) -> None:
        self._outage = True
        self._unsynced.update(self._all_wanted())

    def _on_subscribed(self, channel: str) -> None:
        self._sent.discard(channel)
        self._subscribed.add(channel)
        self._release([channel])
        if not self._wanted(channel):
            self.want(channel)  # its follower left before Redis confirmed: unsubscribe
        if channel == self._first and self._outage:
            log.info("event subscription restored on %s", self._first)
            self._outage = False
        if channel in self._unsynced:
            self._unsynced.discard(channel)
            self._on_resync(channel)


async def _cancel_until_done(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel again until they end: on Python 3.11 a cancel landing as a read completes is
    lost inside asyncio.wait_for (which the fakeredis and redis-py reads use), and the loop
    would wait for its next message for ever."""
    while tasks:
        for task in tasks:
            task.cancel()
        _done, pending = await asyncio.wait(tasks, timeout=0.5)
        tasks = list(pending)


async def _stopped(watchdog: asyncio.Task[None] | None) -> None:
    """Stop a connection's watchdog, and wait until it has (a PING it is sending goes through
    redis-py's reconnecting retry, which would reopen a connection being given back)."""
    if watchdog is not None and watchdog is not asyncio.current_task():
        await _cancel_until_done([watchdog])


def _raise_if_cancelled() -> None:
    """Stop a loop whose cancellation was swallowed on its way: a cancel landing inside a
    redis-py pub/sub command can be absorbed there (seen with redis-py 8.1: the command
    returned, the task still marked as cancelling), and a loop that went on would never
    end, so closing the docket would wait forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
