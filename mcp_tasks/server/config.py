"""The ``Tasks`` extension's options: arguments, else environment, else defaults, checked once.

The policies that follow from them alone live here too: the ttl a task gets, the poll
interval a client is told, and the per-caller quota.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from fastmcp.utilities.tasks import DEFAULT_POLL_INTERVAL

from ..engine import Quota
from ..engine.clock import seconds
from ..engine.codec import Codec

URL_ENV = "MCP_TASKS_URL"
N = TypeVar("N", int, float)


def switch(value: bool | None, env: str, default: bool = True) -> bool:
    """An on/off option: the argument if given, else the environment variable (0, false,
    no or off; anything else is on), else ``default``."""
    if value is not None:
        return value
    setting = os.environ.get(env)
    if setting is None:
        return default
    return setting.strip().lower() not in ("0", "false", "no", "off")


def number(value: N | None, env: str, default: N, kind: Callable[[str], N]) -> N:
    """A numeric option: the argument if given, else the environment variable, else the
    default; a variable that is not a number is named in the error."""
    if value is not None:
        return value
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{env}={text!r} is not a valid {kind.__name__}") from None


MIN_POLL_MS = 100
"""The first ``pollInterval`` an adaptive task suggests: a quick task is seen that soon."""


@dataclass(frozen=True)
class PollPlan:
    """The ``pollInterval`` a task suggests to clients that poll it.

    Adaptive (the default): poll again after as long as the task has run so far, from
    :data:`MIN_POLL_MS` up to ``ms`` — a 50 ms task is seen after ~100 ms, and a 90 s one is
    polled about 15 times with a 10 s cap (log2(age / 0.1 s) doublings, then every cap),
    where a fixed 1 s interval polls it 90 times. Fixed: always ``ms`` (a tool that asked).
    """

    ms: int
    adaptive: bool

    def suggested(self, age_ms: float) -> int:
        if not self.adaptive:
            return self.ms
        return int(min(max(age_ms, MIN_POLL_MS), self.ms))


@dataclass
class TasksConfig:
    """Everything ``Tasks(...)`` was told; see its docstring and the README's table."""

    url: str
    docket_name: str
    run_worker: bool
    concurrency: int
    default_ttl_ms: int
    max_ttl_ms: int
    poll_interval_ms: int
    redelivery_timeout: timedelta | float
    max_argument_bytes: int
    max_result_bytes: int
    max_unfinished_per_caller: int | None
    max_creations_per_minute: int | None
    codec: Codec | None
    settle: float
    dashboard: bool | None
    """None: on unless the server has ``auth=`` (decided when registered)."""
    metrics: bool | None
    min_replicas: int
    """Redis replicas that must confirm creations, terminal states, cancellations and answers
    before anyone is told (0: off); see :class:`~mcp_tasks.engine.Docket`."""
    replica_timeout: float

    @classmethod
    def build(
        cls,
        url: str | None,
        *,
        name: str | None,
        worker: bool | None,
        concurrency: int,
        default_ttl: timedelta | float,
        max_ttl: timedelta | float,
        poll_interval: timedelta | float,
        redelivery_timeout: timedelta | float,
        max_argument_bytes: int,
        max_result_bytes: int,
        max_unfinished_per_caller: int | None,
        max_creations_per_minute: int | None,
        encryption_key: str | None,
        settle: timedelta | float,
        dashboard: bool | None,
        metrics: bool | None,
        min_replicas: int | None = None,
        replica_timeout: timedelta | float | None = None,
    ) -> TasksConfig:
        config = cls(
            url=url or os.environ.get(URL_ENV) or "memory://",
            docket_name=name or os.environ.get("MCP_TASKS_NAME") or "mcp-tasks",
            run_worker=switch(worker, "MCP_TASKS_WORKER"),
            concurrency=concurrency,
            default_ttl_ms=int(seconds(default_ttl) * 1000),
            max_ttl_ms=int(seconds(max_ttl) * 1000),
            poll_interval_ms=int(seconds(poll_interval) * 1000),
            redelivery_timeout=redelivery_timeout,
            max_argument_bytes=max_argument_bytes,
            max_result_bytes=max_result_bytes,
            max_unfinished_per_caller=max_unfinished_per_caller,
            max_creations_per_minute=max_creations_per_minute,
            codec=Codec(encryption_key) if encryption_key else None,
            settle=max(seconds(settle), 0.0),
            dashboard=dashboard,
            metrics=metrics,
            min_replicas=number(min_replicas, "MCP_TASKS_MIN_REPLICAS", 0, int),
            replica_timeout=seconds(
                replica_timeout
                if replica_timeout is not None
                else number(None, "MCP_TASKS_REPLICA_TIMEOUT", 1.0, float)
            ),
        )
        if config.min_replicas < 0:
            raise ValueError("min_replicas may not be negative")
        if not config.replica_timeout > 0:
            raise ValueError("replica_timeout must be positive")
        if min(max_argument_bytes, max_result_bytes) < 1:
            raise ValueError("max_argument_bytes and max_result_bytes must be positive")
        Quota("check", max_unfinished_per_caller, max_creations_per_minute)  # valid caps?
        if not 0 < config.default_ttl_ms <= config.max_ttl_ms:
            raise ValueError("default_ttl must be positive and at most max_ttl")
        return config

    def actual_ttl_ms(self, requested: object) -> int:
        """Honour a requested ttl up to the configured maximum; a bad one gets the default."""
        if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
            return min(requested, self.max_ttl_ms)
        return self.default_ttl_ms

    def poll_for(self, tool: Any) -> PollPlan:
        """A tool's own ``TaskConfig(poll_interval=...)``, used as is; else the adaptive plan
        capped at the extension's ``poll_interval`` (fastmcp's 5 s default for a tool counts
        as not set)."""
        interval = getattr(getattr(tool, "task_config", None), "poll_interval", None)
        if isinstance(interval, timedelta) and interval != DEFAULT_POLL_INTERVAL:
            return PollPlan(max(int(interval.total_seconds() * 1000), 1), adaptive=False)
        return PollPlan(self.poll_interval_ms, adaptive=True)

    def quota_for(self, caller: str | None) -> Quota | None:
        """The per-caller limits, if any are set: one quota per principal (or legacy
        session/connection); callers with no identity at all share one."""
        if self.max_unfinished_per_caller is None and self.max_creations_per_minute is None:
            return None
        return Quota(
            caller or "anonymous",
            max_unfinished=self.max_unfinished_per_caller,
            max_per_window=self.max_creations_per_minute,
            window=60.0,
        )
