"""The mcp-tasks CLI against a running docket on the real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from conftest import REDIS_URL, purge

from mcp_tasks.cli import main
from mcp_tasks.engine import ConcurrencyLimit, Docket, Status, Worker
from mcp_tasks.engine.keys import GROUP


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


def test_cli_errors_are_clear() -> None:
    runner = CliRunner()
    bad = runner.invoke(main, ["status", "--url", "http://nowhere"])
    assert bad.exit_code != 0 and "unsupported docket URL" in bad.output
    down = runner.invoke(main, ["status", "--url", "redis://127.0.0.1:1/0"])
    assert down.exit_code != 0 and "cannot reach" in down.output
