"""Interop: the official TypeScript MCP SDK drives the real server in the 2025-11-25 dialect.

``tests/ts/client.mjs`` uses ``@modelcontextprotocol/sdk`` (pinned in ``tests/ts/package.json``)
and its ``client.experimental.tasks`` API over streamable HTTP: a task-augmented ``count``
whose result comes through tasks/get + tasks/result, a blocking tasks/result, a ``sleep``
cancelled with tasks/cancel, tasks/list, and -32602 for an unknown task id. It prints one JSON
summary line. Needs ``node`` and ``npm ci --prefix tests/ts``; it fails (never skips) without.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.helpers.node import node_with
from tests.helpers.servers import ROOT, http_server

TS_DIR = ROOT / "tests" / "ts"
CLIENT_TIMEOUT = 60


def _node() -> str:
    return node_with(TS_DIR, "sdk")


def test_typescript_sdk_drives_legacy_tasks() -> None:
    node = _node()
    with http_server("server.py", {"MCP_TASKS_URL": "memory://"}) as url:
        try:
            run = subprocess.run(
                [node, str(TS_DIR / "client.mjs"), url],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=CLIENT_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"the TypeScript client did not finish within {CLIENT_TIMEOUT} s\n"
                f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}",
                pytrace=False,
            )

    assert run.returncode == 0, (
        f"the TypeScript client failed (exit {run.returncode})\n"
        f"stderr:\n{run.stderr}\nstdout:\n{run.stdout}"
    )
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert lines, f"the client printed no summary; stderr:\n{run.stderr}"
    summary: dict[str, Any] = json.loads(lines[-1])

    assert summary["ok"] is True
    assert summary["protocolVersion"] == "2025-11-25"
    assert summary["serverTasksCapability"] == {
        "list": {},
        "cancel": {},
        "requests": {"tools": {"call": {}}},
    }
    assert summary["taskSupport"] == {"count": "optional", "sleep": "optional"}

    count = summary["count"]
    assert count["status"] == "completed"
    assert count["structuredContent"] == {"result": 7}
    assert count["relatedTaskMeta"] == {"taskId": count["taskId"]}
    assert count["ttl"] == 60000
    assert count["stream"][0] == "taskCreated"
    assert count["stream"][-1] == "result"
    assert count["cancelCompletedError"] == -32602

    blocking = summary["blockingResult"]
    assert blocking["status"] == "completed"
    assert blocking["text"] == "slept 0.5s"

    sleep = summary["sleep"]
    assert sleep["statusBeforeCancel"] == "working"
    assert sleep["cancelReplyStatus"] == "cancelled"
    assert sleep["status"] == "cancelled"
    assert sleep["streamAfterCancel"][-2:] == ["taskStatus:cancelled", "error"]

    task_ids = {count["taskId"], blocking["taskId"], sleep["taskId"]}
    assert len(task_ids) == 3
    assert task_ids <= set(summary["list"]["taskIds"])
    assert summary["list"]["statuses"][sleep["taskId"]] == "cancelled"

    assert summary["unknownTaskError"]["code"] == -32602
