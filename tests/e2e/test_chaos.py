"""A short chaos run (benchmarks/chaos.py): MCP tasks while workers die and Redis restarts.

Two API-only server replicas over streamable HTTP, four ``mcp-tasks worker`` processes of
which a random one is SIGKILLed about every second (and replaced), one SIGKILL and restart
of a test-owned ``redis-server`` (append-only, fsync always) halfway, and clients of both
dialects. Nothing may be lost: every task ends exactly once with the right result, and a
task runs twice only when the worker of its earlier run was killed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


def load_chaos() -> ModuleType:
    """benchmarks/ is not a package (and its mcp.py must not shadow the SDK): load the file."""
    spec = importlib.util.spec_from_file_location("chaos_run", ROOT / "benchmarks" / "chaos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


async def test_nothing_is_lost_when_workers_die_and_redis_restarts(tmp_path: Path) -> None:
    chaos = load_chaos()
    settings = chaos.Settings(tasks=1000, deadline=150, stall=45)
    report = await chaos.chaos(settings, tmp_path)
    summary = "\n".join(
        [report.table(), *report.details[:20], *report.log_problems[:10]]
        + [f"{count}x {kind}" for kind, count in list(report.error_kinds.items())[:10]]
    )
    assert report.kills >= 3 and report.redis_restarts == 1, summary
    assert report.lost == 0 and report.not_terminal == 0 and report.wrong_results == 0, summary
    assert report.terminal_changes == 0 and report.double_finish_events == 0, summary
    assert report.duplicates_unexplained == 0 and report.orphans_not_terminal == 0, summary
    assert report.unreadable_at_end == 0 and report.ok, summary
    # The audit saw the chaos: runs cut short by a SIGKILL were run again.
    assert report.executions >= report.tasks, summary
