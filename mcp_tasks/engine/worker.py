"""Workers: claim due tasks from the docket's stream and run them.

A worker reads with ``XREADGROUP`` only as many entries as it has free slots, starts the
whole batch with one script, and records outcomes in batches with one script too, so a
task costs a handful of Redis commands. This module is the claiming and the lifecycle;
running and recording outcomes are in :mod:`.worker_runs`, the background upkeep (schedule,
leases, dead workers, outages) in :mod:`.worker_upkeep`. It wakes on work (a blocking read
on Redis; an in-process signal on memory://), on a freed slot, on a due scheduled task and on a
cancellation, never on a fixed polling interval. A task whose worker died is claimed again
by another after ``redelivery_timeout``; a live worker renews the lease of its long tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Coroutine
from datetime import timedelta
from types import TracebackType
from typing import Any

from redis.typing import StreamIdT

from .aio import cancel_and_wait
from .clock import now_ms, seconds
from .docket import Docket
from .events import RESYNC, Event
from .functions import TaskFunction
from .keys import GROUP
from .runs import MAX_BATCH, Outcome, Run
from .scripts import StartClaim
from .work_reader import IDLE_BLOCK_MS, WorkReader, work_reader
from .worker_runs import RunsMixin

log = logging.getLogger("mcp_tasks.engine")


__all__ = ["IDLE_BLOCK_MS", "Worker", "cancel_and_wait"]


class Worker(RunsMixin):
    """Runs a docket's tasks, ``concurrency`` at a time.

    ``async with Worker(docket) as worker: await worker.run_forever()`` — leaving the block
    (or :meth:`stop`, e.g. on SIGTERM) stops claiming, lets running tasks finish within
    ``shutdown_grace`` and hands the rest back to the docket for another worker.
    """

    def __init__(
        self,
        docket: Docket,
        *,
        concurrency: int = 10,
        name: str | None = None,
        redelivery_timeout: timedelta | float = timedelta(seconds=30),
        shutdown_grace: timedelta | float = timedelta(seconds=10),
        schedule_perpetual: bool = True,
        max_deliveries: int = 10,
        forget_consumers_after: timedelta | float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.docket = docket
        self.concurrency = concurrency
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{id(self) & 0xFFFFFF:06x}"
        self.redelivery_ms = int(seconds(redelivery_timeout) * 1000)
        if self.redelivery_ms < 100:
            raise ValueError("redelivery_timeout must be at least 100 ms")
        self.shutdown_grace = seconds(shutdown_grace)
        self.schedule_perpetual = schedule_perpetual
        self.max_deliveries = max_deliveries
        """A task handed out this many times whose workers all died is failed, not re-run."""
        forget = seconds(forget_consumers_after) if forget_consumers_after is not None else None
        self.forget_consumers_ms = (
            int(forget * 1000) if forget is not None else max(10 * self.redelivery_ms, 600_000)
        )
        """A dead worker's consumer that holds no task and has been idle this long is removed
        from the group (default: 10 x the redelivery timeout, at least 10 minutes)."""
        self._forget_due = 0.0
        self._runs: dict[str, Run] = {}
        self._slot_freed = asyncio.Event()
        self._starting = asyncio.Lock()
        self._schedule_changed = asyncio.Event()
        self._outcomes: list[Outcome] = []
        self._outcome_ready = asyncio.Event()
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._cancellers: set[asyncio.Task[None]] = set()
        self._reader: WorkReader | None = None
        self._background: list[asyncio.Task[None]] = []
        self._claimer: asyncio.Task[None] | None = None
        self._until_finished = False
        self._reclaim_first = False
        self._reclaim_cursor: bytes | str = "0-0"
        """Dead workers' tasks wait: the next freed slot takes them before any new task."""
        self._outage = False
        self._outage_delay = 0.05

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        docket = self.docket
        self._reader = work_reader(docket.backend, docket.client, docket.keys, self.name)
        docket.hub.on_control_event(self._on_event)
        await docket.hub.start()
        # Join the group now, not at the first task claimed (an empty XREADGROUP creates no
        # consumer): `mcp-tasks status` and the dashboard list a worker from its start.
        await self._with_retry(self._join_group)
        if self.schedule_perpetual:
            await self._with_retry(self._schedule_perpetual_tasks)
        self._background = [
            asyncio.create_task(self._finish_loop(), name="mcp-tasks finisher"),
            asyncio.create_task(self._promote_loop(), name="mcp-tasks scheduler"),
            asyncio.create_task(self._maintenance_loop(), name="mcp-tasks maintenance"),
            asyncio.create_task(self._renew_loop(), name="mcp-tasks leases"),
        ]

    async def _join_group(self) -> None:
        await self.docket.client.xgroup_createconsumer(self.docket.keys.stream, GROUP, self.name)

    async def run_forever(self) -> None:
        """Claim and run tasks until :meth:`stop` is called."""
        await self._claim()

    async def run_until_finished(self) -> None:
        """Run until nothing is queued, running or scheduled (perpetual tasks aside)."""
        self._until_finished = True
        try:
            await self._claim()
        finally:
            self._until_finished = False
        await self._drain_outcomes()

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming; give running tasks ``grace`` seconds, then hand them back."""
        if self._stopping:
            return
        self._stopping = True
        self._stop_requested.set()
        grace = self.shutdown_grace if grace is None else grace
        if self._claimer is not None:
            await cancel_and_wait(self._claimer)
        running = [r.task for r in self._runs.values() if r.task is not None]
        if running:
            await asyncio.wait(running, timeout=grace)
            stragglers = []
            for run in list(self._runs.values()):
                if run.task is not None and not run.task.done():
                    run.handing_back = True
                    stragglers.append(cancel_and_wait(run.task))
            await asyncio.gather(*stragglers)
        await self._drain_outcomes()
        with contextlib.suppress(Exception):  # Redis may be gone: the consumer then stays
            await self._forget_consumers(mine=True)
        self.docket.hub.remove_listener(self._on_event)
        for task in self._background:
            await cancel_and_wait(task)
        self._background = []
        if self._reader is not None:
            await self._reader.close()
            self._reader = None

    def request_stop(self) -> None:
        """Signal-handler friendly: begin a graceful stop without awaiting it."""
        if self._claimer is not None:
            self._claimer.cancel()

    # -- claiming ------------------------------------------------------------------------

    async def _claim(self) -> None:
        self._claimer = asyncio.current_task()
        try:
            while not self._stopping:
                free = self.concurrency - len(self._runs)
                if free <= 0:
                    self._slot_freed.clear()
                    await self._slot_freed.wait()
                    continue
                try:
                    if self._reclaim_first:
                        wanted = min(free, MAX_BATCH)
                        entries = await self._reclaim(wanted)
                        self._reclaim_first = len(entries) >= wanted  # maybe more of them
                        if entries:
                            await self._start_within_slots(entries)
                            continue
                    entries = await self._read(min(free, MAX_BATCH))
                    if entries:
                        await self._start_within_slots(entries)
                    elif self._until_finished and await self._finished():
                        return
                    self._recovered()
                except Exception as exc:
                    await self._trouble(exc)
        except asyncio.CancelledError:
            self._claimer = None
            if not self._stopping:
                # request_stop(): a signal asked for a graceful stop.
                await self.stop()
            return
        finally:
            self._claimer = None

    async def _read(self, count: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
        assert self._reader is not None
        slot_freed = None
        if self._runs and self._until_finished:
            # a run ending may be the last: look whether all is done
            self._slot_freed.clear()
            slot_freed = self._slot_freed
        draining = self._until_finished and not self._runs
        return await self._reader.read(
            count,
            stop=self._stop_requested,
            slot_freed=slot_freed,
            finished=self._finished if draining else None,
        )

    async def _start_within_slots(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Start what there are slots for. The claim and maintenance loops both start tasks,
        each after an await that lets the other fill slots: one at a time, counting afresh."""
        async with self._starting:
            await self._start(await self._within_slots(entries))

    async def _within_slots(
        self, entries: list[tuple[bytes, dict[bytes, bytes]]]
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """The entries there is a free slot for now; the rest are set aside for the next one.

        A read asks for as many entries as slots were free when it began, and on Redis it may
        block for seconds; the maintenance loop can fill those slots meanwhile (taking over a
        dead worker's tasks), and then running them all would break ``concurrency``. The
        extra entries stay this worker's but are marked idle past the redelivery timeout,
        which makes them overdue: the claim loop takes them first when a slot frees, and an
        idle worker's maintenance tick may take them sooner (JUSTID: setting them aside
        is not itself a delivery).
        """
        free = max(self.concurrency - len(self._runs), 0)
        if len(entries) <= free:
            return entries
        aside: list[StreamIdT] = [sid for sid, _ in entries[free:]]
        first: bytes = entries[free][0]
        stream, idle = self.docket.keys.stream, self.redelivery_ms + 1  # overdue at once
        await self.docket.client.xclaim(stream, GROUP, self.name, 0, aside, idle=idle, justid=True)
        self._reclaim_first = True
        self._reclaim_cursor = first  # the next reclaim's scan starts at them
        log.debug("set %d task(s) aside: every slot is busy", len(aside))
        return entries[:free]

    async def _finished(self) -> bool:
        if self._runs or self._outcomes:
            return False
        stream, scheduled = await self.docket.backlog()
        if stream:
            return False
        perpetual = {f.name for f in self.docket.functions.values() if f.perpetual}
        return all(key in perpetual for key in scheduled)

    async def _start(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Start a batch of claimed entries with one script; spawn the ones that may run."""
        docket = self.docket
        now = now_ms()
        candidates: list[Run] = []
        for sid_raw, fields in entries:
            if not fields:  # deleted while pending: nothing to run
                continue
            sid = sid_raw.decode()
            key = fields[b"key"].decode()
            fn_name = fields[b"fn"].decode()
            function = docket.functions.get(fn_name)
            unreadable: Exception | None = None
            try:
                call_args, call_kwargs = TaskFunction.decode_call(
                    docket.codec.open(fields[b"call"])
                )
            except ValueError as exc:
                call_args, call_kwargs, unreadable = [], {}, exc
            limit = function.limit_for(call_args, call_kwargs) if function else None
            if limit:  # a limit's key names an argument's value: keyed-hashed when sealing
                limit = (docket.codec.name(limit[0]), limit[1])
            run = Run(key, sid, function, fn_name, call_args, call_kwargs, 0, None, limit)
            run.unreadable = unreadable
            candidates.append(run)
        if not candidates:
            return
        verdicts = await docket.scripts.start(
            self.name,
            now,
            now + self.redelivery_ms,
            docket.result_ttl_ms,
            self.max_deliveries,
            [StartClaim(run.sid, run.key, run.limit) for run in candidates],
        )
        for run, verdict in zip(candidates, verdicts, strict=True):
            if verdict.verdict != "run":
                continue
            run.attempt, run.when_ms, run.ttl = verdict.attempt, verdict.when_ms, verdict.ttl
            run.label, run.meta, run.started_ms = verdict.label or run.fn_name, verdict.meta, now
            self._runs[run.key] = run
            run.task = asyncio.create_task(self._execute(run), name=f"mcp-tasks {run.key}")

    # -- events --------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.status == "cancelling":
            self._cancel_run(event.key)
        elif event.status == "scheduled":
            self._schedule_changed.set()
        elif event.status == RESYNC:
            # Messages published while the subscription was down are lost: a cancellation
            # among them would go unheard, so read the flags of the tasks held here.
            self._schedule_changed.set()
            self._spawn(self._recheck_cancellations())

    def _cancel_run(self, key: str) -> None:
        run = self._runs.get(key)
        if run is not None and run.task is not None and not run.task.done():
            run.cancelled_by_user = True
            if run.context is not None:
                run.context.cancel_requested = True
            self._spawn(cancel_and_wait(run.task))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self._cancellers = {c for c in self._cancellers if not c.done()}
        self._cancellers.add(asyncio.create_task(coroutine))

    async def _recheck_cancellations(self) -> None:
        keys = list(self._runs)
        if not keys:
            return
        async with self.docket.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(self.docket.keys.run(key), "cancel")
            flags = await pipe.execute()
        for key, flag in zip(keys, flags, strict=True):
            if flag == b"1":
                self._cancel_run(key)
