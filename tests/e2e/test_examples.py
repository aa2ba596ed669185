"""The examples in examples/ run end to end, as a reader would run them.

Each client runs as its own process against the real server: spawned over stdio, or a
``fastmcp run server.py --transport http`` process. Ctrl-C is a SIGINT to the client's whole
process group, as a terminal sends it; the examples must then cancel their task and exit 130.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.node import node_with
from tests.helpers.servers import ROOT, http_server

EXAMPLES = ROOT / "examples"
TS_DIR = EXAMPLES / "typescript"
ENV = {**os.environ, "MCP_TASKS_URL": "memory://", "COLUMNS": "200"}
TIMEOUT = 60


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """One HTTP server process for every HTTP example in this file."""
    with http_server("server.py", {"MCP_TASKS_URL": "memory://"}) as address:
        yield address


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-3000:]}"
    return done


def interrupted(*command: str | Path) -> tuple[int, str]:
    """Run until the task is created, press Ctrl-C, and return the exit code and stderr."""
    process = subprocess.Popen(
        [str(part) for part in command],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so the SIGINT reaches only it
    )
    assert process.stderr is not None
    seen = []
    try:
        for line in process.stderr:  # blocks until a line; ends if the client exits
            seen.append(line)
            if " created (" in line:
                break
        else:
            pytest.fail(f"the client exited before creating its task:\n{''.join(seen)}")
        os.killpg(process.pid, signal.SIGINT)
        _, rest = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, "".join(seen) + rest


def task_id(stderr: str) -> str:
    found = re.search(r"task ([0-9a-f]{32}) created", stderr)
    assert found, stderr
    return found.group(1)


# -- examples/progress_client.py (both dialects, mcp_tasks.client) --------------------------


@pytest.mark.parametrize(("flags", "version"), [((), "2026-07-28"), (("--legacy",), "2025-11-25")])
def test_progress_client_over_stdio_follows_pushed_progress(
    flags: tuple[str, ...], version: str
) -> None:
    args = ("count_primes", '{"below": 1000000}', *flags)
    done = run(sys.executable, EXAMPLES / "progress_client.py", *args)
    assert json.loads(done.stdout) == {"result": 78498}
    assert f"({version})" in done.stderr
    pushed = re.search(r"completed \((\d+) updates pushed, progress 1000000/1000000\)", done.stderr)
    assert pushed, done.stderr  # the same numbers in both dialects, full at the end
    assert int(pushed.group(1)) >= 2  # at least one change while working, then the end


def test_progress_client_over_http_polls(url: str) -> None:
    args = ("sleep", '{"seconds": 0.3}', "--url", url, "--poll")
    done = run(sys.executable, EXAMPLES / "progress_client.py", *args)
    assert json.loads(done.stdout) == {"result": "slept 0.3s"}
    assert re.search(r"completed \(\d+ updates polled, progress 10/10\)", done.stderr), done.stderr


def test_progress_client_ctrl_c_cancels_the_task_over_stdio() -> None:
    args = ("sleep", '{"seconds": 60}')
    code, stderr = interrupted(sys.executable, EXAMPLES / "progress_client.py", *args)
    assert code == 130, stderr
    assert "cancelling: tasks/cancel" in stderr
    assert f"task {task_id(stderr)} cancelled" in stderr


# -- examples/legacy_client.py (2025-11-25) -------------------------------------------------


def test_legacy_client_over_stdio_gets_progress_and_the_blocking_result() -> None:
    done = run(sys.executable, EXAMPLES / "legacy_client.py", "count_primes", '{"below": 100000}')
    assert json.loads(done.stdout) == {"result": 9592}
    assert "(2025-11-25)" in done.stderr
    assert f"task {task_id(done.stderr)} completed" in done.stderr
    progress = re.search(r"\((\d+) progress and", done.stderr)
    assert progress and int(progress.group(1)) >= 1, done.stderr


def test_legacy_client_over_http_ctrl_c_cancels_the_task(url: str) -> None:
    args = ("sleep", '{"seconds": 60}', "--url", url)
    code, stderr = interrupted(sys.executable, EXAMPLES / "legacy_client.py", *args)
    assert code == 130, stderr
    task = task_id(stderr)
    assert f"tasks/cancel answered: task {task} cancelled" in stderr
    assert f"task {task} cancelled" in stderr
    assert "tasks/result: error -32603" in stderr


# -- examples/typescript (the official TypeScript SDK) --------------------------------------


def _node() -> str:
    return node_with(TS_DIR, "sdk")


def test_typescript_client_runs_a_task_to_its_result(url: str) -> None:
    client = TS_DIR / "progress_client.mjs"
    done = run(_node(), client, url, "count_primes", '{"below": 100000}')
    assert json.loads(done.stdout) == {"result": 9592}
    assert "(2025-11-25)" in done.stderr
    assert "] 100% checked numbers below 100000" in done.stderr  # progress notifications
    assert f"task {task_id(done.stderr)} completed" in done.stderr


def test_typescript_client_ctrl_c_cancels_the_task(url: str) -> None:
    client = TS_DIR / "progress_client.mjs"
    code, stderr = interrupted(_node(), client, url, "sleep", '{"seconds": 60}')
    assert code == 130, stderr
    task = task_id(stderr)
    assert f"tasks/cancel answered: task {task} cancelled" in stderr
    assert f"task {task} cancelled" in stderr


# -- examples/scale-out ---------------------------------------------------------------------


def test_scale_out_runs_tasks_across_replicas_and_workers_then_stops_everything() -> None:
    script = EXAMPLES / "scale-out" / "scale_out.py"
    done = run(sys.executable, script, "--tasks", "8", "--seconds", "0.1")
    out = done.stdout
    rows = dict(re.findall(r"│ ([^│]+?)\s+│ ([^│]+?)\s+│", out))
    assert rows["completed"] == "8", out
    for replica in "AB":
        assert rows[f"created on replica {replica}"] == "4"
        assert rows[f"result read from replica {replica}"] == "4"
    ran = {k: int(v) for k, v in rows.items() if k.startswith("ran on worker")}
    assert sum(ran.values()) == 8 and len(ran) <= 2, out  # only our two workers ran them
    # Everything it started is gone: Redis and both replicas refuse connections.
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", out)]
    assert len(ports) == 3 and 6379 not in ports, out
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
