"""Adding tasks: the rows the enqueue script takes, and what an add answers.

:meth:`Docket.add` and :meth:`Docket.add_many` check and encode their arguments into
:class:`Row` s; :func:`enqueue` sends a batch of rows (one function, one label) with one
script and turns the script's answers into :class:`Execution` s or a quota's refusal.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from . import clock, tracing
from .clock import now_ms
from .connection import Backend
from .errors import QuotaExceeded, ReplicasBehind
from .functions import Quota
from .scripts import EnqueueRow, QuotaCaps, Scripts
from .serialization import from_json_text, to_json_text
from .state import Status


class Store(Protocol):
    """What adding needs of a docket."""

    @property
    def scripts(self) -> Scripts: ...
    @property
    def keep_recent(self) -> int: ...
    @property
    def result_ttl_ms(self) -> int: ...
    @property
    def backend(self) -> Backend: ...


@dataclass(frozen=True, slots=True)
class Row:
    """One task for the enqueue script."""

    key: str
    mode: str
    due: int
    function: str
    call: bytes
    meta: str = ""
    ttl: str = ""
    index: str = ""
    label: str = ""


@dataclass(frozen=True)
class Execution:
    """What :meth:`Docket.add` answers: the task's key and where it now stands.

    ``created`` is false when a task with the same key was already scheduled, queued or
    running, and this call returned that one instead of adding a second.
    """

    key: str
    function: str
    status: Status
    created: bool
    added_at: datetime
    """When this call was made: the task's ``created_at`` when ``created`` is true."""


async def enqueue(
    docket: Store, rows: list[Row], carrier: dict[str, str] | None, quota: Quota | None
) -> list[Execution]:
    """Add rows of one function and label with one enqueue script; raise the quota's refusal
    (after the others were added) if it refused any."""
    now = now_ms()
    caps = None
    if quota is not None:
        caps = QuotaCaps(
            quota.tag,
            quota.max_unfinished,
            quota.max_per_window,
            window_ms=max(int(quota.window * 1000), 1),
            set_ttl_ms=max(docket.result_ttl_ms, 86_400_000),
        )
    script_rows = [
        EnqueueRow(
            key=row.key,
            mode=row.mode,
            due_ms=row.due,
            function=row.function,
            call=row.call,
            meta=with_trace(row.meta, carrier) if carrier else row.meta,
            ttl_ms=row.ttl,
            index=row.index or None,
            index_ttl_ms=int(row.ttl or docket.result_ttl_ms) + 60_000 if row.index else "",
            label=row.label or row.function,
        )
        for row in rows
    ]
    try:
        answers = await docket.scripts.enqueue(now, docket.keep_recent, caps, script_rows)
    except ReplicasBehind as exc:
        # Replicas did not confirm the new tasks: their creator gets this error, not their
        # keys, so they are withdrawn (cancelled; a worker may already have started one in
        # the time WAIT took, as with any call whose answer was lost). Best effort: the
        # primary may be on its way out, and a task lost with it was promised to nobody.
        for row, (created, _status, _wait) in zip(rows, exc.answer, strict=True):
            if created:
                with contextlib.suppress(Exception):
                    ttl = docket.result_ttl_ms
                    await docket.scripts.cancel(row.key, now_ms(), ttl, confirm=False)
        raise
    results = []
    queued = False
    refusal: QuotaExceeded | None = None
    for row, (created, status, wait_ms) in zip(rows, answers, strict=True):
        if quota is not None and status in ("rate", "unfinished"):
            if status == "rate":
                limit, retry_after = quota.max_per_window or 0, (wait_ms or 0) / 1000
                refusal = QuotaExceeded(quota.tag, status, limit, retry_after)
            else:
                refusal = QuotaExceeded(quota.tag, status, quota.max_unfinished or 0, None)
            continue
        state = Status(status)
        queued = queued or (created and state is Status.QUEUED)
        added_at = datetime.fromtimestamp(now / 1000, UTC)
        results.append(Execution(row.key, row.function, state, created, added_at))
    if queued and docket.backend.memory is not None:
        docket.backend.memory.signal.notify()  # also when a refusal follows: others were added
    if refusal is not None:
        raise refusal
    return results


def new_task_key() -> str:
    """A task key with 128 bits of randomness: unguessable, so it can be handed out."""
    return secrets.token_hex(16)


def due_ms(when: datetime | None, delay: timedelta | float | None) -> int:
    if when is not None and delay is not None:
        raise ValueError("give when= or delay=, not both")
    if delay is not None:
        seconds = clock.seconds(delay)
        if seconds < 0:
            raise ValueError(f"delay may not be negative (got {seconds}s)")
        return now_ms() + int(seconds * 1000) if seconds > 0 else 0
    if when is not None:
        if when.tzinfo is None:
            raise ValueError("when= must be a timezone-aware datetime")
        return int(when.astimezone(UTC).timestamp() * 1000)
    return 0


def ttl_ms_of(ttl: timedelta | float | None) -> str:
    if ttl is None:
        return ""
    seconds = clock.seconds(ttl)
    if seconds <= 0:
        raise ValueError(f"ttl must be positive (got {seconds}s)")
    return str(round(seconds * 1000))


def encode_meta(meta: dict[str, Any] | None) -> str:
    if not meta:
        return ""
    return to_json_text(meta)


def with_trace(meta_json: str, carrier: dict[str, str]) -> str:
    """The task's metadata with the trace context of the span that adds it."""
    meta = from_json_text(meta_json) if meta_json else {}
    return encode_meta({**meta, tracing.META_KEY: carrier})


def check_label(label: str | None, function: str) -> str:
    label = function if label is None else label
    if not 0 < len(label) <= 200:
        raise ValueError("a task label must be 1-200 characters")
    return label


def split_call(
    call: tuple[Sequence[Any], dict[str, Any]] | Sequence[Any],
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """One call of :meth:`Docket.add_many`: an argument tuple, or ``(args, kwargs)`` when it
    is a pair of a sequence and a dict."""
    if (
        isinstance(call, tuple)
        and len(call) == 2
        and isinstance(call[1], dict)
        and isinstance(call[0], (list, tuple))
    ):
        return tuple(call[0]), call[1]
    return tuple(call), {}
