"""One pub/sub connection per docket and process, subscribed only to what the process follows.

The scripts publish each state change of a task on that task's own channel
(``Keys.task_events``), every change of a script's batch on the docket's channel
(``Keys.events``, for dashboards) and cancellations and new schedules on the control channel
(``Keys.control``, for workers); see ``common.lua``. This hub subscribes to a task's channel
only while something in this process follows the task (a ``wait()``, a push stream, a
2025-11-25 relay), so a server replica hears the tasks its own clients follow and not the
whole docket's traffic, and a worker hears only the control channel. The docket-wide
channel is read only while a dashboard watches.

A thousand concurrent listeners still cost one connection. The subscriptions asked for in
one event-loop tick go out as one SUBSCRIBE; a subscription returns once Redis confirmed it,
so a caller that reads state afterwards misses no change. When the connection is lost and
re-established, every listener receives a ``resync`` event, because messages published
while it was down are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from .connection import CONNECTION_ERRORS
from .keys import Keys, is_task_key

log = logging.getLogger("mcp_tasks.engine")

RESYNC = "resync"
RECHECK_SECONDS = 10.0
"""A listener that heard nothing of its tasks for this long reads them again. Pub/sub
delivers at most once: a publisher killed between its write and its PUBLISH, or a failover
while the subscription was moving, loses a message, and silence is no proof that nothing
changed. One read per listened task per 10 s of silence bounds how long such a loss lasts."""

Callback = Callable[["Event"], None]


@dataclass(frozen=True, slots=True)
class Event:
    status: str
    detail: str
    key: str


def parse(message: bytes | str) -> list[Event]:
    text = message.decode() if isinstance(message, bytes) else message
    events = []
    for line in text.split("\n"):
        status, detail, key = line.split("|", 2)
        events.append(Event(status, detail, key))
    return events


async def next_event(queue: asyncio.Queue[Event]) -> Event:
    """The queue's next event, or a key-less ``resync`` after :data:`RECHECK_SECONDS` of
    silence: the listener then reads everything it follows afresh."""
    try:
        async with asyncio.timeout(RECHECK_SECONDS):
            return await queue.get()
    except TimeoutError:
        return Event(RESYNC, "", "")


class EventHub:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._queues: defaultdict[str, set[asyncio.Queue[Event]]] = defaultdict(set)
        self._callbacks: defaultdict[str, set[Callback]] = defaultdict(set)
        self._everything: list[Callback] = []
        self._control: list[Callback] = []
        # Channel bookkeeping: confirmed by Redis / SUBSCRIBE sent and not yet confirmed /
        # whose wish changed since the last sync / futures of callers awaiting confirmation.
        self._subscribed: set[str] = set()
        self._sent: set[str] = set()
        self._dirty: set[str] = set()
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._pubsub: PubSub | None = None
        self._changed: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._outage = False

    # -- what this process follows --------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to the docket-wide channels wanted now (the control channel always, the
        docket's every-event channel while a callback reads it), once Redis confirmed them."""
        channels = [self._keys.control]
        if self._everything:
            channels.append(self._keys.events)
        await self._confirmed(channels)

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        while tasks:
            # Cancel again until they end: on Python 3.11 a cancel landing as a read
            # completes is lost inside asyncio.wait_for (which the fakeredis and redis-py
            # reads use), and the loop would wait for its next message for ever.
            for task in tasks:
                task.cancel()
            _done, pending = await asyncio.wait(tasks, timeout=0.5)
            tasks = list(pending)
        for future in self._confirmations.values():
            if not future.done():
                future.set_exception(RuntimeError("the docket was closed"))
        self._confirmations.clear()
        self._pubsub = self._changed = None
        self._subscribed.clear()
        self._sent.clear()

    def on_every_event(self, callback: Callback) -> None:
        """Call ``callback`` with every event of the docket (then ``await start()``): costs
        this process the whole docket's traffic, for as long as one such callback is here."""
        self._everything.append(callback)
        self._want(self._keys.events)

    def on_control_event(self, callback: Callback) -> None:
        """Call ``callback`` with cancellations and new schedules (what a worker acts on)."""
        self._control.append(callback)

    def remove_listener(self, callback: Callback) -> None:
        for callbacks in (self._everything, self._control):
            with contextlib.suppress(ValueError):
                callbacks.remove(callback)
        if not self._everything:
            self._want(self._keys.events)

    def add_task_listener(self, key: str, callback: Callback) -> None:
        """Call ``callback`` with the events of task ``key`` (``await ready(key)`` to know
        none will be missed from then on). A key no task could have is no task's: nothing
        to hear, and its channel could not even be named to Redis."""
        if not is_task_key(key):
            return
        self._callbacks[key].add(callback)
        self._want(self._keys.task_events(key))

    def remove_task_listener(self, key: str, callback: Callback) -> None:
        callbacks = self._callbacks.get(key)
        if callbacks is not None:
            callbacks.discard(callback)
            if not callbacks:
                del self._callbacks[key]
                self._want(self._keys.task_events(key))

    async def ready(self, *keys: str) -> None:
        """Return once the channels of ``keys`` are subscribed (they must be followed)."""
        await self._confirmed([self._keys.task_events(key) for key in keys if is_task_key(key)])

    @contextlib.asynccontextmanager
    async def subscription(self, *keys: str) -> AsyncIterator[asyncio.Queue[Event]]:
        """One queue receiving the events of every key in ``keys`` from the moment this is
        entered (so a caller that reads state afterwards misses no change)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        keys = tuple(key for key in keys if is_task_key(key))  # (no task has the others)
        for key in keys:
            self._queues[key].add(queue)
            self._want(self._keys.task_events(key))
        try:
            await self.ready(*keys)
            yield queue
        finally:
            for key in keys:
                queues = self._queues.get(key)
                if queues is not None:
                    queues.discard(queue)
                    if not queues:
                        del self._queues[key]
                        self._want(self._keys.task_events(key))

    def _wanted(self, channel: str) -> bool:
        if channel == self._keys.control:
            return True
        if channel == self._keys.events:
            return bool(self._everything)
        key = self._keys.task_of_channel(channel)
        return key is not None and (key in self._queues or key in self._callbacks)

    def _all_wanted(self) -> set[str]:
        channels = {self._keys.control}
        if self._everything:
            channels.add(self._keys.events)
        channels.update(self._keys.task_events(key) for key in self._queues)
        channels.update(self._keys.task_events(key) for key in self._callbacks)
        return channels

    def _want(self, channel: str) -> None:
        """Note that whether ``channel`` is wanted may have changed; the sync loop (next
        tick) subscribes or unsubscribes, batching everything noted meanwhile."""
        self._dirty.add(channel)
        if self._changed is not None:
            self._changed.set()

    async def _confirmed(self, channels: Iterable[str]) -> None:
        self._ensure_running()
        if self._outage:
            # Redis is away: waiting here would turn the caller's "store unavailable" into
            # a hang. The reconnection subscribes to everything wanted and sends every
            # listener a resync, which makes it read its tasks afresh.
            return
        waits = []
        for channel in channels:
            if channel in self._subscribed:
                continue
            future = self._confirmations.get(channel)
            if future is None:
                future = self._confirmations[channel] = asyncio.get_running_loop().create_future()
            waits.append(future)
        if waits:
            await asyncio.gather(*waits)

    # -- the connection -------------------------------------------------------------------

    def _ensure_running(self) -> None:
        if not self._tasks:
            self._changed = asyncio.Event()
            self._tasks = [
                asyncio.create_task(self._read(), name="mcp-tasks events"),
                asyncio.create_task(self._sync(), name="mcp-tasks subscriptions"),
            ]

    async def _sync(self) -> None:
        """Bring the subscriptions in line with what is wanted, a batch at a time. A channel
        gets at most one unconfirmed SUBSCRIBE, and is unsubscribed only once confirmed,
        so confirmations (in order on the one connection) always tell the true state."""
        assert self._changed is not None
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
            self._release([c for c in dirty if not self._wanted(c) and c not in self._sent])
            try:
                if add:
                    self._sent.update(add)
                    await pubsub.subscribe(*add)
                if drop:
                    self._subscribed.difference_update(drop)
                    await pubsub.unsubscribe(*drop)
            except CONNECTION_ERRORS:
                # The reader sees the connection fail too, reconnects and subscribes to
                # everything wanted then.
                pass
            except Exception:  # never let one bad batch end every later subscription
                log.exception("event subscriptions not updated: %s", add + drop)
                self._sent.difference_update(add)
                self._release(add)

    async def _read(self) -> None:
        delay = 0.05
        while True:
            _raise_if_cancelled()
            pubsub = self._client.pubsub()
            self._subscribed.clear()
            self._sent.clear()
            self._dirty.clear()
            try:
                channels = self._all_wanted()
                self._release([c for c in self._confirmations if c not in channels])
                self._sent.update(channels)
                await pubsub.subscribe(*channels)
                self._pubsub = pubsub
                if self._dirty and self._changed is not None:
                    self._changed.set()  # wishes changed while the SUBSCRIBE was on its way
                async for message in pubsub.listen():
                    _raise_if_cancelled()
                    kind = message["type"]
                    if kind == "message":
                        self._handle(message)
                    elif kind == "subscribe":
                        self._on_subscribed(_text(message["channel"]))
                        delay = 0.05
            except CONNECTION_ERRORS as exc:
                self._pubsub = None
                if not self._outage:
                    log.warning("lost the event subscription (%s); reconnecting", exc)
                    self._outage = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _release(self, channels: Iterable[str]) -> None:
        """Nobody here follows these any more: whoever awaited their confirmation stops."""
        for channel in channels:
            future = self._confirmations.pop(channel, None)
            if future is not None and not future.done():
                future.set_result(None)

    def _on_subscribed(self, channel: str) -> None:
        self._sent.discard(channel)
        self._subscribed.add(channel)
        self._release([channel])
        if not self._wanted(channel):
            self._want(channel)  # its follower left before Redis confirmed: unsubscribe
        if channel == self._keys.control and self._outage:
            log.info("event subscription restored on %s", self._keys.events)
            self._outage = False
            self._resync_all()

    def _resync_all(self) -> None:
        for key, queues in self._queues.items():
            for queue in queues:
                queue.put_nowait(Event(RESYNC, "", key))
        for key, callbacks in list(self._callbacks.items()):
            for callback in list(callbacks):
                callback(Event(RESYNC, "", key))
        for callback in [*self._everything, *self._control]:
            callback(Event(RESYNC, "", ""))

    def _handle(self, message: dict[str, Any]) -> None:
        try:
            events = parse(message["data"])
        except ValueError:
            log.warning("ignoring a malformed event message: %r", message["data"][:200])
            return
        channel = _text(message["channel"])
        if channel == self._keys.control:
            targets = list(self._control)
        elif channel == self._keys.events:
            targets = list(self._everything)
        else:
            for event in events:
                for queue in self._queues.get(event.key, ()):
                    queue.put_nowait(event)
                for callback in list(self._callbacks.get(event.key, ())):
                    callback(event)
            return
        for event in events:
            for callback in targets:
                callback(event)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _raise_if_cancelled() -> None:
    """Stop a loop whose cancellation was swallowed on its way: a cancel landing inside a
    redis-py pub/sub command can be absorbed there (seen with redis-py 8.1: the command
    returned, the task still marked as cancelling), and a loop that went on would never
    end, so closing the docket would wait forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
