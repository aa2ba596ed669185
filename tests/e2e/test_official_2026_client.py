"""Interop: the official 2026-07-28 tasks client drives the real server.

``tests/ts2026/client.mjs`` uses ``@modelcontextprotocol/ext-tasks`` on
``@modelcontextprotocol/client`` (both pinned in ``tests/ts2026/package.json``) over streamable
HTTP against ``tests/processes/ext_tasks_server.py``, through the library's own task API: a session
from ``createTaskSessionFromClient`` opts each call in to ``io.modelcontextprotocol/tasks``,
``callTool`` creates the task and ``settle()`` polls it, ``client.listen()`` follows it with
``subscriptions/listen``, the session's input handler answers ``input_required`` through
``tasks/update``, and ``cancel()`` sends ``tasks/cancel``. It prints one JSON summary line, step
by step; this test asserts the spec-correct behaviour of every step, on ``memory://`` and on the
real Redis. Needs ``node`` and ``npm ci --prefix tests/ts2026``; it fails (never skips) without.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.dockets import purge
from tests.helpers.node import node_with
from tests.helpers.servers import ROOT, http_server

TS_DIR = ROOT / "tests" / "ts2026"
SERVER = "tests/processes/ext_tasks_server.py"
EXTENSION = "io.modelcontextprotocol/tasks"
SERVER_INFO = "io.modelcontextprotocol/serverInfo"
CLIENT_TIMEOUT = 90


def _node() -> str:
    return node_with(TS_DIR, "ext-tasks", "client")


def _run_client(node: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    with http_server(SERVER, env) as url:
        try:
            return subprocess.run(
                [node, str(TS_DIR / "client.mjs"), url],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=CLIENT_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"the 2026 client did not finish within {CLIENT_TIMEOUT} s\n"
                f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}",
                pytrace=False,
            )


def without_server_info(result: dict[str, Any]) -> dict[str, Any]:
    """A tool result without the per-response ``_meta["io.modelcontextprotocol/serverInfo"]``
    stamp (it belongs to the response that carried the result, not to the tool's result)."""
    out = dict(result)
    meta = {k: v for k, v in (out.pop("_meta", None) or {}).items() if k != SERVER_INFO}
    if meta:
        out["_meta"] = meta
    return out


def text_of(result: dict[str, Any]) -> str:
    return "".join(block.get("text", "") for block in result.get("content", []))


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest, docket_name: str) -> Iterator[dict[str, str]]:
    """The server's environment: memory://, or the real Redis with a docket of its own."""
    if request.param == "memory":
        yield {"MCP_TASKS_URL": "memory://", "MCP_TASKS_NAME": docket_name}
        return
    redis_url = request.getfixturevalue("redis_url")
    try:
        yield {"MCP_TASKS_URL": redis_url, "MCP_TASKS_NAME": docket_name}
    finally:
        asyncio.run(purge(redis_url, docket_name))


def test_official_2026_client_drives_tasks(backend: dict[str, str]) -> None:
    run = _run_client(_node(), backend)
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert lines, (
        f"the 2026 client printed no summary (exit {run.returncode})\nstderr:\n{run.stderr}"
    )
    summary: dict[str, Any] = json.loads(lines[-1])
    reported = "\n".join(summary.get("failures", [])) or run.stderr
    context = f"\nthe client reported:\n{reported}"

    assert summary["packages"] == {
        "@modelcontextprotocol/ext-tasks": "0.2.2",
        "@modelcontextprotocol/client": "2.4.0",
    }

    # 1. discovery: the extension is advertised; the connection speaks 2026-07-28.
    discover = summary["discover"]
    assert discover["protocolVersion"] == "2026-07-28", context
    assert discover["plainProtocolVersion"] == "2026-07-28", context
    assert discover["tasksExtension"] == {}, context
    assert discover["sessionCapabilities"]["execution"] is True, context

    # 2. a task created and polled to completion by the library.
    count = summary["count"]
    assert count["outcome"]["status"] == "completed", context
    assert count["outcome"]["result"]["structuredContent"] == {"result": 7}, context
    assert count["events"][0] == "task:working", context
    assert count["events"][-1] == "outcome:completed", context
    assert "tasks/get" in count["requests"], context
    assert count["storedResult"] == without_server_info(count["plainWire"]["result"]), context

    # 3. push: subscriptions/listen acknowledged for the task, notifications/tasks to the end.
    push = summary["push"]
    assert push["acknowledgement"]["notifications"] == {"taskIds": [push["taskId"]]}, context
    assert push["notifications"], context
    assert push["notifications"][-1] == "completed", context
    assert set(push["notifications"]) <= {"working", "completed"}, context
    assert push["outcome"]["status"] == "completed", context
    assert text_of(push["outcome"]["result"]) == "slept 0.5s", context
    assert push["subscriptionClosed"] == "graceful", context

    # 4. input_required: one elicitation, answered through tasks/update.
    confirm = summary["inputRequired"]
    assert "task:input_required" in confirm["events"], context
    [request] = confirm["inputRequests"]
    assert request["kind"] == "elicitation", context
    assert (request["scope"], request["delivery"]) == ("task", "task-update"), context
    assert request["message"] == f"Delete {confirm['path']}?", context
    assert "tasks/update" in confirm["requests"], context
    assert confirm["outcome"]["status"] == "completed", context
    assert text_of(confirm["outcome"]["result"]) == f"deleted {confirm['path']}", context

    # 5. cancel.
    cancel = summary["cancel"]
    assert cancel["statusBeforeCancel"] == "working", context
    assert "tasks/cancel" in cancel["requests"], context
    assert cancel["outcome"] == {"status": "cancelled"}, context
    assert cancel["status"] == "cancelled", context

    # 8. unknown task id.
    assert summary["unknownTask"]["error"]["code"] == -32602, context

    # 9. a task-only tool without the extension: -32021 naming the extension.
    missing = summary["missingCapability"]
    assert missing["onlyTask"]["error"]["code"] == -32021, context
    assert missing["onlyTask"]["error"]["data"] == {
        "requiredCapabilities": {"extensions": {EXTENSION: {}}}
    }, context
    assert missing["count"]["result"]["structuredContent"] == {"result": 2}, context
    assert missing["withExtension"]["result"]["structuredContent"] == {"result": 3}, context

    # 10. twenty concurrent tasks.
    concurrent = summary["concurrent"]
    assert len(set(concurrent["taskIds"])) == 20, context
    assert concurrent["statuses"] == ["completed"] * 20, context
    assert concurrent["results"] == list(range(1, 21)), context

    # 6. a tool that raises: the task completes with exactly the isError result the same call
    # gives without a task (a 2026-07-28 CallToolResult, resultType included), and the client
    # surfaces it as a result, not as a schema error.
    tool_error = summary["toolError"]
    plain = tool_error["plainWire"]["result"]
    assert plain["isError"] is True and text_of(plain) == "boom", context
    assert plain["resultType"] == "complete", context
    assert tool_error["plainCallTool"]["result"]["isError"] is True, context
    assert text_of(tool_error["plainCallTool"]["result"]) == "boom", context
    assert tool_error["taskStatus"] == "completed", context
    assert tool_error["storedResult"] == without_server_info(plain), (
        "the stored result of a task whose tool raised differs from the plain call's result"
        + context
    )
    for outcome in (tool_error["outcome"], tool_error["controllerOutcome"]):
        assert outcome["status"] == "completed", context
        assert outcome["result"]["isError"] is True, context
        assert "boom" in text_of(outcome["result"]), context

    # 7. invalid arguments: the task answers as the plain call does.
    invalid = summary["invalidArguments"]
    if "error" in invalid["plainWire"]:
        code = invalid["plainWire"]["error"]["code"]
        assert code in (
            invalid.get("callError", {}).get("code"),
            (invalid.get("storedError") or {}).get("code"),
        ), context
    else:
        plain = invalid["plainWire"]["result"]
        assert plain["isError"] is True, context
        assert invalid["kind"] == "task", context
        assert invalid["taskStatus"] == "completed", context
        assert invalid["storedResult"] == without_server_info(plain), context
        assert invalid["outcome"]["status"] == "completed", context
        assert invalid["outcome"]["result"]["isError"] is True, context

    assert summary["protocolErrors"] == [], context
    assert summary["sessionErrors"] == [], context
    assert summary["ok"] is True, context
    assert run.returncode == 0, f"the 2026 client failed (exit {run.returncode}){context}"
