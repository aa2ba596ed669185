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
one event-loop tick go out as one SUBSCRIBE; a subscription returns once Redis confirmed it
(or, should Redis not answer within ``subscriptions.CONFIRM_SECONDS``, once it gave up), so a
caller that reads state afterwards misses no change. Whenever the connection is lost — or
redis-py re-established it by itself, which it does silently inside a read — the hub starts
a fresh one, subscribes to everything wanted and sends every listener a ``resync`` event,
because messages published meanwhile are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from .keys import Keys, is_task_key
from .subscriptions import ChannelSubscriptions

log = logging.getLogger("mcp_tasks.engine")

RESYNC = "resync"
RECHECK_SECONDS = 10.0
"""A listener that heard nothing of its tasks for this long reads them again. Pub/sub
delivers at most once: a publisher killed between its write and its PUBLISH, or a failover
while the subscription was moving, loses a message, and silence is no proof that nothing
changed. One read per listened task per 10 s of silence (±25 %, and longer past the
process's :data:`RECHECKS_PER_SECOND`) bounds how long such a loss lasts."""

RECHECKS_PER_SECOND = 200.0
"""The most silence rechecks a process makes a second, on average: with more than
``RECHECK_SECONDS * RECHECKS_PER_SECOND`` listeners (2,000) each waits proportionally longer
(5,000 listeners: 25 s). 10,000 listen streams on two replicas rechecking every 10 s took a
third of their CPU, in waves, and other listeners' notifications waited up to 0.6 s in them
(``benchmarks/scale.py``); a loss this covers is rare, and costs a little longer at scale."""

_listeners = 0
"""Listeners open in this process (every hub's): the silence budget is the process's CPU."""


def recheck_seconds() -> float:
    """How long a listener's silence lasts before it reads its tasks again: at least
    :data:`RECHECK_SECONDS`, longer past the process's budget, and spread by ±25 % so that
    listeners opened together (a wave of clients) do not all read again together."""
    base = max(RECHECK_SECONDS, _listeners / RECHECKS_PER_SECOND)
    return base * random.uniform(0.75, 1.25)


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
    """The queue's next event, or a key-less ``resync`` after :func:`recheck_seconds` of
    silence: the listener then reads everything it follows afresh."""
    try:
        async with asyncio.timeout(recheck_seconds()):
            return await queue.get()
    except TimeoutError:
        return Event(RESYNC, "", "")


class EventHub:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._keys = keys
        self._queues: defaultdict[str, set[asyncio.Queue[Event]]] = defaultdict(set)
        self._callbacks: defaultdict[str, set[Callback]] = defaultdict(set)
        self._everything: list[Callback] = []
        self._control: list[Callback] = []
        self._connection = ChannelSubscriptions(
            client,
            first=keys.control,
            wanted=self._wanted,
            all_wanted=self._all_wanted,
            on_message=self._handle,
            on_resync=self._resync,
        )

    # -- what this process follows --------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to the docket-wide channels wanted now (the control channel always, the
        docket's every-event channel while a callback reads it), once Redis confirmed them."""
        await self._connection.confirmed([self._keys.control, self._keys.events])

    async def close(self) -> None:
        await self._connection.close()

    def on_every_event(self, callback: Callback) -> None:
        """Call ``callback`` with every event of the docket (then ``await start()``): costs
        this process the whole docket's traffic, for as long as one such callback is here."""
        self._everything.append(callback)
        self._connection.want(self._keys.events)

    def on_control_event(self, callback: Callback) -> None:
        """Call ``callback`` with cancellations and new schedules (what a worker acts on)."""
        self._control.append(callback)

    def remove_listener(self, callback: Callback) -> None:
        for callbacks in (self._everything, self._control):
            with contextlib.suppress(ValueError):
                callbacks.remove(callback)
        if not self._everything:
            self._connection.want(self._keys.events)

    def add_task_listener(self, key: str, callback: Callback) -> None:
        """Call ``callback`` with the events of task ``key`` (``await ready(key)`` to know
        none will be missed from then on). A key no task could have is no task's: nothing
        to hear, and its channel could not even be named to Redis."""
        if not is_task_key(key):
            return
        self._callbacks[key].add(callback)
        self._connection.want(self._keys.task_events(key))

    def remove_task_listener(self, key: str, callback: Callback) -> None:
        callbacks = self._callbacks.get(key)
        if callbacks is not None:
            callbacks.discard(callback)
            if not callbacks:
                del self._callbacks[key]
                self._connection.want(self._keys.task_events(key))

    async def ready(self, *keys: str) -> None:
        """Return once the channels of the followed ``keys`` are subscribed."""
        channels = [self._keys.task_events(key) for key in keys if is_task_key(key)]
        await self._connection.confirmed(channels)

    @contextlib.asynccontextmanager
    async def subscription(self, *keys: str) -> AsyncIterator[asyncio.Queue[Event]]:
        """One queue receiving the events of every key in ``keys`` from the moment this is
        entered (so a caller that reads state afterwards misses no change)."""
        global _listeners
        queue: asyncio.Queue[Event] = asyncio.Queue()
        keys = tuple(key for key in keys if is_task_key(key))  # (no task has the others)
        for key in keys:
            self._queues[key].add(queue)
            self._connection.want(self._keys.task_events(key))
        _listeners += 1
        try:
            await self.ready(*keys)
            yield queue
        finally:
            _listeners -= 1
            for key in keys:
                queues = self._queues.get(key)
                if queues is not None:
                    queues.discard(queue)
                    if not queues:
                        del self._queues[key]
                        self._connection.want(self._keys.task_events(key))

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

    # -- what Redis said ------------------------------------------------------------------

    def _resync(self, channel: str) -> None:
        """``channel`` is subscribed again after a loss of the connection: whatever was
        published on it meanwhile is gone, so its followers read afresh."""
        if channel == self._keys.control:
            for callback in list(self._control):
                _call(callback, Event(RESYNC, "", ""))
            return
        if channel == self._keys.events:
            for callback in list(self._everything):
                _call(callback, Event(RESYNC, "", ""))
            return
        key = self._keys.task_of_channel(channel)
        if key is None:
            return
        for queue in self._queues.get(key, ()):
            queue.put_nowait(Event(RESYNC, "", key))
        for callback in list(self._callbacks.get(key, ())):
            _call(callback, Event(RESYNC, "", key))

    def _handle(self, channel: str, data: bytes | str) -> None:
        try:
            events = parse(data)
        except ValueError:
            log.warning("ignoring a malformed event message: %r", data[:200])
            return
        if channel == self._keys.control:
            targets = list(self._control)
        elif channel == self._keys.events:
            targets = list(self._everything)
        else:
            for event in events:
                for queue in self._queues.get(event.key, ()):
                    queue.put_nowait(event)
                for callback in list(self._callbacks.get(event.key, ())):
                    _call(callback, event)
            return
        for event in events:
            for callback in targets:
                _call(callback, event)


def _call(callback: Callback, event: Event) -> None:
    """One listener's bug is its own: the others, and the connection, go on."""
    try:
        callback(event)
    except Exception:
        log.exception("an event listener failed on %s", event)
