"""How a worker waits for work, which depends on the backend (chosen by :func:`work_reader`).

On Redis, a blocking ``XREADGROUP`` on a connection of the worker's own waits in the server.
fakeredis (memory://) answers a blocking read at once, so there the worker waits on the
store's in-process :class:`~.connection.WorkSignal`, which every add notifies. The worker
decides *when* to stop waiting (``stop``, a freed slot, "is everything finished?"); the reader
knows only *how* to wait on its backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from redis.asyncio import Redis

from .connection import Backend, MemoryStore, close_client
from .keys import GROUP, Keys

Entries = list[tuple[bytes, dict[bytes, bytes]]]
IDLE_BLOCK_MS = 10_000
"""How long one idle wait lasts before the claim loop looks around again."""


class WorkReader(Protocol):
    async def read(
        self,
        count: int,
        *,
        stop: asyncio.Event,
        slot_freed: asyncio.Event | None = None,
        finished: Callable[[], Awaitable[bool]] | None = None,
    ) -> Entries:
        """Up to ``count`` new entries, waiting for some; [] when the wait ended without:
        ``stop`` was set, ``slot_freed`` was (if given), or ``finished`` said so (if given,
        the caller is draining: waits are short)."""
        ...

    async def close(self) -> None: ...


async def _xreadgroup(
    client: Redis, keys: Keys, consumer: str, count: int, block: int | None
) -> Entries:
    reply = await client.xreadgroup(GROUP, consumer, {keys.stream: ">"}, count=count, block=block)
    if not reply:
        return []
    entries: Entries = reply[0][1]  # type: ignore[index,assignment]
    return entries


class RedisWorkReader:
    def __init__(self, backend: Backend, keys: Keys, consumer: str) -> None:
        self.keys, self.consumer = keys, consumer
        # Its reads block for up to IDLE_BLOCK_MS: the socket must wait longer than that,
        # or every idle read would end in a client-side timeout and a reconnect.
        self.client = backend.client(max_connections=2, socket_timeout=IDLE_BLOCK_MS / 1000 + 10)

    async def read(
        self,
        count: int,
        *,
        stop: asyncio.Event,
        slot_freed: asyncio.Event | None = None,
        finished: Callable[[], Awaitable[bool]] | None = None,
    ) -> Entries:
        # Draining (run_until_finished): short waits, to look again whether all is done.
        block = 100 if finished is not None or slot_freed is not None else IDLE_BLOCK_MS
        return await _xreadgroup(self.client, self.keys, self.consumer, count, block)

    async def close(self) -> None:
        await close_client(self.client)


class MemoryWorkReader:
    def __init__(self, memory: MemoryStore, client: Redis, keys: Keys, consumer: str) -> None:
        self.memory, self.client, self.keys, self.consumer = memory, client, keys, consumer
        self._drained_at: asyncio.Event | None = None
        """The work signal as it was before a read that emptied the stream."""

    async def read(
        self,
        count: int,
        *,
        stop: asyncio.Event,
        slot_freed: asyncio.Event | None = None,
        finished: Callable[[], Awaitable[bool]] | None = None,
    ) -> Entries:
        # fakeredis does not block: take the signal first, then look, then wait on it.
        # Every XADD in this process notifies the signal, so after a read that found
        # fewer entries than it asked for, nothing new is there until it fires: skip the
        # look (each fakeredis XREADGROUP costs ~0.1 ms of this process's CPU).
        signal = self.memory.signal.current()
        drained, self._drained_at = self._drained_at is signal, None
        if not drained:
            entries = await _xreadgroup(self.client, self.keys, self.consumer, count, None)
            if entries:
                if len(entries) < count:
                    self._drained_at = signal
                return entries
        if finished is not None and await finished():
            return []
        waits = [asyncio.ensure_future(signal.wait()), asyncio.ensure_future(stop.wait())]
        if slot_freed is not None:
            waits.append(asyncio.ensure_future(slot_freed.wait()))
        try:
            await asyncio.wait(waits, timeout=IDLE_BLOCK_MS / 1000, return_when="FIRST_COMPLETED")
        finally:
            for wait in waits:
                wait.cancel()
        return []

    async def close(self) -> None:
        return None


def work_reader(backend: Backend, client: Redis, keys: Keys, consumer: str) -> WorkReader:
    """The reader that suits the backend: ``client`` is the docket's own connection."""
    if backend.memory is not None:
        return MemoryWorkReader(backend.memory, client, keys, consumer)
    return RedisWorkReader(backend, keys, consumer)
