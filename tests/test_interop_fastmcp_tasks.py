"""fastmcp-tasks' own client half (not ours) drives our server over HTTP, 2026-07-28."""

from __future__ import annotations

import json
import subprocess
import sys

from servers import ROOT, http_server


def test_fastmcp_tasks_client_creates_polls_cancels_and_answers() -> None:
    with http_server("tests/interop/interop_server.py", {"MCP_TASKS_URL": "memory://"}) as url:
        run = subprocess.run(
            [sys.executable, "tests/interop/fastmcp_tasks_client.py", url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen == {
        "protocol": "2026-07-28",
        "count_status": seen["count_status"],
        "count_result": 7,
        "transparent_result": 3,
        "cancelled": "cancelled",
        "elicited": "Delete /tmp/x?",
        "input_required_result": "deleted /tmp/x",
    }
    assert seen["count_status"] in ("working", "completed")
