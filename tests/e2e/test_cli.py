"""The mcp-tasks CLI against a running docket on the real Redis."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from mcp_tasks.cli import main
from mcp_tasks.engine import ConcurrencyLimit, Docket, Status, Worker
from mcp_tasks.engine.keys import GROUP
from tests.helpers.dockets import REDIS_URL, purge
from tests.helpers.servers import BIN, ROOT


async def _prepare(name: str) -> dict[str, str]:
    """A docket with queued and scheduled tasks, and a worker that died holding one."""
    gate = asyncio.Event()

    async def hold() -> None:
        await gate.wait()

    docket = Docket(name=name, url=REDIS_URL)
    await docket.open()
    docket.register(hold, name="hold", concurrency=ConcurrencyLimit(1))
    running = await docket.add("hold")()
    later = await docket.add("hold", delay=3600)()
    worker = Worker(docket, concurrency=1, name="cli-test-worker")
    await worker.start()
    asyncio.get_running_loop().create_task(worker.run_forever())
    async for state in docket.watch(running.key):
        if state.status is Status.RUNNING:
            break
    queued = await docket.add("hold")()
    await worker.stop(grace=0)  # a graceful stop takes the worker out of the group...
    # ...so let it look killed while holding a task: its consumer then stays, as the status
    # command must show.
    await docket.client.xreadgroup(GROUP, "cli-test-worker", {docket.keys.stream: ">"}, count=1)
    await docket.close()
    return {"running": running.key, "queued": queued.key, "later": later.key}


@pytest.fixture
def prepared(redis_url: str, docket_name: str) -> Iterator[dict[str, str]]:
    yield asyncio.run(_prepare(docket_name))
    CliRunner().invoke(main, ["purge", "--yes", "--url", redis_url, "--name", docket_name])
    asyncio.run(purge(redis_url, docket_name))  # `mcp-tasks purge` keeps the empty group


def test_status_get_cancel_purge(
    prepared: dict[str, str], redis_url: str, docket_name: str
) -> None:
    runner = CliRunner()
    where = ["--url", redis_url, "--name", docket_name]

    status = runner.invoke(main, ["status", *where, "--json"])
    assert status.exit_code == 0, status.output
    snap = json.loads(status.output)
    assert snap["scheduled"] == 1 and snap["queued"] >= 1
    assert any(w["name"] == "cli-test-worker" for w in snap["workers"])
    assert snap["by_function"]["hold"]["scheduled"] == 1

    human = runner.invoke(main, ["status", *where])
    assert human.exit_code == 0 and "scheduled" in human.output and "hold" in human.output

    got = runner.invoke(main, ["get", prepared["later"], *where, "--json"])
    assert got.exit_code == 0 and json.loads(got.output)["status"] == "scheduled"
    missing = runner.invoke(main, ["get", "nope", *where])
    assert missing.exit_code != 0 and "no task" in missing.output

    cancelled = runner.invoke(main, ["cancel", prepared["later"], *where])
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.output
    got = runner.invoke(main, ["get", prepared["later"], *where, "--json"])
    assert json.loads(got.output)["status"] == "cancelled"

    purged = runner.invoke(main, ["purge", "--yes", *where])
    assert purged.exit_code == 0
    assert runner.invoke(main, ["get", prepared["queued"], *where]).exit_code != 0


def test_on_memory_the_cli_says_it_sees_only_its_own_empty_store() -> None:
    runner = CliRunner()
    shown = runner.invoke(main, ["status", "--url", "memory://"])
    assert shown.exit_code == 0
    assert "memory:// is this command's own, empty, in-process store" in shown.output
    assert "MCP_TASKS_URL=redis://" in shown.output
    missing = runner.invoke(main, ["get", "0" * 32, "--url", "memory://"])
    assert missing.exit_code != 0 and "memory:// is this command's own" in missing.output


def test_cli_errors_are_clear() -> None:
    runner = CliRunner()
    bad = runner.invoke(main, ["status", "--url", "http://nowhere"])
    assert bad.exit_code != 0 and "unsupported docket URL" in bad.output
    down = runner.invoke(main, ["status", "--url", "redis://127.0.0.1:1/0"])
    assert down.exit_code != 0 and "cannot reach" in down.output


def test_a_worker_says_when_it_is_ready_and_when_it_stops(redis_url: str, docket_name: str) -> None:
    env = {**os.environ, "MCP_TASKS_NAME": docket_name}
    worker = subprocess.Popen(
        [str(BIN / "mcp-tasks"), "worker", "server.py", "--url", redis_url, "--ready"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        listed = CliRunner().invoke(main, ["status", "--url", redis_url, "--name", docket_name])
        assert listed.exit_code == 0 and f"-{worker.pid}-" in listed.output
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
        asyncio.run(purge(redis_url, docket_name))
    where = f"server.py on {redis_url} (docket {docket_name!r})"
    assert f"mcp-tasks worker ready: {where}, concurrency 10" in stderr
    assert f"mcp-tasks worker stopped: {where}" in stderr
