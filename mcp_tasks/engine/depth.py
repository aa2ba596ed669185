"""How deep a docket's queue is: the one reader of stream, group, schedule and waiting lists.

The statistics (``/metrics``), the inspection (``mcp-tasks status``, the dashboard) and
:meth:`Docket.depth` all read it here, so they count the same things the same way.
(:meth:`Docket.backlog` is the atomic variant, one script, for deciding that all work is
done.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from .connection import reply_text
from .keys import GROUP, Keys


class Store(Protocol):
    """What the reader needs of a docket."""

    @property
    def keys(self) -> Keys: ...
    @property
    def client(self) -> Redis: ...


@dataclass(frozen=True)
class QueueDepth:
    length: int
    """Entries on the stream: claimed (running) or not yet."""
    running: int
    """Entries claimed by a worker and not yet acknowledged."""
    unclaimed: int
    """Entries no worker has claimed yet."""
    parked: int
    """Tasks waiting for a concurrency slot (off the stream)."""
    scheduled: int
    """Tasks due later (deferred, retries waiting for their delay, perpetual ones)."""

    @property
    def queued(self) -> int:
        """Due tasks not running: unclaimed ones and those parked for a slot."""
        return self.unclaimed + self.parked


async def read_depth(docket: Store) -> QueueDepth:
    """A handful of commands, independent of the number of tasks."""
    keys, client = docket.keys, docket.client
    length = int(await client.xlen(keys.stream))
    try:
        groups: list[dict[str, Any]] = await client.xinfo_groups(keys.stream)
    except ResponseError:  # no stream at all (purged, or Redis lost its data): empty
        groups = []
    group = next((g for g in groups if reply_text(g.get("name")) == GROUP), {})
    running = int(group.get("pending", 0) or 0)
    # Finished entries are deleted from the stream, so it holds exactly the entries no
    # worker has claimed yet plus the claimed ones (pending).
    unclaimed = max(length - running, 0)
    scheduled = int(await client.zcard(keys.scheduled))
    limits: dict[bytes, bytes] = await client.hgetall(keys.limits)  # type: ignore[assignment]
    parked = 0
    for name in limits:
        parked += int(await client.llen(keys.waiting(name.decode())))
    return QueueDepth(length, running, unclaimed, parked, scheduled)
