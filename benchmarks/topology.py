"""Redis topologies of our own on loopback, for the chaos run to put its docket on and break.

Each topology starts its processes itself (``redis-server`` and ``redis-cli`` from PATH), logs
each one to ``<folder>/<process>.log`` and kills them all in :meth:`Topology.close` (also when
:meth:`~Topology.start` fails half-way; use them as context managers). They share one shape:

* ``url``: the docket URL of the topology;
* ``start()``: start everything and wait until it is fully formed (replicas in sync,
  sentinels aware of each other, every cluster node agreeing the cluster is up);
* ``disrupt(key)``: the fault. It SIGKILLs the Redis that holds ``key`` (any key of the
  docket) and answers the seconds, measured, until the docket's primary accepts a write again;
* ``close()``: SIGKILL everything.

The topologies:

* :class:`Single`: one ``redis-server`` (append-only file, fsync always). ``disrupt`` SIGKILLs
  it, leaves it down ``down`` seconds and starts it again on the same port and files: nothing
  acknowledged is lost, the docket just waits.
* :class:`SentinelGroup`: a primary, two replicas and three sentinels (quorum 2,
  ``down-after-milliseconds`` 1000). ``disrupt`` SIGKILLs the primary and waits until the
  sentinels hand out a promoted replica that answers ``ROLE`` as master and takes a write.
* :class:`ReplicatedCluster`: six cluster nodes, three masters with one replica each
  (``cluster-node-timeout`` 1000). ``disrupt`` SIGKILLs the master of the key's slot and waits
  until its replica is master of that slot, the cluster is ok and the slot takes a write.

Replication is asynchronous: a write the killed primary acknowledged but had not yet sent to
the replica that took over is gone. That is the loss the chaos run measures with the engine's
``min_replicas`` off and on. The replicated topologies keep no files (no AOF, no RDB): the
replicas are the copies. After a failover ``disrupt`` starts the killed node again as a
replica of the new primary (as an operator would), so that the primary has as many replicas as
before: with one replica per shard (the cluster) a primary left without one could never
confirm a write to ``min_replicas=1``. ``rejoined_s`` tells how long after the kill that
replica was in sync.
"""

from __future__ import annotations

import random
import re
import shutil
import socket
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import redis

HOST = "127.0.0.1"
SERVICE = "mymaster"
START_TIMEOUT = 60.0
FAILOVER_TIMEOUT = 60.0
T = TypeVar("T")


def binary(name: str) -> str:
    """The path of ``redis-server`` or ``redis-cli``; a clear error when it is not installed."""
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"{name} is not on PATH: the chaos run's Redis topologies need redis-server and "
            "redis-cli (Debian: apt-get install redis-server redis-tools)"
        )
    return found


PORTS = range(10000, 22000)
"""Where ports come from: below Linux's ephemeral range (32768 and up by default), the cluster
bus twins (port + 10000) too. A port freed by a SIGKILL thus cannot become some client's
outgoing port before the node restarts on it."""
_handed_out: set[int] = set()


def free_port(bus: bool = False) -> int:
    """A free loopback port not handed out before in this process; with ``bus``, one whose
    cluster-bus twin (port + 10000) is free too."""
    for port in random.sample(PORTS, 500):
        wanted = (port, port + 10000) if bus else (port,)
        if not _handed_out.intersection(wanted) and all(_is_free(p) for p in wanted):
            _handed_out.update(wanted)
            return port
    raise RuntimeError("found no free loopback port")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def connect(port: int) -> redis.Redis:
    """A short-tempered client of one process (no retries: the callers poll)."""
    return redis.Redis(
        host=HOST, port=port, socket_timeout=1.0, socket_connect_timeout=0.5, decode_responses=True
    )


def ask(port: int, *command: str) -> Any:
    """One command to one process; ``None`` when it cannot answer (down, loading, refusing)."""
    client = connect(port)
    client.response_callbacks.clear()  # raw replies: "PONG", "OK", INFO as text, ...
    try:
        return client.execute_command(*command)  # type: ignore[no-untyped-call]
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()


def wait_for(
    what: str,
    check: Callable[[], T | None],
    timeout: float,
    gone: Callable[[], bool] = lambda: False,
) -> T:
    """Poll ``check`` until it answers something truthy; a RuntimeError naming ``what`` after
    ``timeout`` seconds, or as soon as ``gone()`` (the topology was closed meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if gone():
            raise RuntimeError(f"the topology was closed while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes: its first ``{...}`` if not empty, else all."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1 : end] if end > start + 1 else key


def probe_key(key: str) -> str:
    """A key in the same slot as ``key`` that is none of the docket's (no shared prefix)."""
    return f"topology-probe:{{{hash_tag(key)}}}"


def writable(port: int, key: str) -> bool:
    """Whether the process on ``port`` is a master that takes a write of ``key``'s slot."""
    role = ask(port, "ROLE")
    return bool(role) and role[0] == "master" and ask(port, "SET", probe_key(key), "1") == "OK"


class Server:
    """One redis-server (or sentinel) process of a topology: its port, arguments, log file."""

    def __init__(self, owner: Topology, name: str, port: int, arguments: list[str]) -> None:
        self.owner = owner
        self.name = name
        self.port = port
        self.arguments = arguments
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.owner.folder / f"{self.name}.log"

    def start(self, *extra: str) -> None:
        """Start it (``extra`` arguments after the usual ones) and wait until it answers.
        Refused once the topology is closed, so that a fault still under way in another
        thread cannot start a process that nothing would kill."""
        with self.owner.lock, open(self.log, "ab") as log:
            if self.owner.closed:
                raise RuntimeError(f"the topology is closed: {self.name} is not started again")
            self.process = subprocess.Popen(
                [binary("redis-server"), *self.arguments, *extra],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            process = self.process

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} (port {self.port}) exited with {process.returncode}; "
                    f"see {self.log}"
                )
            return bool(ask(self.port, "PING") == "PONG")

        self.owner.wait(f"{self.name} on port {self.port} to answer PING", answers, START_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL it (if it runs) and reap it."""
        with self.owner.lock:
            process, self.process = self.process, None
            if process is not None:
                process.kill()
                process.wait(10)


class Topology(ABC):
    """Redis processes of our own, and the fault to do to them. See the module docstring."""

    kind: ClassVar[str]
    fault: ClassVar[str]
    """What :meth:`disrupt` does, in a few words."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.servers: list[Server] = []
        self.nodes: list[Server] = []  # the ones holding data (not the sentinels)
        self.lock = threading.RLock()  # starting and killing processes; disrupt() runs in a thread
        self.closed = False
        self.disruptions = 0
        self.rejoined_s = 0.0

    @property
    @abstractmethod
    def url(self) -> str:
        """The docket URL."""

    @abstractmethod
    def start(self) -> None:
        """Start every process and wait until the topology is fully formed."""

    @abstractmethod
    def disrupt(self, key: str) -> float:
        """SIGKILL the Redis holding ``key``; answer the seconds until it takes writes again."""

    def server(self, name: str, port: int, arguments: list[str]) -> Server:
        """A new process of this topology (started by the caller), killed by :meth:`close`."""
        made = Server(self, name, port, arguments)
        self.servers.append(made)
        return made

    def calls(self, command: str) -> int:
        """How many times the data nodes that run now executed ``command`` (INFO
        commandstats; a killed node's count died with it)."""
        total = 0
        for node in self.nodes:
            stats = ask(node.port, "INFO", "commandstats") if node.process else None
            found = re.search(rf"^cmdstat_{command.lower()}:calls=(\d+)", stats or "", re.M)
            total += int(found.group(1)) if found else 0
        return total

    def wait(self, what: str, check: Callable[[], T | None], timeout: float) -> T:
        """:func:`wait_for`, given up as soon as the topology is closed."""
        return wait_for(what, check, timeout, gone=lambda: self.closed)

    def close(self) -> None:
        """SIGKILL every process: nothing outlives the run."""
        with self.lock:
            self.closed = True
            for server in self.servers:
                server.kill()

    def __enter__(self) -> Topology:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def plain(port: int, directory: Path) -> list[str]:
    """redis-server arguments for a loopback node with its files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        *("--port", str(port), "--bind", HOST, "--dir", str(directory), "--save", ""),
        *("--repl-diskless-sync-delay", "0"),  # a (re)joining replica syncs at once, not in 5 s
    ]


class Single(Topology):
    """One redis-server whose writes survive a SIGKILL (AOF, fsync always); the fault is a
    SIGKILL, ``down`` seconds of nothing, and a restart on the same port and files."""

    kind = "single"
    fault = "SIGKILL and restart"

    def __init__(self, folder: Path, down: float = 1.0) -> None:
        super().__init__(folder)
        self.down = down
        port = free_port()
        arguments = [*plain(port, folder), "--appendonly", "yes", "--appendfsync", "always"]
        self.redis = self.server("redis", port, arguments)
        self.nodes = [self.redis]

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.redis.port}/0"

    def start(self) -> None:
        self.redis.start()

    def disrupt(self, key: str) -> float:
        killed = time.monotonic()
        self.redis.kill()
        time.sleep(self.down)
        self.redis.start()
        self.wait("the restarted Redis to take a write", lambda: writable(self.redis.port, key), 30)
        self.disruptions += 1
        return time.monotonic() - killed


def fields(reply: list[Any] | dict[str, Any]) -> dict[str, Any]:
    """A sentinel's description of an instance as a dict (a RESP3 map already is one; RESP2
    sends ``[name, value, name, value, ...]``)."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


class SentinelGroup(Topology):
    """A primary, two replicas and three sentinels monitoring them as ``mymaster``."""

    kind = "sentinel"
    fault = "primary SIGKILLed, replica promoted"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        for i in range(3):
            port = free_port()
            self.nodes.append(self.server(f"redis-{i}", port, plain(port, folder / f"redis-{i}")))
        self.primary = self.nodes[0]
        self.sentinels: list[Server] = []
        for i in range(3):
            config = folder / f"sentinel-{i}.conf"  # each sentinel rewrites its own config
            self.sentinels.append(self.server(f"sentinel-{i}", free_port(), [str(config)]))

    @property
    def url(self) -> str:
        where = ",".join(f"{HOST}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{where}/{SERVICE}/0"

    def start(self) -> None:
        primary, *replicas = self.nodes
        primary.start()
        for replica in replicas:
            replica.start("--replicaof", HOST, str(primary.port))
        for replica in replicas:
            self._await_sync(replica)
        for sentinel in self.sentinels:
            Path(sentinel.arguments[0]).write_text(
                f"port {sentinel.port}\nbind {HOST}\ndir {self.folder}\n"
                f"sentinel monitor {SERVICE} {HOST} {primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            sentinel.start("--sentinel")

        def formed() -> bool:
            for sentinel in self.sentinels:
                replicas = ask(sentinel.port, "SENTINEL", "REPLICAS", SERVICE) or []
                others = ask(sentinel.port, "SENTINEL", "SENTINELS", SERVICE) or []
                seen = [fields(r) for r in replicas]
                if len(others) != 2 or len([r for r in seen if r.get("flags") == "slave"]) != 2:
                    return False
            return True

        self.wait("the sentinels to see both replicas and each other", formed, START_TIMEOUT)

    def _await_sync(self, replica: Server) -> None:
        def synced() -> bool:
            return "master_link_status:up" in (ask(replica.port, "INFO", "replication") or "")

        self.wait(f"{replica.name} to sync with its primary", synced, START_TIMEOUT)

    def named(self, key: str, old: Server | None = None) -> Server | None:
        """The node a sentinel names as primary in its master's state (which is what
        redis-py's Sentinel client checks: not flagged down), if it is not ``old``, answers
        ROLE as master and takes a write."""
        for sentinel in self.sentinels:
            state = fields(ask(sentinel.port, "SENTINEL", "MASTER", SERVICE) or [])
            if state.get("flags") != "master":
                continue
            node = next((n for n in self.nodes if n.port == int(state["port"])), None)
            if node is not None and node is not old and writable(node.port, key):
                return node
        return None

    def disrupt(self, key: str) -> float:
        # The primary now (a loaded machine may have seen a failover of its own).
        old = self.wait("the sentinels to name a primary", lambda: self.named(key), 30)
        killed = time.monotonic()
        old.kill()
        self.primary = self.wait(
            "the sentinels to promote a replica that takes writes",
            lambda: self.named(key, old),
            FAILOVER_TIMEOUT,
        )
        outage = time.monotonic() - killed
        self.disruptions += 1
        old.start("--replicaof", HOST, str(self.primary.port))
        self._await_sync(old)
        self.rejoined_s = time.monotonic() - killed
        return outage


class ReplicatedCluster(Topology):
    """Six cluster nodes: three masters with one replica each, made by ``redis-cli``."""

    kind = "cluster"
    fault = "the docket's master SIGKILLed, its replica promoted"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        for i in range(6):
            port = free_port(bus=True)
            arguments = plain(port, folder / f"node-{i}")
            arguments += ["--appendonly", "no", "--cluster-enabled", "yes"]
            arguments += ["--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000"]
            self.nodes.append(self.server(f"node-{i}", port, arguments))
        self.entry: Server | None = None

    @property
    def url(self) -> str:
        """A replica at the start: the fault kills a master, so the node every process starts
        from (the URL names one) stays up."""
        if self.entry is None:
            raise RuntimeError("the cluster's URL is known once it is started")
        return f"redis+cluster://{HOST}:{self.entry.port}"

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        with open(self.folder / "cluster-create.log", "wb") as log:
            subprocess.run(
                [
                    *(binary("redis-cli"), "--cluster", "create"),
                    *(f"{HOST}:{node.port}" for node in self.nodes),
                    *("--cluster-replicas", "1", "--cluster-yes"),
                ],
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=60,
            )
        self.wait("every node to see the cluster ok and synced", self.formed, START_TIMEOUT)
        self.entry = next(n for n in self.nodes if self.role(n) == "slave")

    def role(self, node: Server) -> str | None:
        answer = ask(node.port, "ROLE")
        return str(answer[0]) if answer else None

    def formed(self) -> bool:
        for node in self.nodes:
            info = ask(node.port, "CLUSTER", "INFO") or ""
            listed = (ask(node.port, "CLUSTER", "NODES") or "").splitlines()
            if "cluster_state:ok" not in info or len(listed) != len(self.nodes):
                return False
            if any("fail" in line.split()[2] or "handshake" in line for line in listed):
                return False
            if self.role(node) == "slave":
                replication = ask(node.port, "INFO", "replication") or ""
                if "master_link_status:up" not in replication:
                    return False
        return True

    def master_of(self, slot: int, asking: Server) -> Server | None:
        """The node ``asking`` names as the master of ``slot`` (from CLUSTER NODES)."""
        for line in (ask(asking.port, "CLUSTER", "NODES") or "").splitlines():
            parts = line.split()
            if "master" not in parts[2].split(",") or "fail" in parts[2]:
                continue
            for held in parts[8:]:
                low, _, high = held.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
                    return next((n for n in self.nodes if n.port == port), None)
        return None

    def disrupt(self, key: str) -> float:
        alive = [n for n in self.nodes if n.process is not None]
        slot = int(ask(alive[0].port, "CLUSTER", "KEYSLOT", key))
        old = self.master_of(slot, alive[0])
        if old is None:
            raise RuntimeError(f"no node is master of slot {slot}")
        killed = time.monotonic()
        old.kill()
        others = [n for n in self.nodes if n is not old]

        def taken_over() -> Server | None:
            new = self.master_of(slot, others[0])
            if new is None or new is old or self.role(new) != "master":
                return None
            state = ask(new.port, "CLUSTER", "INFO") or ""
            return new if "cluster_state:ok" in state and writable(new.port, key) else None

        self.wait(f"a replica to take over slot {slot}", taken_over, FAILOVER_TIMEOUT)
        outage = time.monotonic() - killed
        self.disruptions += 1
        old.start()  # its nodes.conf says it lost its slots: it comes back as their replica
        self.wait("the killed master to rejoin as a synced replica", self.formed, START_TIMEOUT)
        self.rejoined_s = time.monotonic() - killed
        return outage


TOPOLOGIES: dict[str, type[Topology]] = {
    cls.kind: cls for cls in (Single, SentinelGroup, ReplicatedCluster)
}


def make(kind: str, folder: Path, down: float = 1.0) -> Topology:
    """The topology called ``kind`` (single, sentinel, cluster), its files in ``folder``."""
    if kind == "single":
        return Single(folder, down)
    if kind not in TOPOLOGIES:
        raise ValueError(f"unknown topology {kind!r}: use one of {', '.join(TOPOLOGIES)}")
    return TOPOLOGIES[kind](folder)
