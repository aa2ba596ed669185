"""``benchmarks/scale.py --quick``: the scale run works end to end (a smoke run, no figures
judged). What it relies on, and so what this asserts: every task of the steady phase and of
the burst reaches its follower, in both dialects (none missed), and every phase printed its
row."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.helpers.servers import ROOT


def test_scale_benchmark_quick_run_misses_no_notification() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/scale.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = done.stdout
    missed = re.findall(r"missed (\d+)", table)
    # the steady phase's listeners, then the burst's: 2026-07-28 listeners, 2025-11-25 sessions
    assert missed == ["0", "0", "0"], table
    for phase in (
        "tasks created per second",
        "replica memory per task in flight",
        "Redis commands per task in the wave",
        "Redis bytes per finished task",
        "tasks/list page",
        "pollers: replica CPU per request",
        "tasks/get alone: replica CPU per request",
        "store of 1,000 finished: Redis bytes per finished task",
        "store of 1,000 finished: reads (ms)",
    ):
        assert phase in table, table
    assert len(re.findall(r"pollers: a [\d.]+ s task \| \d+ polls", table)) == 4, table
