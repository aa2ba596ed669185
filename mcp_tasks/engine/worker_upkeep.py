"""A worker's upkeep: scheduled tasks, leases, dead workers' tasks, and Redis outages.

These loops run beside the claim loop (``worker.py``): they promote due scheduled tasks,
free concurrency slots whose holders died, take over a dead worker's tasks after the
redelivery timeout (first when every slot is busy), renew the leases of long runs, remove
consumers of workers that are gone, and ride out a Redis outage with one log line when it
is lost and one when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import ResponseError

from .clock import now_ms
from .connection import CONNECTION_ERRORS, reply_text
from .docket import Docket
from .keys import GROUP
from .runs import MAX_BATCH, Run

log = logging.getLogger("mcp_tasks.engine")

RECLAIM_PAGES = 16
"""XAUTOCLAIM pages (of 10 x the wanted count each) one reclaim looks through at most."""


class UpkeepMixin:
    """The background loops of :class:`~.worker.Worker`."""

    docket: Docket
    name: str
    concurrency: int
    redelivery_ms: int
    forget_consumers_ms: int
    _runs: dict[str, Run]
    _stopping: bool
    _schedule_changed: asyncio.Event
    _forget_due: float
    _reclaim_first: bool
    _reclaim_cursor: bytes | str
    _outage: bool
    _outage_delay: float

    async def _start_within_slots(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        raise NotImplementedError  # the claim loop's (worker.py) overrides it

    def _wake_memory_workers(self) -> None:
        """On Redis an XADD wakes blocked readers; fakeredis needs the in-process signal.
        Every XADD to the stream must be followed by this (or the signal's notify): a memory://
        worker that found the stream drained does not look again until the signal fires."""
        memory = self.docket.backend.memory
        if memory is not None:
            memory.signal.notify()

    # -- scheduled tasks -----------------------------------------------------------------

    async def _promote_loop(self) -> None:
        memory = self.docket.backend.memory
        while True:
            self._schedule_changed.clear()
            try:
                moved, next_due = await self.docket.scripts.promote(now_ms(), MAX_BATCH)
            except Exception as exc:
                await self._trouble(exc)
                continue
            if moved and memory is not None:
                memory.signal.notify()
            if moved >= MAX_BATCH:
                continue
            wait = 30.0 if next_due is None else max(0.0, (next_due - now_ms()) / 1000)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(wait, 30.0)):
                    await self._schedule_changed.wait()

    async def _schedule_perpetual_tasks(self) -> None:
        now = datetime.now(UTC)
        for function in self.docket.functions.values():
            if function.perpetual is None:
                continue
            due = function.perpetual.first(now)
            await self.docket.add(function.name, key=function.name, when=due)()

    # -- leases and redelivery -----------------------------------------------------------

    async def _maintenance_loop(self) -> None:
        """Claim tasks of dead workers, and free concurrency slots their leases held."""
        interval = min(self.redelivery_ms / 2000, 15.0)
        keys = self.docket.keys
        while True:
            await asyncio.sleep(interval)
            try:
                woken = await self.docket.scripts.sweep(now_ms())
                if woken:
                    self._wake_memory_workers()
                if time.monotonic() >= self._forget_due:
                    self._forget_due = time.monotonic() + min(60.0, self.forget_consumers_ms / 1000)
                    await self._forget_consumers()
                free = self.concurrency - len(self._runs)
                if self._stopping:
                    continue
                if free <= 0:
                    # Every slot is busy, and a freed one would go to new work first: under a
                    # steady load a dead worker's tasks would wait until the backlog is gone.
                    # Note them instead, so that the claim loop takes them first.
                    overdue = await self.docket.client.xpending_range(
                        keys.stream, GROUP, min="-", max="+", count=1, idle=self.redelivery_ms
                    )
                    self._reclaim_first = bool(overdue)
                    if overdue:
                        # A memory:// claim loop may be waiting for new work since before the
                        # slots filled up: wake it, so it waits for a slot to free instead.
                        self._wake_memory_workers()
                    continue
                entries = await self._reclaim(free)
                if entries:
                    await self._start_within_slots(entries)
            except Exception as exc:
                await self._trouble(exc)

    async def _forget_consumers(self, *, mine: bool = False) -> None:
        """Remove consumers that hold no task from the group: this worker's own as it stops
        (``mine``), else those idle for ``forget_consumers_after`` — the names of killed
        workers, which would otherwise pile up forever. A consumer with pending entries is
        never removed (that would lose its tasks); a live one removed by mistake is simply
        created again by its next read."""
        keys = self.docket.keys
        consumers: list[dict[str, Any]] = await self.docket.client.xinfo_consumers(
            keys.stream, GROUP
        )
        for consumer in consumers:
            name = reply_text(consumer.get("name"))
            if int(consumer.get("pending", 0) or 0):
                continue
            if (
                (name == self.name)
                if mine
                else (
                    name != self.name
                    and int(consumer.get("idle", 0) or 0) >= self.forget_consumers_ms
                )
            ):
                await self.docket.client.xgroup_delconsumer(keys.stream, GROUP, name)

    async def _reclaim(self, count: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Take over up to ``count`` stream entries whose worker stopped renewing them.

        One ``XAUTOCLAIM`` looks at only ``10 * count`` pending entries, and the oldest
        pending entries are often live workers' (re-delivered tasks keep their old ids), so
        follow its cursor through the pending list until enough are found — a bounded number
        of pages per call, resuming where the previous call stopped.
        """
        keys = self.docket.keys
        entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        cursor = self._reclaim_cursor  # where the last reclaim stopped: the scan goes round
        for _ in range(RECLAIM_PAGES):  # bounded: a long pending list costs a few calls a tick
            if len(entries) >= count:
                break
            cursor, claimed, *_ = await self.docket.client.xautoclaim(
                keys.stream,
                GROUP,
                self.name,
                self.redelivery_ms,
                cursor,
                count=count - len(entries),
            )
            entries += [(sid, fields) for sid, fields in claimed if fields]
            if cursor in (b"0-0", "0-0"):
                break
        self._reclaim_cursor = cursor
        if entries:
            log.info("reclaimed %d task(s) from unresponsive workers", len(entries))
        return entries

    async def _renew_loop(self) -> None:
        """Keep the leases of long-running tasks fresh so they are not redelivered."""
        interval = self.redelivery_ms / 4000
        keys = self.docket.keys
        while True:
            await asyncio.sleep(interval)
            old = [r for r in self._runs.values() if time.monotonic() - r.started >= interval]
            if not old:
                continue
            lease = now_ms() + self.redelivery_ms
            try:
                async with self.docket.client.pipeline(transaction=False) as pipe:
                    pipe.xclaim(keys.stream, GROUP, self.name, 0, [r.sid for r in old], justid=True)
                    for run in old:
                        if run.limit:
                            pipe.zadd(keys.limit(run.limit[0]), {run.key: lease}, xx=True)
                    await pipe.execute()
            except Exception as exc:
                await self._trouble(exc)

    # -- connection trouble --------------------------------------------------------------

    async def _backoff(self, exc: BaseException) -> None:
        if not self._outage:
            self._outage = True
            self._outage_delay = 0.05
            log.warning("worker %s: Redis unreachable (%s); retrying", self.name, exc)
        await asyncio.sleep(self._outage_delay)
        self._outage_delay = min(self._outage_delay * 2, 2.0)

    async def _trouble(self, exc: BaseException) -> None:
        """Whatever goes wrong talking to Redis, a worker loop keeps going."""
        if isinstance(exc, CONNECTION_ERRORS):
            await self._backoff(exc)
            return
        text = str(exc)
        if isinstance(exc, ResponseError) and ("NOGROUP" in text or "UNBLOCKED" in text):
            log.warning(
                "worker %s: the stream or its group is gone (purged, or Redis lost its data);"
                " recreating it",
                self.name,
            )
            with contextlib.suppress(Exception):
                await self.docket.ensure_group()
            return
        log.error("worker %s: unexpected error (%s); retrying", self.name, exc, exc_info=exc)
        await asyncio.sleep(1.0)

    def _recovered(self) -> None:
        if self._outage:
            self._outage = False
            log.warning("worker %s: Redis reachable again; resuming", self.name)

    async def _with_retry(self, action: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await action()
                self._recovered()
                return
            except CONNECTION_ERRORS as exc:
                await self._backoff(exc)
