"""Highly available Redis: Sentinel URLs, failover, and ``min_replicas`` (WAIT) confirmation.

Each test starts its own primary, replica and sentinel (tests/helpers/sentinel.py); the
cluster tests use the session's cluster, whose masters have no replicas, which is what makes
its confirmations time out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_tasks.engine import Docket, ReplicasBehind, Status, Worker
from mcp_tasks.engine.connection import SentinelTarget, parse_url
from tests.helpers.dockets import purge, running
from tests.helpers.sentinel import SentinelGroup

pytestmark = pytest.mark.anyio


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path, replicas=2)  # one left to confirm after a failover
    try:
        group.start()
        yield group
    finally:
        group.close()


def test_sentinel_urls() -> None:
    target = SentinelTarget.parse(
        "redis+sentinel://user:p%40ss@10.0.0.1:26380,[::1],10.0.0.3/primary/2"
        "?sentinel_password=s3cret"
    )
    assert target.sentinels == (("10.0.0.1", 26380), ("::1", 26379), ("10.0.0.3", 26379))
    assert (target.service, target.db) == ("primary", 2)
    assert (target.username, target.password, target.sentinel_password) == (
        "user",
        "p@ss",
        "s3cret",
    )
    assert not target.tls and SentinelTarget.parse("rediss+sentinel://h/s").tls
    assert parse_url("redis+sentinel://h:1,h:2/s").is_sentinel
    for bad, why in [
        ("redis+sentinel://h:1", "give the service"),
        ("redis+sentinel://h:1/s/x", "database must be a number"),
        ("redis+sentinel://h:port/s", "not a host"),
        ("redis+sentinel://h,,h/s", "not a host"),
        ("redis+sentinel://h/s/0?timeout=1", "unknown option"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_url(bad)


def test_min_replicas_needs_real_redis() -> None:
    with pytest.raises(ValueError, match="memory:// has none"):
        Docket(url="memory://", min_replicas=1)
    with pytest.raises(ValueError, match="replica_timeout"):
        Docket(url="redis://localhost/0", min_replicas=1, replica_timeout=0)


async def double(n: int) -> int:
    return 2 * n


async def test_a_sentinel_docket_follows_a_failover_and_keeps_confirmed_tasks(
    group: SentinelGroup, docket_name: str
) -> None:
    async with Docket(name=docket_name, url=group.url, min_replicas=1) as docket:
        docket.register(double)
        async with running(Worker(docket)):
            done = await docket.add(double)(1)
            assert (await docket.wait(done.key, timeout=10)).result == 2
        # Confirmed by the replica before add() answered: it survives the primary's death.
        waiting = await docket.add(double, delay=600)(2)
        old = group.primary.port
        assert await asyncio.to_thread(group.fail_over) != old
        # The same docket (no reconnect by hand) reads and writes on the new primary.
        survivor = await docket.get(waiting.key)
        assert survivor is not None and survivor.status is Status.SCHEDULED
        finished = await docket.get(done.key)
        assert finished is not None and finished.status is Status.COMPLETED
        async with running(Worker(docket)):
            after = await docket.add(double)(3)
            assert (await docket.wait(after.key, timeout=20)).result == 6
        await docket.cancel(waiting.key)


async def test_unconfirmed_creation_is_an_error_and_the_task_is_withdrawn(
    group: SentinelGroup, docket_name: str
) -> None:
    ran: list[int] = []

    async def record(n: int) -> int:
        ran.append(n)
        return n

    async with Docket(
        name=docket_name, url=group.url, min_replicas=1, replica_timeout=0.3
    ) as docket:
        docket.register(record)
        group.pause_replicas()
        try:
            with pytest.raises(ReplicasBehind, match="only 0 of the 1"):
                await docket.add(record, key="unconfirmed")(1)
        finally:
            group.resume_replicas()
        withdrawn = await docket.get("unconfirmed")
        assert withdrawn is not None and withdrawn.status is Status.CANCELLED
        async with running(Worker(docket)):
            confirmed = await docket.add(record)(2)
            assert (await docket.wait(confirmed.key, timeout=10)).result == 2
        assert ran == [2]


async def test_a_finish_replicas_do_not_confirm_is_announced_with_a_warning(
    group: SentinelGroup, docket_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mcp_tasks.engine")
    gate = asyncio.Event()
    warned = asyncio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "not confirmed by replicas" in record.getMessage():
                warned.set()

    watch = Watch()
    logging.getLogger("mcp_tasks.engine").addHandler(watch)

    async def gated() -> str:
        await gate.wait()
        return "done"

    async with Docket(
        name=docket_name, url=group.url, min_replicas=1, replica_timeout=0.3
    ) as docket:
        docket.register(gated)
        async with running(Worker(docket)):
            task = await docket.add(gated)()
            group.pause_replicas()
            try:
                gate.set()
                # Announced when the wait for the replicas timed out (it stands on the
                # primary), and the worker says so.
                final = await docket.wait(task.key, timeout=10)
                await asyncio.wait_for(warned.wait(), 10)
            finally:
                group.resume_replicas()
                logging.getLogger("mcp_tasks.engine").removeHandler(watch)
        assert final.status is Status.COMPLETED and final.result == "done"


async def test_min_replicas_on_a_cluster_waits_on_the_dockets_node(
    cluster_url: str, docket_name: str
) -> None:
    # The session's cluster has no replicas: WAIT, sent to the node of the docket's slot on
    # the script's connection, confirms nothing, so creating a task is refused.
    try:
        async with Docket(
            name=docket_name, url=cluster_url, min_replicas=1, replica_timeout=0.1
        ) as docket:
            docket.register(double)
            with pytest.raises(ReplicasBehind, match="only 0 of the 1"):
                await docket.add(double, key="refused")(1)
            refused = await docket.get("refused")
            assert refused is not None and refused.status is Status.CANCELLED
    finally:
        await purge(cluster_url, docket_name)
