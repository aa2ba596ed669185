"""The README's two set-up commands: the server command works verbatim on a clean copy of the
repository, and the test command is exactly what CI runs.

The test command (``./scripts/test``) installs everything and runs every test, this file
included, so it cannot run inside itself; CI runs it verbatim on a fresh clone (``.ci/run``
holds that one command, which the first test checks), so a test command that does not work
on a fresh machine fails CI. The server command runs here in a copy that holds the files git
would commit (no .venv, no node_modules, no caches), and must answer MCP ``initialize`` and
``tools/list`` on stdio with the task tools; the cold venv and ``pip install`` take most of
the time, about a minute on the 2-core machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import IO, Any

import pytest

from tests.helpers.servers import ROOT

TASK_TOOLS = {"sleep", "count", "count_primes", "checksum_tree", "find_duplicates", "fetch_urls"}
pytestmark = pytest.mark.timeout(300)  # a cold pip install on a loaded machine


def setup_commands(readme: str) -> tuple[str, str]:
    """The first two ```bash blocks under "## Set up": run the server, run the tests."""
    section = readme.split("\n## Set up\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) >= 2, section
    server, tests = (block.strip() for block in blocks[:2])
    assert "server.py" in server and tests == "./scripts/test", (server, tests)
    return server, tests


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    target = tmp_path_factory.mktemp("clean-copy")
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file may have been deleted in the work tree
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def shell(command: str, cwd: Path, **options: Any) -> subprocess.Popen[bytes]:
    """Run a README command as a user would paste it, in its own process group."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(options.pop("env", {}))
    return subprocess.Popen(
        ["bash", "-c", command], cwd=cwd, env=env, start_new_session=True, **options
    )


def answer(stdout: IO[bytes], request_id: int) -> dict[str, Any]:
    """The JSON-RPC response with this id; pip's own output comes first on the same pipe."""
    for raw in stdout:
        line = raw.decode(errors="replace").strip()
        if line.startswith("{"):
            message = json.loads(line)
            if message.get("id") == request_id:
                return message  # type: ignore[no-any-return]
    pytest.fail(f"the server closed stdout before answering request {request_id}")


def send(stdin: IO[bytes], message: dict[str, Any]) -> None:
    stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
    stdin.flush()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    _, test_command = setup_commands((ROOT / "README.md").read_text())
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == test_command, (commands, test_command)
    assert all(line.startswith(("set ", "cd ")) for line in commands[:-1]), commands
    assert os.access(ROOT / test_command.split()[0], os.X_OK), test_command


def test_the_server_command_serves_the_task_tools_over_stdio(copy: Path) -> None:
    server_command, _ = setup_commands((copy / "README.md").read_text())
    with (copy.parent / "server.stderr").open("wb") as log:
        process = shell(
            server_command,
            copy,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env={"MCP_TASKS_URL": "memory://"},
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            # Written at once: the pipe holds it until the server, after pip, reads stdin.
            client = {"name": "readme-test", "version": "0"}
            initialize = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client}
            send(process.stdin, {"id": 1, "method": "initialize", "params": initialize})
            started = answer(process.stdout, 1)
            assert started["result"]["capabilities"]["tasks"]["requests"] == {"tools": {"call": {}}}
            send(process.stdin, {"method": "notifications/initialized"})
            send(process.stdin, {"id": 2, "method": "tools/list", "params": {}})
            tools = {t["name"]: t for t in answer(process.stdout, 2)["result"]["tools"]}
        finally:
            process.stdin.close()  # end of input: a stdio server exits
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    assert set(tools) >= TASK_TOOLS, sorted(tools)
    for name in TASK_TOOLS:
        assert tools[name]["execution"]["taskSupport"] == "optional", tools[name]


def test_the_demo_command_runs_a_task_with_progress(copy: Path) -> None:
    """The README's 30-second demo, verbatim: a task call with pushed progress from Python
    (mcp_tasks.client), in a venv made by the README's own command."""
    readme = (copy / "README.md").read_text()
    section = readme.split("\n## 30-second demo\n", 1)[1].split("\n## ", 1)[0]
    demo = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)[0].strip()
    process = shell(demo, copy, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    assert json.loads(out.decode().strip().splitlines()[-1]) == {"result": 216816}
    assert "completed" in err.decode(errors="replace")  # the progress display, on stderr
