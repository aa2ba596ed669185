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

from .depth import read_depth
from .docket import Docket
from .keys import RUN_BUCKETS_MS

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
    depth = await read_depth(docket)
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
        queued=depth.queued,
        running=depth.running,
        scheduled=depth.scheduled,
    )


def _zeros() -> list[int]:
    return [0] * (len(RUN_BUCKETS_MS) + 1)
