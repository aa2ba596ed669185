"""Workers as separate processes, killed and stopped; Redis itself killed and restarted.

These need real Redis (processes cannot share a memory:// store).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mcp_tasks.engine import Docket, Status, Worker
from tests.helpers.dockets import purge, running
from tests.helpers.redis_process import RedisProcess
from tests.processes.engine_worker import register

pytestmark = pytest.mark.anyio
HERE = Path(__file__).resolve().parents[1] / "processes"  # the helper processes


@pytest.fixture
async def shared(redis_url: str, docket_name: str) -> AsyncIterator[Docket]:
    async with Docket(name=docket_name, url=redis_url) as docket:
        register(docket)
        yield docket
    await purge(redis_url, docket_name)


def start_worker(docket: Docket, *options: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "engine_worker.py"), docket.url, docket.name, *options],
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


async def until_running(docket: Docket, key: str) -> None:
    async with asyncio.timeout(20):
        async for state in docket.watch(key):
            if state.status is Status.RUNNING and state.progress is not None:
                return


async def test_sigkilled_workers_task_finishes_on_another_worker(shared: Docket) -> None:
    victim = start_worker(shared, "--redelivery", "0.5")
    try:
        execution = await shared.add("slow")(60, only_first_attempt=True)
        await until_running(shared, execution.key)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    finally:
        victim.kill()
    survivor = Worker(shared, redelivery_timeout=0.5)
    async with running(survivor):
        final = await shared.wait(execution.key, timeout=20)
    assert final.status is Status.COMPLETED
    assert final.attempt == 2 and final.worker == survivor.name
    assert final.result == "slept on attempt 2"


async def test_cancel_reaches_a_task_in_another_process(shared: Docket) -> None:
    process = start_worker(shared)
    try:
        execution = await shared.add("slow")(60)
        await until_running(shared, execution.key)
        t0 = time.monotonic()
        assert await shared.cancel(execution.key)
        final = await shared.wait(execution.key, timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        process.terminate()
        process.wait(20)
    assert final.status is Status.CANCELLED
    assert elapsed < 0.5, elapsed  # ~100 ms expected; generous for a loaded CI machine


async def test_sigterm_finishes_short_work_and_hands_back_the_rest(shared: Docket) -> None:
    process = start_worker(shared, "--grace", "1")
    short = await shared.add("slow")(0.3)
    long = await shared.add("slow")(60)
    await until_running(shared, short.key)
    await until_running(shared, long.key)
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
    assert (await shared.get(short.key)).status is Status.COMPLETED  # type: ignore[union-attr]
    handed_back = await shared.get(long.key)
    assert handed_back is not None and handed_back.status is Status.QUEUED


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def test_redis_restart_loses_nothing_and_the_worker_resumes(
    own_redis: RedisProcess, docket_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mcp_tasks.engine")
    async with Docket(name=docket_name, url=own_redis.url) as docket:
        register(docket)
        worker = Worker(docket)
        async with running(worker):
            before = await docket.add("slow")(0)
            assert (await docket.wait(before.key, timeout=10)).status is Status.COMPLETED
            pending = await docket.add("slow", delay=1.0)(0)  # due while Redis is down
            own_redis.kill()
            await asyncio.sleep(1.5)  # the outage itself: nothing to await but time
            own_redis.start()
            final = await docket.wait(pending.key, timeout=20)
            after = await docket.add("slow")(0)
            assert (await docket.wait(after.key, timeout=20)).status is Status.COMPLETED
    assert final.status is Status.COMPLETED
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("unreachable" in r.getMessage() for r in warnings)
    assert any("reachable again" in r.getMessage() for r in warnings)
    assert len(warnings) <= 6, [r.getMessage() for r in warnings]  # a line, not a storm
    assert not any(r.exc_info for r in caplog.records)
