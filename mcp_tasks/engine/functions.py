"""Registered task functions and the options that shape how they run.

A call crosses Redis as JSON (``{"a": [...], "k": {...}}``) made by pydantic, never pickle:
arguments are bound to the signature when the task is added, so a bad call fails at once in
the caller, and they are validated back into their annotated types on the worker.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import anyio.to_thread
from cronsim import CronSim, CronSimError
from pydantic import ConfigDict, validate_call

from . import clock
from .errors import SerializationError
from .serialization import from_json_text, to_json_text

TaskCallable = Callable[..., Any]


def _seconds(value: timedelta | float | int, what: str) -> float:
    """A non-negative duration in seconds (``what`` names it in the error)."""
    seconds = clock.seconds(value)
    if seconds < 0:
        raise ValueError(f"{what} may not be negative (got {seconds}s)")
    return seconds


@dataclass(frozen=True)
class Retry:
    """Run a failing task up to ``attempts`` times in all, waiting ``delay`` before the first
    retry and multiplying the wait by ``backoff`` each time (1 = fixed, 2 = exponential),
    never waiting longer than ``max_delay``."""

    attempts: int = 3
    delay: timedelta | float = 1.0
    backoff: float = 1.0
    max_delay: timedelta | float = 300.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Retry.attempts counts every run, the first included: at least 1")
        if self.backoff < 1:
            raise ValueError("Retry.backoff must be at least 1")
        _seconds(self.delay, "Retry.delay")
        _seconds(self.max_delay, "Retry.max_delay")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before running attempt number ``attempt + 1``."""
        base = _seconds(self.delay, "delay") * self.backoff ** max(attempt - 1, 0)
        return min(base, _seconds(self.max_delay, "max_delay"))


@dataclass(frozen=True)
class Quota:
    """Admission control for the tasks added under one ``tag`` (e.g. a caller's identity):
    at most ``max_unfinished`` of them not yet finished, and at most ``max_per_window`` added
    per ``window`` seconds. Checked atomically in Redis, so it holds across every process."""

    tag: str
    max_unfinished: int | None = None
    max_per_window: int | None = None
    window: float = 60.0

    def __post_init__(self) -> None:
        for name in ("max_unfinished", "max_per_window"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"Quota.{name} must be at least 1 (or None for no cap)")
        if self.window <= 0:
            raise ValueError("Quota.window must be positive")


@dataclass(frozen=True)
class ConcurrencyLimit:
    """At most ``max`` runs at once across all workers — of the function, or, when
    ``argument`` names a parameter, per distinct value of that argument."""

    max: int
    argument: str | None = None

    def __post_init__(self) -> None:
        if self.max < 1:
            raise ValueError("ConcurrencyLimit.max must be at least 1")


@dataclass(frozen=True)
class Perpetual:
    """Keep exactly one instance of a task scheduled: every ``every``, or on a cron
    expression (five fields, UTC). Its key is the function's name."""

    every: timedelta | float | None = None
    cron: str | None = None

    def __post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError("Perpetual takes exactly one of every= or cron=")
        if self.every is not None and _seconds(self.every, "Perpetual.every") <= 0:
            raise ValueError("Perpetual.every must be positive")
        if self.cron is not None:
            try:
                CronSim(self.cron, datetime.now(UTC))
            except CronSimError as exc:
                raise ValueError(f"invalid cron expression {self.cron!r}: {exc}") from None

    def first(self, now: datetime) -> datetime:
        return now if self.cron is None else self._next_cron(now)

    def following(self, previous: datetime | None, now: datetime) -> datetime:
        """The next due time after a run that was due at ``previous``; missed slots are skipped."""
        if self.cron is not None:
            return self._next_cron(now)
        step = timedelta(seconds=_seconds(self.every or 0, "every"))
        if previous is None:
            return now + step
        due = previous + step
        if due <= now:
            due += step * ((now - due) // step + 1)
        return due

    def _next_cron(self, after: datetime) -> datetime:
        assert self.cron is not None
        base = after.astimezone(UTC).replace(tzinfo=None)
        nxt: datetime = next(CronSim(self.cron, base))
        return nxt.replace(tzinfo=UTC)


class TaskFunction:
    """A function registered on a docket, with its run options."""

    def __init__(
        self,
        fn: TaskCallable,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: timedelta | float | None = None,
        concurrency: ConcurrencyLimit | None = None,
        perpetual: Perpetual | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"a task function must be callable, got {fn!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__qualname__", None) or repr(fn)
        self.retry = retry or Retry(attempts=1)
        self.timeout = None if timeout is None else _seconds(timeout, "timeout")
        self.concurrency = concurrency
        self.perpetual = perpetual
        self.signature = inspect.signature(fn)
        self.is_async = inspect.iscoroutinefunction(fn)
        self._validated: TaskCallable = validate_call(
            config=ConfigDict(arbitrary_types_allowed=True)
        )(fn)
        if (
            concurrency
            and concurrency.argument
            and concurrency.argument not in self.signature.parameters
        ):
            raise ValueError(
                f"ConcurrencyLimit.argument {concurrency.argument!r} "
                f"is not a parameter of {self.name}"
            )

    def encode_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """Check the call against the signature and encode it as JSON."""
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"bad arguments for task {self.name}: {exc}") from None
        try:
            return to_json_text({"a": list(args), "k": kwargs})
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"arguments of task {self.name} are not JSON-serializable: {exc}"
            ) from None

    @staticmethod
    def decode_call(raw: bytes | str) -> tuple[list[Any], dict[str, Any]]:
        call = from_json_text(raw)
        return list(call.get("a", [])), dict(call.get("k", {}))

    def limit_for(self, args: list[Any], kwargs: dict[str, Any]) -> tuple[str, int] | None:
        """The concurrency limit this call counts against: (limit name, maximum)."""
        limit = self.concurrency
        if limit is None:
            return None
        if limit.argument is None:
            return self.name, limit.max
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError:
            return self.name, limit.max
        bound.apply_defaults()
        value = to_json_text(bound.arguments.get(limit.argument))
        return f"{self.name}:{limit.argument}={value}", limit.max

    def invoke(self, args: list[Any], kwargs: dict[str, Any]) -> Awaitable[Any]:
        """Validate the decoded arguments into their annotated types and run the function;
        a plain (sync) function runs in a worker thread so it cannot block the event loop."""
        if self.is_async:
            result: Awaitable[Any] = self._validated(*args, **kwargs)
            return result
        return anyio.to_thread.run_sync(partial(self._validated, *args, **kwargs))

    @staticmethod
    def encode_result(result: Any) -> str:
        try:
            return to_json_text(result)
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"the task's result is not JSON-serializable: {exc}") from None
