"""``benchmarks/fanout.py --quick``: simulated replicas following their share of a docket's
tasks. What a deployment relies on, and so what this asserts (counts, not timings): with
per-task channels the events delivered per task stay the same however many replicas there
are, where one docket-wide channel delivers each event to every replica."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.helpers.servers import ROOT


def test_events_delivered_per_task_do_not_grow_with_replicas() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/fanout.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = re.findall(r"^\| (\d+) \| ([\d.]+) \(one channel: ([\d.]+)\)", done.stdout, re.MULTILINE)
    assert [int(replicas) for replicas, _, _ in rows] == [1, 4, 16], done.stdout
    per_task = {float(mine) for _, mine, _ in rows}
    assert len(per_task) == 1 and per_task.pop() > 0, done.stdout  # flat
    for replicas, mine, old in rows:  # every replica parses every event of the docket
        assert float(old) == float(mine) * int(replicas), done.stdout
