"""A worker's runs: what it holds for each task, running one, and recording outcomes.

A run goes from the start script (``worker.py`` claims and starts whole batches) through
:meth:`RunsMixin._execute` (the function, its timeout, its failure, perpetual rescheduling)
to an :class:`Outcome`; outcomes are written in batches by one finish script per batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from datetime import UTC, datetime

import anyio

from . import tracing
from .clock import from_ms, now_ms, to_ms
from .context import TaskContext, running
from .docket import Docket
from .errors import ReplicasBehind, SerializationError
from .functions import TaskFunction
from .runs import COUNTERS, MAX_BATCH, Outcome, Run
from .scripts import FinishRow
from .serialization import to_json_text
from .state import TaskError
from .worker_upkeep import UpkeepMixin

log = logging.getLogger("mcp_tasks.engine")


class RunsMixin(UpkeepMixin):
    """Running tasks and recording their outcomes (part of :class:`~.worker.Worker`)."""

    docket: Docket
    name: str
    _runs: dict[str, Run]
    _outcomes: list[Outcome]
    _outcome_ready: asyncio.Event
    _slot_freed: asyncio.Event
    _schedule_changed: asyncio.Event

    async def _execute(self, run: Run) -> None:
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
            outcome = Outcome(run, "completed", sealed)
        except asyncio.CancelledError:
            outcome = Outcome(run, "requeue") if run.handing_back else Outcome(run, "cancelled")
        except Exception as exc:  # the task's own failure: recorded, never raised here
            failure = exc
            outcome = self._failure(run, exc)
        finally:
            running.reset(token)
        run.counter = COUNTERS.get(outcome.outcome, "")
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
            previous = from_ms(run.when_ms)
            due = function.perpetual.following(previous, now)
            outcome = Outcome(run, "again", outcome.data, to_ms(due))
        self._outcomes.append(outcome)
        self._outcome_ready.set()

    def _failure(self, run: Run, exc: BaseException) -> Outcome:
        if isinstance(exc, TimeoutError) and run.function and run.function.timeout:
            exc = TimeoutError(f"task exceeded its timeout of {run.function.timeout:g}s")
        error = to_json_text(  # the message may quote an argument: lone surrogates and all
            TaskError(
                type=type(exc).__name__,
                message=str(exc) or type(exc).__name__,
                traceback="".join(traceback.format_exception(exc))[-4000:],
            ).model_dump()
        )
        error_data = self.docket.codec.seal(error)
        function = run.function
        if (
            function is not None
            and not isinstance(exc, SerializationError)
            and run.unreadable is None
            and run.attempt < function.retry.attempts
        ):
            due = now_ms() + int(function.retry.delay_before(run.attempt) * 1000)
            return Outcome(run, "retry", error_data, due)
        return Outcome(run, "failed", error_data)

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

    async def _finish(self, batch: list[Outcome]) -> None:
        rows = [
            FinishRow(
                sid=item.run.sid,
                key=item.run.key,
                outcome=item.outcome,
                data=item.data,
                when_ms=item.when_ms,
                limit=item.run.limit[0] if item.run.limit else None,
                ttl=item.run.ttl,
                counter=item.run.counter,
                label=item.run.label or item.run.fn_name,
                # a hand-back is no finished run: no run time
                started_ms=item.run.started_ms if item.outcome != "requeue" else "",
            )
            for item in batch
        ]
        try:
            await self.docket.scripts.finish(now_ms(), self.docket.result_ttl_ms, rows)
        except ReplicasBehind as exc:
            # The outcomes stand on the primary and were published; only their survival of
            # a failover is unconfirmed (if lost, the runs are redelivered, not lost).
            log.warning("%d finished task(s) not confirmed by replicas: %s", len(rows), exc)
        if any(item.outcome in ("retry", "again") for item in batch):
            self._schedule_changed.set()
        if any(item.run.limit or item.outcome == "requeue" for item in batch):
            self._wake_memory_workers()  # it may have put tasks back on the stream
