"""Pages of a task index (``Docket.add(..., index=tag)``), for MCP's ``tasks/list``."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from redis.asyncio import Redis

from .codec import Codec
from .keys import Keys
from .reads import read_records
from .state import ExecutionState


class Store(Protocol):
    """What a listing needs of a docket."""

    @property
    def keys(self) -> Keys: ...
    @property
    def client(self) -> Redis: ...
    @property
    def codec(self) -> Codec: ...


class IndexPosition(NamedTuple):
    """Where a page of :meth:`Docket.list_index` ended: the last task's creation ms and key."""

    created_ms: int
    key: str


async def list_index(
    docket: Store, tag: str, after: IndexPosition | None, limit: int
) -> tuple[list[ExecutionState], IndexPosition | None]:
    """See :meth:`Docket.list_index`."""
    if limit < 1:
        raise ValueError("limit must be >= 1")
    index = docket.keys.index(tag)
    if after is None:
        found: list[tuple[bytes, float]] = await docket.client.zrange(  # type: ignore[assignment]
            index, 0, limit, withscores=True
        )
        entries = [(key, int(ms)) for key, ms in found]
    else:
        # The rest of `after`'s millisecond, then what follows it, read at one instant:
        # reads in rounds could lose their place when a joining task prunes the index.
        async with docket.client.pipeline(transaction=True) as pipe:
            pipe.zrangebyscore(index, after.created_ms, after.created_ms)
            pipe.zrangebyscore(
                index, f"({after.created_ms}", "+inf", start=0, num=limit + 1, withscores=True
            )
            same, later = await pipe.execute()
        mark = after.key.encode()  # one millisecond's members are in byte order
        entries = [(key, after.created_ms) for key in same if key > mark]
        entries += [(key, int(ms)) for key, ms in later]
    page, more = entries[:limit], len(entries) > limit
    raws = await read_records(docket.client, docket.keys, [key.decode() for key, _ in page])
    states = [
        ExecutionState.from_hash(raw, docket.codec) for raw in raws if raw and b"status" in raw
    ]
    gone = [key for (key, _), raw in zip(page, raws, strict=True) if not raw]
    if gone:  # met on the way: drop them now rather than when a task next joins
        await docket.client.zrem(index, *gone)
    if not more:
        return states, None
    last_key, last_ms = page[-1]
    return states, IndexPosition(last_ms, last_key.decode())
