"""Time as the docket stores it: milliseconds since the epoch, and aware UTC datetimes.

One definition each, for every module of the engine (and the server's options).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


def now_ms() -> int:
    return int(time.time() * 1000)


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def time_from_ms(raw: bytes | str | None) -> datetime | None:
    """A stored timestamp (ms, as Redis returns it) as a datetime; None when unset."""
    if not raw:
        return None
    return datetime.fromtimestamp(int(float(raw)) / 1000, UTC)


def seconds(value: timedelta | float) -> float:
    """A duration given as a timedelta or as seconds, in seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
