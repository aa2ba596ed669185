"""``benchmarks/backends.py --quick``: memory:// beside a local Redis, and memory:// on stock
fakeredis, in one run. A smoke run (no timings asserted): the benchmark runs end to end, all
three backends create and drain every task, and its table has every row with a ratio."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.helpers.servers import ROOT


def test_the_backends_benchmark_runs_and_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/backends.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = re.findall(r"^\| (create|drain)[^|]*(\|[^|\n]*){5}\|$", done.stdout, re.MULTILINE)
    assert len(rows) == 4, done.stdout
    ratios = re.findall(r"\| ([\d.]+)x \| ([\d.]+)x \|$", done.stdout, re.MULTILINE)
    assert len(ratios) == 4 and all(float(a) > 0 and float(b) > 0 for a, b in ratios), done.stdout
