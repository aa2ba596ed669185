"""A docket's state at a glance, for operators (the CLI's ``status``) and dashboards.

Read-only except :func:`purge`. It reads the stream, the consumer group and the scheduled
set directly; per-task details come from the task hashes, a bounded number of them.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from redis.exceptions import ResponseError

from .clock import time_from_ms
from .codec import CipherError
from .connection import reply_text
from .depth import read_depth
from .docket import Docket
from .keys import GROUP
from .reads import read_records
from .serialization import from_json_text
from .state import Status, TaskProgress, moved_names


class WorkerInfo(BaseModel):
    name: str
    running: int
    idle_ms: int


class DocketSnapshot(BaseModel):
    name: str
    url: str
    queued: int
    """Tasks on the stream that no worker has claimed yet."""
    running: int
    """Tasks claimed by a worker and not yet finished (their stream entries are pending)."""
    scheduled: int
    workers: list[WorkerInfo]
    by_function: dict[str, dict[str, int]]
    """Active tasks (queued, running, scheduled) per function or tool, by status."""
    sampled: int
    """How many active tasks ``by_function`` looked at (it reads at most ``sample``)."""


async def snapshot(docket: Docket, *, sample: int = 1000) -> DocketSnapshot:
    keys, client = docket.keys, docket.client
    depth = await read_depth(docket)
    consumers: list[dict[str, Any]] = await client.xinfo_consumers(keys.stream, GROUP)
    workers = [
        WorkerInfo(
            name=reply_text(c.get("name")),
            running=int(c.get("pending", 0) or 0),
            idle_ms=int(c.get("idle", 0) or 0),
        )
        for c in consumers
    ]
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(  # type: ignore[assignment]
        keys.stream, count=sample
    )
    later: list[bytes] = await client.zrange(keys.scheduled, 0, sample - 1)  # type: ignore[assignment]
    task_keys = [fields[b"key"].decode() for _sid, fields in entries if fields]
    task_keys += [k.decode() for k in later]
    states = await summaries(docket, task_keys[:sample])  # no payloads: no key needed
    by_function: dict[str, Counter[str]] = {}
    for state in states:
        by_function.setdefault(state.label, Counter())[state.status.value] += 1
    return DocketSnapshot(
        name=docket.name,
        url=redact(docket.url),
        queued=depth.unclaimed,
        running=depth.running,
        scheduled=depth.scheduled,
        workers=workers,
        by_function={k: dict(v) for k, v in sorted(by_function.items())},
        sampled=len(states),
    )


async def purge(docket: Docket) -> int:
    """Delete every key of the docket (tasks, results, schedules). Returns keys deleted."""
    deleted = 0
    batch: list[bytes] = []
    async for key in docket.client.scan_iter(match=docket.keys.pattern, count=1000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += int(await docket.client.delete(*batch))
            batch = []
    if batch:
        deleted += int(await docket.client.delete(*batch))
    await docket.ensure_group()
    return deleted


def redact(url: str) -> str:
    """A URL without its password, for display."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


class TaskSummary(BaseModel):
    """What a dashboard may show of *any* caller's task: where it stands, never what it
    carries — no arguments, result, error, questions or metadata (which names its owner)."""

    key: str
    label: str
    status: Status
    attempt: int
    worker: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    when: datetime | None
    progress: TaskProgress | None
    errored: bool
    """Completed, with a result that reports an error (see ``TaskContext.mark_errored``)."""


_SUMMARY_FIELDS = (
    "status",
    "label",
    "fn",
    "attempt",
    "worker",
    "created",
    "updated",
    "started",
    "finished",
    "when",
    "progress",
    "errored",
    "large",
)
_MOVABLE = frozenset(_SUMMARY_FIELDS) - {"large"}
"""What an ended task may have moved to its large key (any value over 64 bytes): usually a
long progress report, at times a long label or worker name."""


async def summaries(docket: Docket, task_keys: list[str]) -> list[TaskSummary]:
    """The summaries of these tasks, in this order; expired or unknown ones are left out.
    Only the fields a summary shows are read (HMGET), never the payloads, except for an
    ended task that moved one of them to its large key (a long progress report, say): that
    key holds its payloads too (read, and all but the summary's fields dropped)."""
    if not task_keys:
        return []
    async with docket.client.pipeline(transaction=False) as pipe:
        for key in task_keys:
            pipe.hmget(docket.keys.run(key), _SUMMARY_FIELDS)
        rows: list[list[bytes | None]] = await pipe.execute()
    fields = [dict(zip(_SUMMARY_FIELDS, row, strict=True)) for row in rows]
    moved = []
    for key, f in zip(task_keys, fields, strict=True):
        names = moved_names(f["large"])
        if names is None or names & _MOVABLE:
            moved.append((key, f))
    if moved:
        records = await read_records(docket.client, docket.keys, [key for key, _ in moved])
        for (_, f), record in zip(moved, records, strict=True):
            for name in _MOVABLE:
                f[name] = f[name] or record.get(name.encode())
    found = []
    now = datetime.now(UTC)
    for key, f in zip(task_keys, fields, strict=True):
        status = f["status"]
        if status is None:
            continue
        state = Status(status.decode())
        label = f["label"] or f["fn"] or b""
        found.append(
            TaskSummary(
                key=key,
                label=label.decode(),
                status=state,
                attempt=int(f["attempt"] or 0),
                worker=(f["worker"] or b"").decode() or None,
                created_at=time_from_ms(f["created"]) or time_from_ms(f["updated"]) or now,
                updated_at=time_from_ms(f["updated"]) or now,
                started_at=time_from_ms(f["started"]),
                finished_at=time_from_ms(f["finished"]) if state.terminal else None,
                when=time_from_ms(f["when"]),
                progress=TaskProgress.model_validate(from_json_text(f["progress"]))
                if f["progress"]
                else None,
                errored=f["errored"] == b"1",
            )
        )
    return found


async def recent(docket: Docket, limit: int = 100) -> list[TaskSummary]:
    """The latest ``limit`` tasks added to the docket, newest first (up to the docket's
    ``keep_recent``), that have not expired yet."""
    raw: list[bytes] = await docket.client.zrevrange(docket.keys.recent, 0, limit - 1)  # type: ignore[assignment]
    return await summaries(docket, [k.decode() for k in raw])


async def newer_than(docket: Docket, created_ms: int, limit: int = 100) -> list[str]:
    """Keys of tasks added after ``created_ms`` (epoch ms), newest first: a cheap check for
    new tasks, which publish no event of their own."""
    raw: list[bytes] = await docket.client.zrevrangebyscore(  # type: ignore[assignment]
        docket.keys.recent, "+inf", f"({created_ms}", start=0, num=limit
    )
    return [k.decode() for k in raw]


class WorkerLoad(BaseModel):
    """A worker (a consumer of the docket's group) and the tasks it holds right now."""

    name: str
    running: int
    idle_ms: int
    """Since the worker last read or renewed work: a live worker's stays small."""
    tasks: list[str]
    """Keys of the tasks it has claimed and not finished, oldest claim first."""


async def worker_loads(docket: Docket, *, limit: int = 500) -> list[WorkerLoad]:
    """Every worker of the docket and what it runs, from the group's pending entries (at
    most ``limit``). Of each entry only the task key is kept: the call it carries never
    leaves this function."""
    keys, client = docket.keys, docket.client
    try:
        consumers: list[dict[str, Any]] = await client.xinfo_consumers(keys.stream, GROUP)
        pending: list[dict[str, Any]] = await client.xpending_range(
            keys.stream, GROUP, min="-", max="+", count=limit
        )
    except ResponseError:  # no stream or no group (purged, or Redis lost its data): none
        return []
    held: dict[str, list[str]] = {}
    if pending:
        async with client.pipeline(transaction=False) as pipe:
            for entry in pending:
                pipe.xrange(keys.stream, entry["message_id"], entry["message_id"], count=1)
            found: list[list[tuple[bytes, dict[bytes, bytes]]]] = await pipe.execute()
        for entry, rows in zip(pending, found, strict=True):
            for _sid, fields in rows:
                if fields and b"key" in fields:
                    held.setdefault(reply_text(entry["consumer"]), []).append(
                        fields[b"key"].decode()
                    )
    return [
        WorkerLoad(
            name=reply_text(c.get("name")),
            running=int(c.get("pending", 0) or 0),
            idle_ms=int(c.get("idle", 0) or 0),
            tasks=held.get(reply_text(c.get("name")), []),
        )
        for c in consumers
    ]


SEALED = "(encrypted)"
"""What :func:`error_type` answers for an error sealed with a key this process lacks."""
_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,99}")


async def error_type(docket: Docket, key: str) -> str | None:
    """The exception type of the task's latest failed attempt (``TaskError.type``), or None
    if none failed. Never its message or traceback: those may quote the task's arguments,
    so this is all of an error a dashboard may show of any caller's task."""
    (record,) = await read_records(docket.client, docket.keys, [key])
    raw = record.get(b"error") if b"status" in record else None  # (not an expired task's)
    if not raw:
        return None
    try:
        error = from_json_text(docket.codec.open(raw))
    except CipherError:
        return SEALED
    except ValueError:
        return "?"
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) and _TYPE_NAME.fullmatch(kind) else "?"
