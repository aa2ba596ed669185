"""OpenTelemetry spans around adding and running tasks, when ``opentelemetry-api`` is there.

Adding a task opens a PRODUCER span and stores its W3C trace context (``traceparent``,
``tracestate``) in the task's metadata under ``meta["trace"]``. The worker that runs the
task, in whichever process, reads it back and opens the run's CONSUMER span as a child of
that span, so one trace shows the request that created a task, its wait in the queue and its
execution. Each process that should record spans configures an OpenTelemetry SDK (a tracer
provider and exporter) as usual, the worker processes included. Without ``opentelemetry-api``,
or while no tracer provider is configured, no span is made and no context is stored (a few
microseconds per batch); the engine imports OpenTelemetry nowhere else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .serialization import from_json_text

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - opentelemetry-api ships with fastmcp and mcp
    trace = None  # type: ignore[assignment]

META_KEY = "trace"
"""Where a task's metadata carries the trace context of the span that added it."""

_SYSTEM = "mcp-tasks"
_tracer_cache: tuple[Any, Any] | None = None


def active() -> bool:
    """Whether spans are recorded at all: OpenTelemetry is installed and a tracer provider
    (an SDK) was configured. Without one every span would be a no-op, so skip them."""
    return trace is not None and not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider
    )


def _tracer() -> Any:
    """The tracer of the current global provider (looked up again if a test swaps it)."""
    global _tracer_cache
    provider = trace.get_tracer_provider()
    if _tracer_cache is None or _tracer_cache[0] is not provider:
        from .. import __version__

        _tracer_cache = (provider, provider.get_tracer("mcp_tasks.engine", __version__))
    return _tracer_cache[1]


@contextlib.contextmanager
def adding(
    docket: str, label: str, function: str, keys: list[str]
) -> Iterator[dict[str, str] | None]:
    """A span around adding ``keys``; yields the trace context to store with the tasks
    (None when there is nothing to propagate: no OpenTelemetry, or no recording span)."""
    if not active():
        yield None
        return
    attributes: dict[str, Any] = {
        "messaging.system": _SYSTEM,
        "messaging.operation.type": "send",
        "messaging.destination.name": docket,
        "mcp_tasks.label": label,
        "mcp_tasks.function": function,
    }
    if len(keys) == 1:
        attributes["messaging.message.id"] = keys[0]
    else:
        attributes["messaging.batch.message_count"] = len(keys)
    with _tracer().start_as_current_span(
        f"enqueue {label}", kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        if not span.get_span_context().is_valid:
            yield None
            return
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield carrier or None


def refused(reason: str) -> None:
    """Mark the current ``adding`` span as a refusal by a quota: an answer, not a failure,
    so the span keeps an unset status and says why nothing was sent."""
    if active():
        trace.get_current_span().set_attribute("mcp_tasks.refused", reason)


class RunSpan:
    """The span of one run of a task, current while the task's function runs."""

    def __init__(self, span: Any, token: object) -> None:
        self._span = span
        self._token = token
        self._ended = False

    def end(
        self, outcome: str, error: BaseException | None = None, *, errored: bool = False
    ) -> None:
        """Record how the run ended (a worker outcome: completed, failed, retry, ...)."""
        if self._span is None or self._ended:
            return
        self._ended = True
        self._span.set_attribute("mcp_tasks.outcome", outcome)
        if error is not None:
            self._span.record_exception(error)
            self._span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        elif errored:
            self._span.set_status(Status(StatusCode.ERROR, "the result reports an error"))
        self._span.end()

    def detach(self) -> None:
        """Leave the span's context (and end the span, if :meth:`end` was not reached)."""
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None
        if self._span is not None and not self._ended:
            self._ended = True
            self._span.end()


def start_run(
    docket: str, label: str, function: str, key: str, attempt: int, meta: bytes | str
) -> RunSpan:
    """Open the run span of a task, as a child of the span that added it (read from the
    task's raw metadata JSON), and make it current in this (the task's own) context."""
    if not active():
        return RunSpan(None, None)
    parent = None
    if meta and b'"trace"' in (meta if isinstance(meta, bytes) else meta.encode()):
        with contextlib.suppress(Exception):  # metadata is the caller's: never fail a run on it
            carrier = from_json_text(meta).get(META_KEY)
            if isinstance(carrier, dict):
                parent = propagate.extract(carrier)
    span = _tracer().start_span(
        f"run {label}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": _SYSTEM,
            "messaging.operation.type": "process",
            "messaging.destination.name": docket,
            "messaging.message.id": key,
            "mcp_tasks.label": label,
            "mcp_tasks.function": function,
            "mcp_tasks.attempt": attempt,
        },
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    return RunSpan(span, token)
