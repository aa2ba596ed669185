"""Turns a docket URL into a Redis client: a real server, or an in-process fakeredis store.

The URL forms: ``memory://[name]``; ``redis://``, ``rediss://`` and ``unix://`` (one server);
``redis+cluster://`` (a Redis Cluster); ``redis+sentinel://host:port,host:port/<service>/<db>``
(a primary with replicas behind Redis Sentinel: every connection asks the sentinels where the
primary is, so after a failover the next connection finds the new one by itself).

``memory://`` (optionally ``memory://<name>``) gives every distinct URL its own isolated
in-process store that all dockets of this process opened with that URL share, so a server
and its in-process worker see the same tasks without any Redis running.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import fakeredis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

from . import fakeredis_lua

REDIS_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_PORT = 26379
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
    fast_lua: bool = field(init=False, default=False)
    """Whether :mod:`fakeredis_lua` sped this store's scripts up (False: fakeredis as is)."""

    def __post_init__(self) -> None:
        self.fast_lua = fakeredis_lua.speed_up(self.server)


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

    @property
    def is_sentinel(self) -> bool:
        return self.url.split(":", 1)[0].lower() in SENTINEL_SCHEMES

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
        if self.is_sentinel:
            return sentinel_client(self.url, max_connections, socket_timeout)
        if self.memory is not None:
            return fakeredis.FakeAsyncRedis(
                server=self.memory.server,
                connection_pool_class=BlockingConnectionPool,
                max_connections=max_connections,
            )
        pool = BlockingConnectionPool.from_url(
            self.url, **pool_options(max_connections, socket_timeout)
        )
        return Redis(connection_pool=pool)


def pool_options(max_connections: int, socket_timeout: float) -> dict[str, Any]:
    """How every pool of a single primary (``redis://``, ``redis+sentinel://``) behaves: it
    waits for a free connection rather than failing, checks idle ones, and retries a command
    whose connection broke (an outage or a failover) with backoff before it gives up."""
    return {
        "max_connections": max_connections,
        "timeout": 30,
        "health_check_interval": 30,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 5,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        "retry_on_error": [ConnectionError, TimeoutError, BusyLoadingError],
    }


def reply_text(value: Any) -> str:
    """A reply's value as text. The engine's clients leave replies as bytes (task records
    are decoded field by field, and a sealed value is bytes), so names that come back from
    Redis (channels, consumers, groups) are decoded where they are read, with this."""
    return value.decode() if isinstance(value, bytes) else str(value)


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
    if url.split("://", 1)[0].lower() in SENTINEL_SCHEMES:
        SentinelTarget.parse(url)  # raises on a malformed one
        return Backend(url=url, memory=None)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"malformed docket URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "memory":
        if parts.path not in ("", "/") or parts.query or port is not None:
            raise ValueError(f"malformed memory URL {url!r}: use memory:// or memory://<name>")
        store = _memory_stores.get(url)
        if store is None:  # built only when missing (building one runs a Lua script);
            # setdefault: two threads opening one URL at once still share one store
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
        "rediss://..., redis+cluster://host:port, "
        "redis+sentinel://host:port,host:port/<service>/<db> or unix:///path"
    )


@dataclass(frozen=True)
class SentinelTarget:
    """What a ``redis+sentinel://`` URL names: the sentinels, the service, the database.

    ``redis+sentinel://[user:password@]host[:port][,host[:port]...]/<service>[/<db>]``; the
    credentials are the primary's (and its replicas'). Sentinels that need a password of their
    own take ``?sentinel_password=...`` (and ``sentinel_username``). ``rediss+sentinel://``
    speaks TLS to the primary.
    """

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None
    password: str | None
    sentinel_username: str | None
    sentinel_password: str | None
    tls: bool

    @classmethod
    def parse(cls, url: str) -> SentinelTarget:
        # urlsplit cannot read a netloc of several host:port pairs, so split by hand.
        scheme, _, rest = url.partition("://")
        location, _, query = rest.partition("?")
        netloc, _, path = location.partition("/")
        userinfo, _, hosts = netloc.rpartition("@")
        sentinels = []
        shown = f"{scheme}://{'***@' if userinfo else ''}{hosts}/{path}"  # no password
        for entry in (e.strip() for e in hosts.split(",")):
            if entry.startswith("["):  # an IPv6 address: [::1] or [::1]:26379
                host, _, after = entry[1:].partition("]")
                port = after[1:] if after.startswith(":") else str(SENTINEL_PORT)
                if after and not after.startswith(":"):
                    host = ""
            else:
                host, colon, port = entry.rpartition(":")
                if not colon:
                    host, port = entry, str(SENTINEL_PORT)
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    f"malformed Sentinel URL {shown!r}: {entry!r} is not a host[:port]"
                )
            sentinels.append((host, int(port)))
        parts = [unquote(p) for p in path.split("/") if p]
        if not parts or len(parts) > 2:
            raise ValueError(
                f"malformed Sentinel URL {shown!r}: give the service and optionally the "
                "database, e.g. redis+sentinel://localhost:26379/mymaster/0"
            )
        if len(parts) == 2 and not parts[1].isdigit():
            raise ValueError(f"malformed Sentinel URL {shown!r}: the database must be a number")
        username, _, password = userinfo.partition(":")
        options = {name: values[-1] for name, values in parse_qs(query).items()}
        unknown = set(options) - {"sentinel_username", "sentinel_password"}
        if unknown:
            raise ValueError(
                f"malformed Sentinel URL {shown!r}: unknown option(s) {', '.join(sorted(unknown))}"
            )
        return cls(
            sentinels=tuple(sentinels),
            service=parts[0],
            db=int(parts[1]) if len(parts) == 2 else 0,
            username=unquote(username) or None,
            password=unquote(password) or None,
            sentinel_username=options.get("sentinel_username"),
            sentinel_password=options.get("sentinel_password"),
            tls=scheme.lower().startswith("rediss"),
        )


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """redis-py's Sentinel pool with the blocking pool's waiting when every connection is in
    use (its own raises "Too many connections"), like the pool of a plain ``redis://`` URL."""


def sentinel_client(url: str, max_connections: int, socket_timeout: float) -> Redis:
    """A client of the primary the sentinels name; it asks them again on every new
    connection, and redis-py drops a connection that finds its server demoted (READONLY)."""
    target = SentinelTarget.parse(url)
    timeouts: dict[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
    if target.sentinel_password:
        timeouts["password"] = target.sentinel_password
        timeouts["username"] = target.sentinel_username
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=timeouts)  # type: ignore[no-untyped-call]
    pool = BlockingSentinelPool(  # type: ignore[no-untyped-call]
        target.service,
        sentinel,
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.tls,
        **pool_options(max_connections, socket_timeout),
    )
    return Redis(connection_pool=pool)
