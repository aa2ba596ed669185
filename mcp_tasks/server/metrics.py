"""Prometheus metrics at ``/metrics``: the docket's cluster-wide task figures.

The figures are the engine's statistics (:mod:`mcp_tasks.engine.stats`), counted in Redis
by the docket's own scripts as tasks are created, run and finished. Every replica therefore
reports the same numbers, whichever of them runs a task, and restarting a replica resets
nothing; scrape any one of them (or all: the series are identical). The ``tool`` label is
the task's tool. A tool that returns an ``isError`` result counts as *failed* here, as the
2025-11-25 dialect reports it, although its task is ``completed`` in the 2026-07-28 dialect.

Per-process metrics (CPU, memory) are deliberately not exposed here, since they would differ
between replicas; add prometheus_client's default collectors to your own endpoint if needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..engine import Docket
from ..engine.keys import RUN_BUCKETS_MS
from ..engine.stats import DocketStats, read_stats

COUNTER_HELP = {
    "created": "Tasks created.",
    "completed": "Tasks that completed (a tool result with isError counts as failed).",
    "failed": "Tasks that failed: the run raised, or the tool returned an isError result.",
    "cancelled": "Tasks cancelled before or while they ran.",
    "retried": "Failed runs that were scheduled to run again.",
    "redelivered": "Running tasks taken over from a worker that died or stalled.",
}


class StatsCollector(Collector):
    """Turns one reading of the docket's statistics into Prometheus metric families.

    prometheus_client collects synchronously, while the figures come from Redis: the
    endpoint reads them first (:func:`read_stats`) and hands them to a collector made for
    that one scrape.
    """

    def __init__(self, stats: DocketStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        for counter, help_text in COUNTER_HELP.items():
            family = CounterMetricFamily(
                f"mcp_tasks_{counter}", help_text, labels=["docket", "tool"]
            )
            for tool, value in sorted(stats.counters.get(counter, {}).items()):
                family.add_metric([stats.name, tool], value)
            yield family
        depth = GaugeMetricFamily(
            "mcp_tasks_queue_depth",
            "Tasks waiting or running now: queued (due, not yet claimed), running, scheduled"
            " (due later).",
            labels=["docket", "state"],
        )
        for state, value in (
            ("queued", stats.queued),
            ("running", stats.running),
            ("scheduled", stats.scheduled),
        ):
            depth.add_metric([stats.name, state], value)
        yield depth
        runs = HistogramMetricFamily(
            "mcp_tasks_run_seconds",
            "How long task runs took, from start to outcome (every attempt).",
            labels=["docket", "tool"],
        )
        bounds = [_seconds_text(bound) for bound in RUN_BUCKETS_MS] + ["+Inf"]
        for tool, times in sorted(stats.run_times.items()):
            cumulative, buckets = 0, []
            for bound, count in zip(bounds, times.buckets, strict=True):
                cumulative += count
                buckets.append((bound, float(cumulative)))
            runs.add_metric([stats.name, tool], buckets, times.sum_ms / 1000)
        yield runs


async def render(docket: Docket) -> bytes:
    """The metrics in Prometheus' text format, read from Redis now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(await read_stats(docket)))
    return generate_latest(registry)


def routes(docket: Callable[[], Docket]) -> list[Route]:
    """``GET /metrics``; ``docket`` gives the running docket (RuntimeError when stopped)."""

    async def metrics(request: Request) -> Response:
        try:
            running = docket()
        except RuntimeError:
            return Response("the task docket is not running\n", status_code=503)
        return Response(await render(running), media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics, methods=["GET"], name="mcp-tasks-metrics")]


def _seconds_text(bound_ms: int) -> str:
    return repr(bound_ms / 1000)
