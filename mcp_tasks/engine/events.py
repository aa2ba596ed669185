"""One pub/sub subscription per docket and process, shared by every waiter and worker.

Every state change of a docket's tasks is published on one channel (see ``keys.Keys.events``)
as lines of ``status|detail|key``. This hub reads that channel once and hands each line to the
local listeners of that key, so a thousand concurrent ``wait()`` calls cost one connection.
When the subscription is re-established after a connection loss, every listener receives a
``resync`` event, because messages published while it was down are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from .connection import CONNECTION_ERRORS

log = logging.getLogger("mcp_tasks.engine")

RESYNC = "resync"
RECHECK_SECONDS = 10.0
"""A listener that heard nothing of its tasks for this long reads them again. Pub/sub
delivers at most once: a publisher killed between its write and its PUBLISH, or a failover
while the subscription was moving, loses a message, and silence is no proof that nothing
changed. One read per listened task per 10 s of silence bounds how long such a loss lasts."""


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
    def __init__(self, client: Redis, channel: str) -> None:
        self._client = client
        self._channel = channel
        self._by_key: defaultdict[str, set[asyncio.Queue[Event]]] = defaultdict(set)
        self._everything: list[Callable[[Event], None]] = []
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Subscribe (once) and return only when the server has confirmed it."""
        async with self._lock:
            if self._reader is None:
                self._ready = asyncio.Event()
                self._reader = asyncio.create_task(self._read(), name="mcp-tasks events")
            ready = self._ready
        assert ready is not None
        await ready.wait()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    def on_every_event(self, callback: Callable[[Event], None]) -> None:
        self._everything.append(callback)

    def remove_listener(self, callback: Callable[[Event], None]) -> None:
        with contextlib.suppress(ValueError):
            self._everything.remove(callback)

    @contextlib.asynccontextmanager
    async def subscription(self, *keys: str) -> AsyncIterator[asyncio.Queue[Event]]:
        """One queue receiving the events of every key in ``keys`` from the moment this is
        entered (so a caller that reads state afterwards misses no change)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        for key in keys:
            self._by_key[key].add(queue)
        try:
            await self.start()
            yield queue
        finally:
            for key in keys:
                listeners = self._by_key.get(key)
                if listeners is not None:
                    listeners.discard(queue)
                    if not listeners:
                        del self._by_key[key]

    def _dispatch(self, event: Event) -> None:
        for queue in self._by_key.get(event.key, ()):
            queue.put_nowait(event)
        for callback in self._everything:
            callback(event)

    def _resync_all(self) -> None:
        for key, queues in self._by_key.items():
            for queue in queues:
                queue.put_nowait(Event(RESYNC, "", key))
        for callback in self._everything:
            callback(Event(RESYNC, "", ""))

    async def _read(self) -> None:
        delay, outage = 0.05, False
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                async for message in pubsub.listen():
                    kind = message["type"]
                    if kind == "subscribe":
                        assert self._ready is not None
                        self._ready.set()
                        if outage:
                            log.info("event subscription restored on %s", self._channel)
                            outage, delay = False, 0.05
                            self._resync_all()
                    elif kind == "message":
                        self._handle(message)
            except CONNECTION_ERRORS as exc:
                if not outage:
                    log.warning("lost the event subscription (%s); reconnecting", exc)
                    outage = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _handle(self, message: dict[str, Any]) -> None:
        try:
            events = parse(message["data"])
        except ValueError:
            log.warning("ignoring a malformed event message: %r", message["data"][:200])
            return
        for event in events:
            self._dispatch(event)
