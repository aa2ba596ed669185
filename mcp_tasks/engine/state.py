"""What a task's execution looks like from outside: status, attempts, progress, outcome.

The run hash in Redis stores plain strings; this module is the one translation between those
fields and typed Python objects. An ended task keeps its long values in a key beside the hash
(:meth:`.keys.Keys.large`); :func:`with_large` puts them back before anything reads them.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from .clock import time_from_ms, utc_now
from .codec import PLAIN, Codec
from .serialization import from_json_text


class Status(enum.StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})

Raw = dict[bytes, bytes]
"""A run hash as redis-py reads it."""

LARGE_FIELD = b"large"
"""In the run hash of an ended task whose long values are in its large key: their names,
comma-separated, or ``*`` (too many to list)."""


def with_large(raw: Raw, large: bytes | None) -> Raw:
    """The run hash with the values its task moved to its large key as it ended (netstrings,
    name then value, written by ``settle`` in ``lua/common.lua``) put back under it: what was
    written to the hash since wins. A large key the hash does not mention is not this
    record's (a task of the same key whose hash expired first): ignored."""
    if not large or LARGE_FIELD not in raw:
        return raw
    merged: Raw = {}
    at = 0
    while at < len(large):
        name, at = _netstring(large, at)
        merged[name], at = _netstring(large, at)
    merged.update(raw)
    del merged[LARGE_FIELD]
    return merged


def moved_names(marker: bytes | None) -> set[str] | None:
    """The names of the values an ended task moved to its large key, from its run hash's
    ``large`` field: an empty set if none, None if they were too many to be listed."""
    if not marker:
        return set()
    return None if marker == b"*" else set(marker.decode().split(","))


def lacks_large(raw: Raw, large: bytes | None) -> bool:
    """Whether this pair of reads missed the large values the run hash says it has: the
    task was replaced between the two reads (read both again)."""
    return large is None and bool(raw.get(LARGE_FIELD))


def _netstring(data: bytes, at: int) -> tuple[bytes, int]:
    colon = data.index(b":", at)
    end = colon + 1 + int(data[at:colon])
    return data[colon + 1 : end], end + 1


class TaskProgress(BaseModel):
    """The progress a running task reported: ``current`` of ``total`` (if known), and a message."""

    model_config = ConfigDict(frozen=True)

    current: float = 0
    total: float | None = None
    message: str | None = None


class TaskError(BaseModel):
    """Why a task failed: the exception's type and message, and a shortened traceback."""

    model_config = ConfigDict(frozen=True)

    type: str
    message: str
    traceback: str | None = None


class ExecutionState(BaseModel):
    """A snapshot of one task's execution, as stored in Redis."""

    model_config = ConfigDict(frozen=True)

    key: str
    function: str
    status: Status
    attempt: int = 0
    worker: str | None = None
    created_at: datetime
    updated_at: datetime
    when: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: TaskProgress | None = None
    result: Any = None
    error: TaskError | None = None
    cancel_requested: bool = False
    meta: dict[str, Any] = {}
    questions: dict[str, Any] = {}
    """Questions the running task asked (:meth:`TaskContext.ask`) that await an answer."""

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @classmethod
    def from_hash(cls, raw: Raw, codec: Codec = PLAIN) -> ExecutionState:
        """Parse a run hash (with its large values put back, :func:`with_large`); sealed
        payloads are opened with ``codec`` (a wrong or missing key raises
        :class:`~.codec.CipherError`)."""
        f = {k.decode(): v for k, v in raw.items()}
        status = Status(f["status"].decode())
        created, updated = time_from_ms(f.get("created")), time_from_ms(f.get("updated"))
        return cls(
            key=f["key"].decode() if "key" in f else "",
            function=f["fn"].decode() if "fn" in f else "",
            status=status,
            attempt=int(f.get("attempt", b"0")),
            worker=f["worker"].decode() or None if "worker" in f else None,
            created_at=created or updated or utc_now(),
            updated_at=updated or utc_now(),
            when=time_from_ms(f.get("when")),
            started_at=time_from_ms(f.get("started")),
            finished_at=time_from_ms(f.get("finished")) if status.terminal else None,
            progress=TaskProgress.model_validate(from_json_text(f["progress"]))
            if "progress" in f
            else None,
            result=from_json_text(codec.open(f["result"]))
            if status is Status.COMPLETED and "result" in f
            else None,
            error=TaskError.model_validate(from_json_text(codec.open(f["error"])))
            if f.get("error")
            else None,
            cancel_requested=f.get("cancel") == b"1",
            meta=from_json_text(f["meta"]) if f.get("meta") else {},
            questions={
                name[4:]: from_json_text(codec.open(value))
                for name, value in f.items()
                if name.startswith("ask:")
                and f"answer:{name[4:]}" not in f
                and name[4:].split("-", 1)[0] == f.get("attempt", b"").decode()
            }
            if status is Status.RUNNING
            else {},
        )
