"""A docket's state at a glance, for operators (the CLI's ``status``) and dashboards.

Read-only except :func:`purge`. It reads the stream, the consumer group and the scheduled
set directly; per-task details come from the task hashes, a bounded number of them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel

from .docket import Docket
from .keys import GROUP
from .state import ExecutionState


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
    groups: list[dict[str, Any]] = await client.xinfo_groups(keys.stream)
    group = next((g for g in groups if _text(g.get("name")) == GROUP), {})
    pending = int(group.get("pending", 0) or 0)
    lag = group.get("lag")
    length = int(await client.xlen(keys.stream))
    queued = int(lag) if lag is not None else max(length - pending, 0)
    consumers: list[dict[str, Any]] = await client.xinfo_consumers(keys.stream, GROUP)
    workers = [
        WorkerInfo(
            name=_text(c.get("name")),
            running=int(c.get("pending", 0) or 0),
            idle_ms=int(c.get("idle", 0) or 0),
        )
        for c in consumers
    ]
    scheduled = int(await client.zcard(keys.scheduled))
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(  # type: ignore[assignment]
        keys.stream, count=sample
    )
    later: list[bytes] = await client.zrange(keys.scheduled, 0, sample - 1)  # type: ignore[assignment]
    task_keys = [fields[b"key"].decode() for _sid, fields in entries if fields]
    task_keys += [k.decode() for k in later]
    states = await _states(docket, task_keys[:sample])
    by_function: dict[str, Counter[str]] = {}
    for state in states:
        label = str(state.meta.get("tool") or state.function)
        by_function.setdefault(label, Counter())[state.status.value] += 1
    return DocketSnapshot(
        name=docket.name,
        url=_redact(docket.url),
        queued=queued,
        running=pending,
        scheduled=scheduled,
        workers=workers,
        by_function={k: dict(v) for k, v in sorted(by_function.items())},
        sampled=len(states),
    )


async def _states(docket: Docket, task_keys: list[str]) -> list[ExecutionState]:
    if not task_keys:
        return []
    async with docket.client.pipeline(transaction=False) as pipe:
        for key in task_keys:
            pipe.hgetall(docket.keys.run(key))
        raws: list[dict[bytes, bytes]] = await pipe.execute()
    return [ExecutionState.from_hash(raw, docket.codec) for raw in raws if raw and b"status" in raw]


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


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _redact(url: str) -> str:
    """A URL without its password, for display."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
