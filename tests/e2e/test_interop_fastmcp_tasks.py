"""fastmcp-tasks' own client half (not ours) drives our server over HTTP, 2026-07-28.

fastmcp-tasks pins its own fastmcp, so its client runs from ``.venv-peer`` (made by
``scripts/test`` from ``scripts/peer.txt``; ``MCP_TASKS_PEER_PYTHON`` names another
interpreter) while our server runs on this environment's fastmcp.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.servers import ROOT, http_server


def peer_python() -> str:
    python = Path(os.environ.get("MCP_TASKS_PEER_PYTHON", ROOT / ".venv-peer" / "bin" / "python"))
    if not python.exists():
        pytest.fail(
            f"{python} is missing: this interop test runs fastmcp-tasks' client from its own "
            "environment; ./scripts/test makes it (python3 -m venv .venv-peer && "
            ".venv-peer/bin/pip install -r scripts/peer.txt)",
            pytrace=False,
        )
    return str(python)


def test_fastmcp_tasks_client_creates_polls_cancels_and_answers() -> None:
    python = peer_python()
    with http_server("tests/processes/interop_server.py", {"MCP_TASKS_URL": "memory://"}) as url:
        run = subprocess.run(
            [python, "tests/processes/fastmcp_tasks_client.py", url],
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
