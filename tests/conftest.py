"""Shared fixtures: every engine test runs on memory://, the real Redis and a Redis Cluster.

The real Redis is the one on 127.0.0.1:6379 (``MCP_TASKS_TEST_REDIS`` overrides it). When it
does not answer, the Redis-backed tests fail with a clear message; they never skip.

The tests are a package, by layer: ``engine/`` (the docket), ``protocol/`` (wire shapes),
``mcp/`` (the server in process), ``e2e/`` (real processes, real clients, the README),
``structure/`` (the package's seams); ``helpers/`` holds what they share (dockets, servers,
raw requests, Redis processes, the MCP harness) and ``processes/`` the helper programs they
start. Markers: ``mcp_layer`` (run again on the oldest fastmcp), ``node``, ``browser``.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from mcp_tasks.engine import Docket
from tests.helpers.dockets import REDIS_URL, leftover_keys, purge
from tests.helpers.mcp import Harness

_counter = itertools.count()

MCP_LAYER = {
    "test_client",
    "test_client_against_peer",
    "test_interop_fastmcp_tasks",
    "test_isolation",
    "test_layers",
    "test_protocol",
    "test_mcp_caller",
    "test_mcp_dialects",
    "test_mcp_edges",
    "test_mcp_headers",
    "test_mcp_hostile_values",
    "test_mcp_limits",
    "test_mcp_processes",
    "test_mcp_progress_dependency",
    "test_mcp_push",
    "test_mcp_replication",
    "test_official_2026_client",
    "test_sdk_seam",
    "test_server_entrypoint",
    "test_typescript_client",
    "test_wire_fuzz",
}
"""The modules that exercise fastmcp and mcp themselves: scripts/test runs them again on the
oldest supported fastmcp (``-m mcp_layer`` in .venv-oldest)."""


FAKEREDIS_SEAM = {"test_fakeredis_lua", "test_sdk_seam"}
"""The modules that exercise fakeredis's private names (engine/fakeredis_lua.py): scripts/test
runs them again on the oldest supported fakeredis (``-m fakeredis_seam`` in .venv-oldest)."""

NEEDS_NODE = {"test_typescript_client", "test_official_2026_client", "test_examples"}
NEEDS_BROWSER = {"test_dashboard"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in MCP_LAYER:
            item.add_marker(pytest.mark.mcp_layer)
        if item.path.stem in FAKEREDIS_SEAM:
            item.add_marker(pytest.mark.fakeredis_seam)
        if item.path.stem in NEEDS_NODE:
            item.add_marker(pytest.mark.node)
        if item.path.stem in NEEDS_BROWSER:
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _require_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"these tests need a Redis server at {REDIS_URL}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A three-node Redis Cluster of our own on loopback ports, for the whole session."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.fail("the cluster tests need redis-server and redis-cli (Debian redis-server)")
    ports = _cluster_ports(3)
    processes = []
    try:
        for port in ports:
            folder = tmp_path_factory.mktemp(f"cluster-{port}")
            processes.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(folder),
                    ],
                    stdout=subprocess.DEVNULL,
                )
            )
        for port in ports:
            _await_ping(port)
        nodes = [f"127.0.0.1:{port}" for port in ports]
        subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for _ in range(100):  # until every node agrees the cluster is up
            states = [
                redis.Redis(host="127.0.0.1", port=port).execute_command("CLUSTER INFO")
                for port in ports
            ]
            if all(b"cluster_state:ok" in s for s in states):
                break
            time.sleep(0.1)
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
    finally:
        for process in processes:
            process.kill()
            process.wait(10)


def _cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster-bus twins (port + 10000) are free and exist too."""
    found: list[int] = []
    for port in random.sample(range(20000, 30000), 500):
        if all(_is_free(p) for p in (port, port + 10000)):
            found.append(port)
            if len(found) == count:
                return found
    pytest.fail("found no free loopback ports for the test Redis Cluster")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _await_ping(port: int) -> None:
    for _ in range(100):
        try:
            redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2).ping()
            return
        except redis.RedisError:
            time.sleep(0.05)
    pytest.fail(f"redis-server on port {port} did not start")


@pytest.fixture(params=["memory", "redis", "cluster"])
def url(request: pytest.FixtureRequest) -> str:
    """A docket URL: a fresh isolated memory:// store, the real Redis, or a Redis Cluster."""
    if request.param == "redis":
        _require_redis()
        return REDIS_URL
    if request.param == "cluster":
        return str(request.getfixturevalue("cluster_url"))
    return f"memory://test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def redis_url() -> str:
    """The real Redis only (for tests about processes and connections)."""
    _require_redis()
    return REDIS_URL


@pytest.fixture
def docket_name(request: pytest.FixtureRequest) -> str:
    """A docket name no other test uses, so tests never see each other's tasks."""
    return f"t{next(_counter)}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def docket(url: str, docket_name: str) -> AsyncIterator[Docket]:
    async with Docket(name=docket_name, url=url) as d:
        yield d
    await purge(url, docket_name)


@pytest.fixture
async def purged(url: str, docket_name: str) -> AsyncIterator[None]:
    """For a test that opens dockets of its own: their keys are deleted afterwards."""
    yield
    await purge(url, docket_name)


@pytest.fixture(autouse=True)
def no_keys_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that made a docket on a shared Redis (the one on 6379, or the session's
    cluster) must leave none of its keys behind: a leak here is a leak in production."""
    yield
    args = getattr(request.node, "funcargs", {})
    name = args.get("docket_name")
    if name is None:
        return
    urls = {args.get("url"), REDIS_URL if "redis_url" in args else None}
    for url in urls:
        if isinstance(url, str) and url.startswith("redis"):
            left = leftover_keys(url, name)
            assert not left, f"the test left {len(left)} Redis key(s) behind: {sorted(left)[:5]}"


@pytest.fixture
async def harness(url: str, docket_name: str) -> AsyncIterator[Harness]:
    """A server with a few task tools, on every backend (see :class:`Harness`)."""
    yield Harness(url, docket_name)
    await purge(url, docket_name)


@pytest.fixture(params=["memory", "redis"])
def http_replicas(request: pytest.FixtureRequest, docket_name: str) -> Iterator[list[str]]:
    """``fastmcp run server.py`` over HTTP; yields MCP endpoints: one server on memory://, or
    on Redis a replica with a worker and an API-only one (``MCP_TASKS_WORKER=0``)."""
    from tests.helpers.servers import http_server

    if request.param == "memory":
        with http_server("server.py", {"MCP_TASKS_URL": "memory://"}) as mcp:
            yield [mcp]
        return
    redis_url = request.getfixturevalue("redis_url")
    env = {"MCP_TASKS_URL": redis_url, "MCP_TASKS_NAME": docket_name}
    try:
        with (
            http_server("server.py", env) as runs_tasks,
            http_server("server.py", {**env, "MCP_TASKS_WORKER": "0"}) as api_only,
        ):
            yield [runs_tasks, api_only]
    finally:
        asyncio.run(purge(redis_url, docket_name))
