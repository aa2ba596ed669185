"""What a worker holds for each task it runs, and the outcome it records for it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from .context import TaskContext
from .functions import TaskFunction

MAX_BATCH = 200


@dataclass(eq=False)
class Run:
    """One task this worker holds, from its start script to its finish script."""

    key: str
    sid: str
    function: TaskFunction | None
    fn_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    attempt: int
    when_ms: int | None
    limit: tuple[str, int] | None
    ttl: str = ""
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    cancelled_by_user: bool = False
    handing_back: bool = False
    context: TaskContext | None = None
    unreadable: Exception | None = None
    """Why the stored call could not be decoded (e.g. sealed with another key): the run
    fails with it instead of running with no arguments."""
    label: str = ""
    meta: bytes = b""
    started_ms: int = 0
    counter: str = ""
    """The statistic the run's outcome counts towards (see finish.lua)."""


@dataclass(frozen=True)
class Outcome:
    run: Run
    outcome: str
    data: str | bytes = ""
    when_ms: int = 0


COUNTERS = {
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "retry": "retried",
}
"""Which statistic a run's outcome counts towards; a hand-back counts towards none."""
