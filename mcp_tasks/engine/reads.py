"""Reads of task records, coalesced: every ``Docket.get`` of one event-loop tick goes out in
one pipeline, and concurrent reads of the same task in that tick share one read (its run hash
and, for an ended task, its large values: ``HGETALL`` and ``GET``).

Why: when many tasks change at once (a burst of completions, a wave of polls) each change
wakes the listeners that follow it, and each listener reads its task. One round trip per
read made a server replica spend a third of a burst in redis-py's per-command machinery
(acquiring pooled connections, growing the pool) rather than in sending notifications; a
pipeline per tick does the same reads in a handful of round trips, on one connection.

A read never joins a batch already sent: a caller that reads after an event must see the
record as it is now, not as it was when an earlier batch left, so it waits for the next.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from .codec import Codec
from .keys import Keys
from .state import ExecutionState, Raw, lacks_large, with_large

ATTEMPTS = 3
"""Reads of one batch, at most: a task replaced between its two reads is read again."""


class RecordReads:
    """Batches the reads of task records made in the same tick of the event loop."""

    def __init__(self, client: Redis, keys: Keys, codec: Codec) -> None:
        self._client = client
        self._keys = keys
        self._codec = codec
        self._pending: dict[str, asyncio.Future[Raw]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def state(self, key: str) -> ExecutionState | None:
        """The task's current state, or None if there is no such task (or it expired)."""
        raw = await self.read(key)
        if not raw or b"status" not in raw:
            return None
        return ExecutionState.from_hash(raw, self._codec)

    async def read(self, key: str) -> Raw:
        """The run hash of ``key`` with its large values (empty if there is none), read after
        this call began."""
        future = self._pending.get(key)
        if future is None:
            loop = asyncio.get_running_loop()
            if not self._pending:
                loop.call_soon(self._dispatch)
            future = loop.create_future()
            future.add_done_callback(_observe)
            self._pending[key] = future
        # Shielded: one reader giving up must not cancel the others' shared read.
        return await asyncio.shield(future)

    def _dispatch(self) -> None:
        batch, self._pending = self._pending, {}
        if batch:
            task = asyncio.create_task(self._send(batch), name="mcp-tasks reads")
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: dict[str, asyncio.Future[Raw]]) -> None:
        try:
            raws = await read_records(self._client, self._keys, list(batch))
        except BaseException as exc:
            failure = exc if isinstance(exc, Exception) else ConnectionError("read abandoned")
            for future in batch.values():
                if not future.done():
                    future.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
            return
        for future, raw in zip(batch.values(), raws, strict=True):
            if not future.done():
                future.set_result(raw)

    async def close(self) -> None:
        """Wait for the reads already sent (their callers are waiting for them)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)


def _observe(future: asyncio.Future[Raw]) -> None:
    """Retrieve a failure nobody awaits any more (every reader of it was cancelled), so
    asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()


async def read_records(client: Redis, keys: Keys, task_keys: list[str]) -> list[Raw]:
    """The records of these tasks, in order (empty for a missing one): each run hash with its
    large values, in one round trip. The two reads of a task are not one atomic step, so a
    task replaced between them is read again (its hash says it has large values that its
    second read did not find)."""
    raws: list[Raw] = [{} for _ in task_keys]
    todo = list(range(len(task_keys)))
    for _ in range(ATTEMPTS):
        async with client.pipeline(transaction=False) as pipe:
            for i in todo:
                pipe.hgetall(keys.run(task_keys[i]))
                pipe.get(keys.large(task_keys[i]))
            found = await pipe.execute()
        again = []
        for n, i in enumerate(todo):
            raw, large = found[2 * n], found[2 * n + 1]
            if lacks_large(raw, large):
                again.append(i)
            raws[i] = with_large(raw, large)
        if not again:
            break
        todo = again
    return raws
