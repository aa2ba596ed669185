"""The one place that knows how a docket's data is laid out in Redis.

Every key of a docket starts with ``mcp-tasks:{<name>}`` — the braces are a Redis Cluster
hash tag, so all of a docket's keys live in one slot and every Lua script may touch any of
them on a cluster exactly as on a single server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GROUP = "workers"
"""The consumer group every worker of a docket reads the stream through."""

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_MAX_TASK_KEY = 256

# Keys the scripts derive from the docket prefix themselves (a parked task's run hash, a
# limit's zset and waiting list); the generated preamble of every script (scripts.py) turns
# these into run_key/limit_key/waiting_key, so the layout has this one home.
RUN = ":run:"
LARGE = ":large:"
LIMIT = ":limit:"
WAITING = ":waiting:"

# Event channels, all derived from the docket's ``events`` channel (so a script handed that
# one name derives the others, through the generated preamble): a task's own channel, and
# the workers' control channel carrying only the statuses in CONTROL_STATUSES.
TASK_EVENTS = ":"
CONTROL = "/control"
CONTROL_STATUSES = ("cancelling", "scheduled")

COMPACT_VALUE_BYTES = 64
"""Redis keeps a hash in its compact encoding (a listpack) only while every field name and
value is at most ``hash-max-listpack-value`` bytes, 64 by default, and never re-encodes it once
a longer one came. An ended task's record is kept for the result's TTL, so when a task ends
its run hash is written anew with only its short values (~0.4 KB) and the longer ones (its
result, error, metadata, a long progress message) go to :meth:`Keys.large` beside it; as one
hashtable the record took ~1.3 KB (measured with ``benchmarks/scale.py``)."""

LARGE_OUTLIVES_MS = 60_000
"""How much longer a :meth:`Keys.large` key lives than its run hash, so that a reader who
finds the run hash also finds its large values (two keys do not expire in the same instant)."""

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
"""Upper bounds (ms) of the run-time histogram in the stats hash (fields
``run:<bound>:<label>`` and ``run:inf:<label>``); the scripts get them from the preamble."""


def check_docket_name(name: str) -> str:
    """Docket names become part of every key, so keep them short and free of braces."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"invalid docket name {name!r}: use 1-100 characters from A-Z a-z 0-9 _ . : -"
        )
    return name


def check_task_key(key: str) -> str:
    """Task keys travel in newline-separated event messages, so they may not hold line breaks."""
    if not isinstance(key, str) or not key:
        raise ValueError("a task key must be a non-empty string")
    if len(key) > _MAX_TASK_KEY:
        raise ValueError(f"a task key may be at most {_MAX_TASK_KEY} characters")
    if any(ch in key for ch in "\r\n\0"):
        raise ValueError("a task key may not contain line breaks or NUL")
    try:
        key.encode()
    except UnicodeEncodeError:
        raise ValueError("a task key must be encodable as UTF-8 (no lone surrogates)") from None
    return key


def is_task_key(key: object) -> bool:
    """Whether a task could have this key. A key that could not is no task's: the docket
    answers "no such task" for it without asking Redis (which could not even encode some)."""
    try:
        check_task_key(key)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Keys:
    """Key names for one docket."""

    name: str

    @property
    def prefix(self) -> str:
        return f"mcp-tasks:{{{self.name}}}"

    @property
    def pattern(self) -> str:
        """A SCAN pattern matching every key of this docket (braces escaped for globbing)."""
        escaped = self.prefix.replace("{", r"\{").replace("}", r"\}")
        return f"{escaped}:*"

    @property
    def stream(self) -> str:
        """Due tasks, read by workers through the consumer group :data:`GROUP`."""
        return f"{self.prefix}:stream"

    @property
    def scheduled(self) -> str:
        """Sorted set of task keys scored by the epoch millisecond they become due."""
        return f"{self.prefix}:scheduled"

    @property
    def events(self) -> str:
        """Pub/sub channel carrying every state change of the docket's tasks: read only by
        what watches the whole docket (a dashboard), never by replicas or workers."""
        return f"{self.prefix}:events"

    @property
    def control(self) -> str:
        """Pub/sub channel of the changes workers act on (cancellations, new schedules)."""
        return f"{self.events}{CONTROL}"

    def task_events(self, key: str) -> str:
        """Pub/sub channel of one task's changes: what a process following it subscribes to,
        so its event traffic follows its own listeners, not the whole docket's."""
        return f"{self.events}{TASK_EVENTS}{key}"

    def task_of_channel(self, channel: str) -> str | None:
        """The task key of a :meth:`task_events` channel (None for the docket-wide ones)."""
        head = f"{self.events}{TASK_EVENTS}"
        return channel[len(head) :] if channel.startswith(head) else None

    @property
    def run_prefix(self) -> str:
        return f"{self.prefix}{RUN}"

    def run(self, key: str) -> str:
        """Hash holding one task's execution state (status, call, progress, result...)."""
        return f"{self.run_prefix}{key}"

    def large(self, key: str) -> str:
        """An ended task's values longer than :data:`COMPACT_VALUE_BYTES`, moved out of its
        run hash as it ended (``settle`` in ``lua/common.lua``) and read back with it
        (:func:`.state.with_large`): netstrings, name then value, for each. The run hash's
        field ``large`` says there is one."""
        return f"{self.prefix}{LARGE}{key}"

    def index(self, tag: str) -> str:
        """Sorted set listing the tasks added with ``index=tag``, scored by creation (ms)."""
        return f"{self.prefix}:index:{tag}"

    @property
    def limits(self) -> str:
        """Hash of concurrency-limit name -> maximum, for limits that have waiting tasks."""
        return f"{self.prefix}:limits"

    def limit(self, limit: str) -> str:
        """Sorted set of task keys holding a slot of ``limit``, scored by lease expiry (ms)."""
        return f"{self.prefix}{LIMIT}{limit}"

    def waiting(self, limit: str) -> str:
        """List of task keys parked until a slot of ``limit`` frees up."""
        return f"{self.prefix}{WAITING}{limit}"

    def quota(self, tag: str) -> str:
        """Sorted set of the unfinished tasks admitted under quota ``tag``, scored by ms."""
        return f"{self.prefix}:quota:{tag}"

    def rate(self, tag: str) -> str:
        """Counter of tasks admitted under quota ``tag`` in its current rate window."""
        return f"{self.prefix}:rate:{tag}"

    @property
    def recent(self) -> str:
        """Sorted set of the latest task keys, scored by creation (ms): what a dashboard
        lists. The enqueue script adds to it and trims it to the docket's ``keep_recent``."""
        return f"{self.prefix}:recent"

    @property
    def stats(self) -> str:
        """Hash of cumulative counters kept by the scripts: ``<counter>:<label>`` (created,
        completed, failed, cancelled, retried, redelivered) and run-time histogram buckets
        ``run:<bound ms|inf>:<label>`` with their sum ``run_ms:<label>``."""
        return f"{self.prefix}:stats"
