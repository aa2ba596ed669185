"""Turns a docket URL into a Redis client: a real server, or an in-process fakeredis store.

``memory://`` (optionally ``memory://<name>``) gives every distinct URL its own isolated
in-process store that all dockets of this process opened with that URL share, so a server
and its in-process worker see the same tasks without any Redis running.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import fakeredis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

REDIS_SCHEMES = ("redis", "rediss", "unix")
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    BusyLoadingError,
    OSError,
)
"""Errors that mean "Redis is unreachable right now" — retried with backoff, never fatal."""


class WorkSignal:
    """Wakes this process's idle workers when a task is added to a memory:// store.

    fakeredis answers ``XREADGROUP ... BLOCK`` at once instead of blocking, so on memory://
    a worker waits on this signal rather than spinning. One signal per event loop, because
    asyncio events belong to the loop that first waits on them.
    """

    def __init__(self) -> None:
        self._events: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = (
            weakref.WeakKeyDictionary()
        )

    def current(self) -> asyncio.Event:
        """The event the next :meth:`notify` sets; take it *before* looking for work."""
        loop = asyncio.get_running_loop()
        event = self._events.get(loop)
        if event is None:
            event = self._events[loop] = asyncio.Event()
        return event

    def notify(self) -> None:
        for loop, event in list(self._events.items()):
            self._events[loop] = asyncio.Event()
            if loop.is_closed():
                continue
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if loop is running:
                event.set()
            else:
                loop.call_soon_threadsafe(event.set)


@dataclass
class MemoryStore:
    server: fakeredis.FakeServer = field(default_factory=fakeredis.FakeServer)
    signal: WorkSignal = field(default_factory=WorkSignal)


_memory_stores: dict[str, MemoryStore] = {}


@dataclass(frozen=True)
class Backend:
    """How to reach one docket's data."""

    url: str
    memory: MemoryStore | None

    @property
    def is_memory(self) -> bool:
        return self.memory is not None

    @property
    def is_cluster(self) -> bool:
        return self.url.split(":", 1)[0].lower().endswith("+cluster")

    def client(self, *, max_connections: int = 64, socket_timeout: float = 10.0) -> Redis:
        """A new client with its own pool; callers close it with ``aclose()``.

        A ``redis+cluster://`` URL gives a cluster client. Every key of a docket shares one
        hash tag, so every command and script of a docket goes to one node; the cluster
        client is typed as a plain client here because that is all the engine uses of it.
        """
        if self.is_cluster:
            from redis.asyncio.cluster import RedisCluster

            real = (
                "rediss" + self.url[len("rediss+cluster") :]
                if self.url.startswith("rediss+cluster")
                else "redis" + self.url[len("redis+cluster") :]
            )
            # The cluster client's pool raises instead of waiting when it is exhausted,
            # so it gets room for many concurrent callers (e.g. a thousand wait()s).
            cluster = RedisCluster.from_url(
                real,
                max_connections=max(max_connections, 1024),
                socket_timeout=socket_timeout,
                socket_connect_timeout=5,
                retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
            )
            return cluster  # type: ignore[return-value]
        if self.memory is not None:
            return fakeredis.FakeAsyncRedis(
                server=self.memory.server,
                connection_pool_class=BlockingConnectionPool,
                max_connections=max_connections,
            )
        pool = BlockingConnectionPool.from_url(
            self.url,
            max_connections=max_connections,
            timeout=30,
            health_check_interval=30,
            socket_timeout=socket_timeout,
            socket_connect_timeout=5,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
            retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError],
        )
        return Redis(connection_pool=pool)


async def close_client(client: Redis) -> None:
    """Close a client and the connections of its pool (ours are not auto-closed)."""
    await client.aclose()
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        await pool.disconnect()


def parse_url(url: str) -> Backend:
    """Validate a docket URL; a clear ``ValueError`` names what is wrong with a bad one."""
    if not isinstance(url, str) or not url:
        raise ValueError("a docket URL is required, e.g. memory:// or redis://localhost:6379/0")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"malformed docket URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "memory":
        if parts.path not in ("", "/") or parts.query or port is not None:
            raise ValueError(f"malformed memory URL {url!r}: use memory:// or memory://<name>")
        store = _memory_stores.setdefault(url, MemoryStore())
        return Backend(url=url, memory=store)
    if scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        if not parts.hostname:
            raise ValueError(f"malformed Redis URL {url!r}: it names no host")
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ValueError(f"malformed Redis URL {url!r}: the database must be a number")
        return Backend(url=url, memory=None)
    if scheme == "unix":
        if not parts.path:
            raise ValueError(f"malformed Redis URL {url!r}: it names no socket path")
        return Backend(url=url, memory=None)
    raise ValueError(
        f"unsupported docket URL {url!r}: use memory://, redis://host:port/db, "
        "rediss://..., redis+cluster://host:port or unix:///path"
    )
