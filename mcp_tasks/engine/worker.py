"""Workers: claim due tasks from the docket's stream and run them.

A worker reads with ``XREADGROUP`` only as many entries as it has free slots, starts the
whole batch with one script, and records outcomes in batches with one script too, so a
task costs a handful of Redis commands. It wakes on work (a blocking read on Redis; an
in-process signal on memory://), on a freed slot, on a due scheduled task and on a
cancellation, never on a fixed polling interval. A task whose worker died is claimed again
by another after ``redelivery_timeout``; a live worker renews the lease of its long tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import anyio
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.typing import StreamIdT

from . import tracing
from .connection import CONNECTION_ERRORS, close_client
from .context import TaskContext, running
from .docket import Docket
from .errors import SerializationError
from .events import RESYNC, Event
from .functions import TaskFunction
from .keys import GROUP
from .state import TaskError, now_ms

log = logging.getLogger("mcp_tasks.engine")

MAX_BATCH = 200
IDLE_BLOCK_MS = 10_000


@dataclass(eq=False)
class _Run:
    """One task this worker holds, from its start script to its finish script."""

    key: str
    sid: str
    function: TaskFunction | None
    fn_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    attempt: int
    when_ms: int | None
    limit: tuple[str, int] | None
    ttl: str = ""
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    cancelled_by_user: bool = False
    handing_back: bool = False
    context: TaskContext | None = None
    unreadable: Exception | None = None
    """Why the stored call could not be decoded (e.g. sealed with another key): the run
    fails with it instead of running with no arguments."""
    label: str = ""
    meta: bytes = b""
    started_ms: int = 0
    counter: str = ""
    """The statistic the run's outcome counts towards (see finish.lua)."""


@dataclass(frozen=True)
class _Outcome:
    run: _Run
    outcome: str
    data: str | bytes = ""
    when_ms: int = 0


class Worker:
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
        self.redelivery_ms = int(_seconds(redelivery_timeout) * 1000)
        if self.redelivery_ms < 100:
            raise ValueError("redelivery_timeout must be at least 100 ms")
        self.shutdown_grace = _seconds(shutdown_grace)
        self.schedule_perpetual = schedule_perpetual
        self.max_deliveries = max_deliveries
        """A task handed out this many times whose workers all died is failed, not re-run."""
        forget = _seconds(forget_consumers_after) if forget_consumers_after is not None else None
        self.forget_consumers_ms = (
            int(forget * 1000) if forget is not None else max(10 * self.redelivery_ms, 600_000)
        )
        """A dead worker's consumer that holds no task and has been idle this long is removed
        from the group (default: 10 x the redelivery timeout, at least 10 minutes)."""
        self._forget_due = 0.0
        self._runs: dict[str, _Run] = {}
        self._slot_freed = asyncio.Event()
        self._starting = asyncio.Lock()
        self._drained_at: asyncio.Event | None = None
        """memory://: the work signal as it was before a read that emptied the stream."""
        self._schedule_changed = asyncio.Event()
        self._outcomes: list[_Outcome] = []
        self._outcome_ready = asyncio.Event()
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._cancellers: set[asyncio.Task[None]] = set()
        self._reader: Redis | None = None
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
        if docket.backend.memory is None:
            # Its reads block for up to IDLE_BLOCK_MS: the socket must wait longer than that,
            # or every idle read would end in a client-side timeout and a reconnect.
            self._reader = docket.backend.client(
                max_connections=2, socket_timeout=IDLE_BLOCK_MS / 1000 + 10
            )
        docket.hub.on_every_event(self._on_event)
        await docket.hub.start()
        if self.schedule_perpetual:
            await self._with_retry(self._schedule_perpetual_tasks)
        self._background = [
            asyncio.create_task(self._finish_loop(), name="mcp-tasks finisher"),
            asyncio.create_task(self._promote_loop(), name="mcp-tasks scheduler"),
            asyncio.create_task(self._maintenance_loop(), name="mcp-tasks maintenance"),
            asyncio.create_task(self._renew_loop(), name="mcp-tasks leases"),
        ]

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
            await close_client(self._reader)
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
        memory = self.docket.backend.memory
        if memory is not None:
            # fakeredis does not block: take the signal first, then look, then wait on it.
            # Every XADD in this process notifies the signal, so after a read that found
            # fewer entries than it asked for, nothing new is there until it fires: skip the
            # look (each fakeredis XREADGROUP costs ~0.1 ms of this process's CPU).
            signal = memory.signal.current()
            drained, self._drained_at = self._drained_at is signal, None
            if not drained:
                entries = await self._xreadgroup(self.docket.client, count, None)
                if entries:
                    if len(entries) < count:
                        self._drained_at = signal
                    return entries
            if self._until_finished and not self._runs and await self._finished():
                return []
            waits = [
                asyncio.ensure_future(signal.wait()),
                asyncio.ensure_future(self._stop_requested.wait()),
            ]
            if self._runs and self._until_finished:
                # a run ending may be the last: look whether all is done (Redis: block=100)
                self._slot_freed.clear()
                waits.append(asyncio.ensure_future(self._slot_freed.wait()))
            try:
                await asyncio.wait(
                    waits, timeout=IDLE_BLOCK_MS / 1000, return_when="FIRST_COMPLETED"
                )
            finally:
                for w in waits:
                    w.cancel()
            return []
        assert self._reader is not None
        block = 100 if self._until_finished else IDLE_BLOCK_MS
        entries = await self._xreadgroup(self._reader, count, block)
        return entries

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

    async def _xreadgroup(
        self, client: Redis, count: int, block: int | None
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        reply = await client.xreadgroup(
            GROUP, self.name, {self.docket.keys.stream: ">"}, count=count, block=block
        )
        if not reply:
            return []
        entries: list[tuple[bytes, dict[bytes, bytes]]] = reply[0][1]  # type: ignore[index,assignment]
        return entries

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
        keys = docket.keys
        now = now_ms()
        script_keys = [keys.stream, keys.events, keys.limits, keys.stats]
        args: list[Any] = [GROUP, self.name, now, now + self.redelivery_ms, docket.result_ttl_ms]
        args.append(self.max_deliveries)
        candidates: list[_Run] = []
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
            run = _Run(key, sid, function, fn_name, call_args, call_kwargs, 0, None, limit)
            run.unreadable = unreadable
            candidates.append(run)
            run_key = keys.run(key)
            if limit:
                script_keys += [run_key, keys.limit(limit[0]), keys.waiting(limit[0])]
                args += [sid, key, limit[1], limit[0]]
            else:
                script_keys += [run_key, run_key, run_key]
                args += [sid, key, 0, ""]
        if not candidates:
            return
        verdicts = await docket.scripts.run("start", script_keys, args)
        for run, (verdict, attempt, when, ttl, label, meta) in zip(
            candidates, verdicts, strict=True
        ):
            if verdict != b"run":
                continue
            run.attempt = int(attempt)
            run.when_ms = int(when) if when else None
            run.ttl = ttl.decode()
            run.label, run.meta, run.started_ms = label.decode() or run.fn_name, meta, now
            self._runs[run.key] = run
            run.task = asyncio.create_task(self._execute(run), name=f"mcp-tasks {run.key}")

    # -- running -------------------------------------------------------------------------

    async def _execute(self, run: _Run) -> None:
        function = run.function
        ctx = TaskContext(self.docket, run.key, run.attempt, run.fn_name)
        run.context = ctx
        token = running.set(ctx)
        try:  # a run that never got its outcome would hold its slot and lease forever
            span = tracing.start_run(
                self.docket.name, run.label, run.fn_name, run.key, run.attempt, run.meta
            )
        except Exception:
            log.exception("task %s: could not open its trace span", run.key)
            span = tracing.RunSpan(None, None)
        failure: BaseException | None = None
        try:
            if function is None:
                raise LookupError(
                    f"function {run.fn_name!r} is not registered on worker {self.name}"
                )
            if run.unreadable is not None:
                raise run.unreadable
            if function.timeout is not None:
                with anyio.fail_after(function.timeout):
                    result = await function.invoke(run.args, run.kwargs)
            else:
                result = await function.invoke(run.args, run.kwargs)
            sealed = self.docket.codec.seal(TaskFunction.encode_result(result))
            outcome = _Outcome(run, "completed", sealed)
        except asyncio.CancelledError:
            outcome = _Outcome(run, "requeue") if run.handing_back else _Outcome(run, "cancelled")
        except Exception as exc:  # the task's own failure: recorded, never raised here
            failure = exc
            outcome = self._failure(run, exc)
        finally:
            running.reset(token)
        run.counter = _COUNTERS.get(outcome.outcome, "")
        if outcome.outcome == "completed" and ctx.errored:
            run.counter = "failed"
        span.end(outcome.outcome, failure, errored=ctx.errored)
        span.detach()
        if (
            function is not None
            and function.perpetual
            and outcome.outcome in ("completed", "failed")
        ):
            now = datetime.now(UTC)
            previous = _from_ms(run.when_ms)
            due = function.perpetual.following(previous, now)
            outcome = _Outcome(run, "again", outcome.data, _to_ms(due))
        self._outcomes.append(outcome)
        self._outcome_ready.set()

    def _failure(self, run: _Run, exc: BaseException) -> _Outcome:
        if isinstance(exc, TimeoutError) and run.function and run.function.timeout:
            exc = TimeoutError(f"task exceeded its timeout of {run.function.timeout:g}s")
        error = TaskError(
            type=type(exc).__name__,
            message=str(exc) or type(exc).__name__,
            traceback="".join(traceback.format_exception(exc))[-4000:],
        ).model_dump_json()
        error_data = self.docket.codec.seal(error)
        function = run.function
        if (
            function is not None
            and not isinstance(exc, SerializationError)
            and run.unreadable is None
            and run.attempt < function.retry.attempts
        ):
            due = now_ms() + int(function.retry.delay_before(run.attempt) * 1000)
            return _Outcome(run, "retry", error_data, due)
        return _Outcome(run, "failed", error_data)

    # -- recording outcomes --------------------------------------------------------------

    async def _finish_loop(self) -> None:
        while True:
            await self._outcome_ready.wait()
            self._outcome_ready.clear()
            while self._outcomes:
                batch = self._outcomes[:MAX_BATCH]
                try:
                    await self._finish(batch)
                except Exception as exc:  # keep the batch and try again: never lose outcomes
                    await self._trouble(exc)
                    continue
                del self._outcomes[: len(batch)]
                self._recovered()
                for item in batch:
                    self._runs.pop(item.run.key, None)
                self._slot_freed.set()

    async def _drain_outcomes(self, deadline: float = 30.0) -> None:
        """Wait until every outcome is written; past ``deadline`` seconds (Redis down for
        good) leave the rest to redelivery rather than hang the shutdown."""
        give_up = time.monotonic() + deadline
        while self._outcomes or any(r.task and not r.task.done() for r in self._runs.values()):
            if time.monotonic() > give_up:
                log.warning(
                    "worker %s: %d outcome(s) not recorded; their tasks will be redelivered",
                    self.name,
                    len(self._outcomes),
                )
                return
            self._outcome_ready.set()
            await asyncio.sleep(0.005)

    async def _finish(self, batch: list[_Outcome]) -> None:
        keys = self.docket.keys
        script_keys = [keys.stream, keys.events, keys.scheduled, keys.stats]
        args: list[Any] = [GROUP, now_ms(), self.docket.result_ttl_ms, keys.prefix]
        for item in batch:
            run = item.run
            run_key = keys.run(run.key)
            if run.limit:
                script_keys += [run_key, keys.limit(run.limit[0]), keys.waiting(run.limit[0])]
            else:
                script_keys += [run_key, run_key, run_key]
            args += [run.sid, run.key, item.outcome, item.data, item.when_ms]
            args += [1 if run.limit else 0, run.ttl]
            ran = item.outcome != "requeue"  # a hand-back is no finished run: no run time
            args += [run.counter, run.label or run.fn_name, run.started_ms if ran else ""]
        await self.docket.scripts.run("finish", script_keys, args)
        if any(item.outcome in ("retry", "again") for item in batch):
            self._schedule_changed.set()
        if any(item.run.limit or item.outcome == "requeue" for item in batch):
            self._wake_memory_workers()  # it may have put tasks back on the stream

    def _wake_memory_workers(self) -> None:
        """On Redis an XADD wakes blocked readers; fakeredis needs the in-process signal.
        Every XADD to the stream must be followed by this (or the signal's notify): a memory://
        worker that found the stream drained does not look again until the signal fires."""
        memory = self.docket.backend.memory
        if memory is not None:
            memory.signal.notify()

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

    # -- scheduled tasks -----------------------------------------------------------------

    async def _promote_loop(self) -> None:
        keys = self.docket.keys
        memory = self.docket.backend.memory
        while True:
            self._schedule_changed.clear()
            try:
                moved, next_due = await self.docket.scripts.run(
                    "promote",
                    [keys.scheduled, keys.stream, keys.events],
                    [now_ms(), MAX_BATCH, keys.prefix],
                )
            except Exception as exc:
                await self._trouble(exc)
                continue
            if moved and memory is not None:
                memory.signal.notify()
            if moved >= MAX_BATCH:
                continue
            wait = 30.0 if next_due == -1 else max(0.0, (int(next_due) - now_ms()) / 1000)
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
                woken = await self.docket.scripts.run(
                    "sweep", [keys.limits, keys.stream, keys.events], [now_ms(), keys.prefix]
                )
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
            name = consumer.get("name")
            name = name.decode() if isinstance(name, bytes) else str(name)
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


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel a task and wait until it has ended, cancelling again if it has not.

    A single ``Task.cancel()`` can be lost: on Python 3.11 ``asyncio.wait_for`` drops a
    cancellation that races a completing future, and fakeredis (memory://) awaits that way on
    every command. Re-cancelling until the task is done makes stopping reliable.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.05)
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s ended with an error", task.get_name(), exc_info=task.exception())


RECLAIM_PAGES = 16
"""XAUTOCLAIM pages (of 10 x the wanted count each) one reclaim looks through at most."""

_COUNTERS = {
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "retry": "retried",
}
"""Which statistic a run's outcome counts towards; a hand-back counts towards none."""


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
