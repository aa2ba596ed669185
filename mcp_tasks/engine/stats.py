"""A docket's cumulative statistics, kept in Redis by its scripts, and its queue depth.

The scripts count every task into one hash per docket (:attr:`Keys.stats`) as it happens —
added, completed, failed, cancelled, retried, taken over from a dead worker — under the
task's *label* (its function's name unless it was added with ``label=``), and file each run's
duration into a histogram bucket. Because the figures live in Redis, every process that
reads them reports the same cluster-wide numbers, and they survive restarts of any process.
A failed run that is retried counts once as ``retried`` per retry and once as ``failed`` if
its last attempt fails; a perpetual task counts each run.
"""

from __future__ import annotations

from pydantic import BaseModel

from .docket import Docket
from .keys import GROUP

RUN_BUCKETS_MS: tuple[int, ...] = (
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    300000,
    900000,
    3600000,
)
"""Upper bounds (ms) of the run-time histogram; ``RUN_BUCKETS_MS`` in ``common.lua`` is the
one the scripts use, and a test keeps the two equal."""

COUNTERS = ("created", "completed", "failed", "cancelled", "retried", "redelivered")


class RunTimes(BaseModel):
    """The run-time histogram of one label: runs per bucket (not cumulative), in the order
    of :data:`RUN_BUCKETS_MS` and then the runs longer than the last bound."""

    buckets: list[int]
    sum_ms: int

    @property
    def count(self) -> int:
        return sum(self.buckets)


class DocketStats(BaseModel):
    name: str
    counters: dict[str, dict[str, int]]
    """Counter name (see :data:`COUNTERS`) -> label -> count since the docket began."""
    run_times: dict[str, RunTimes]
    """Label -> histogram of how long its runs took (every finished run, retries too)."""
    queued: int
    """Due tasks no worker has claimed yet (parked ones waiting for a slot included)."""
    running: int
    """Tasks a worker has claimed and not finished."""
    scheduled: int
    """Tasks due later (deferred, retries waiting for their delay, perpetual ones)."""

    def labels(self) -> list[str]:
        found = {label for per_label in self.counters.values() for label in per_label}
        return sorted(found | set(self.run_times))


async def read_stats(docket: Docket) -> DocketStats:
    """Read the counters and the queue depth (a handful of commands, independent of the
    number of tasks)."""
    keys, client = docket.keys, docket.client
    raw: dict[bytes, bytes] = await client.hgetall(keys.stats)  # type: ignore[assignment]
    length = int(await client.xlen(keys.stream))
    groups: list[dict[str, object]] = await client.xinfo_groups(keys.stream)
    group = next((g for g in groups if _text(g.get("name")) == GROUP), {})
    pending = int(str(group.get("pending") or 0))
    scheduled = int(await client.zcard(keys.scheduled))
    limits: dict[bytes, bytes] = await client.hgetall(keys.limits)  # type: ignore[assignment]
    parked = 0
    for name in limits:
        parked += int(await client.llen(keys.waiting(name.decode())))
    counters: dict[str, dict[str, int]] = {name: {} for name in COUNTERS}
    run_times: dict[str, RunTimes] = {}
    index = {str(bound): i for i, bound in enumerate(RUN_BUCKETS_MS)}
    index["inf"] = len(RUN_BUCKETS_MS)
    for field_raw, value_raw in raw.items():
        field, value = field_raw.decode(), int(value_raw)
        counter, _, rest = field.partition(":")
        if counter in counters:
            counters[counter][rest] = value
        elif counter == "run":
            bound, _, label = rest.partition(":")
            if bound in index:
                times = run_times.setdefault(label, RunTimes(buckets=_zeros(), sum_ms=0))
                times.buckets[index[bound]] += value
        elif counter == "run_ms":
            times = run_times.setdefault(rest, RunTimes(buckets=_zeros(), sum_ms=0))
            times.sum_ms += value
    return DocketStats(
        name=docket.name,
        counters=counters,
        run_times=run_times,
        # Finished entries are deleted from the stream, so it holds exactly the entries no
        # worker has claimed yet plus the claimed ones (pending).
        queued=max(length - pending, 0) + parked,
        running=pending,
        scheduled=scheduled,
    )


def _zeros() -> list[int]:
    return [0] * (len(RUN_BUCKETS_MS) + 1)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
