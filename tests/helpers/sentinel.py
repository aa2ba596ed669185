"""A test-owned Redis primary with replicas behind Redis Sentinel, on loopback ports.

Small on purpose (one sentinel, quorum 1, a primary declared down after 500 ms) so that a
failover takes a couple of seconds; ``benchmarks/topology.py`` runs the full-size group (two
replicas, three sentinels) for the failover figures.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.helpers.redis_process import RedisProcess, _free_port

SERVICE = "tests"


class SentinelGroup:
    def __init__(self, directory: Path, replicas: int = 1) -> None:
        self.directory = directory
        self.primary = self._server("primary")
        self.replicas = [self._server(f"replica-{i}", replica=True) for i in range(replicas)]
        self.sentinel_port = _free_port()
        self.sentinel: subprocess.Popen[bytes] | None = None

    def _server(self, name: str, replica: bool = False) -> RedisProcess:
        folder = self.directory / name
        folder.mkdir()
        extra = ("--replicaof", "127.0.0.1", str(self.primary.port)) if replica else ()
        return RedisProcess(folder, *extra)

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; the CI script installs it")
        self.primary.start()
        for replica in self.replicas:
            replica.start()
        self.until(self._replicated, "the replicas did not catch up with the primary")
        config = self.directory / "sentinel.conf"
        config.write_text(
            "\n".join(
                [
                    f"port {self.sentinel_port}",
                    "bind 127.0.0.1",
                    f"dir {self.directory}",
                    f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 1",
                    f"sentinel down-after-milliseconds {SERVICE} 500",
                    f"sentinel failover-timeout {SERVICE} 5000",
                    "",
                ]
            )
        )
        self.sentinel = subprocess.Popen(
            [binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL
        )
        self.until(self._sentinel_sees_replicas, "the sentinel did not find the replicas")

    def _replicated(self) -> bool:
        with redis.Redis(port=self.primary.port) as client:
            info = client.info("replication")
        return bool(info.get("connected_slaves") == len(self.replicas)) and all(
            info.get(f"slave{i}", {}).get("state") == "online" for i in range(len(self.replicas))
        )

    def _sentinel_sees_replicas(self) -> bool:
        try:
            with redis.Redis(port=self.sentinel_port) as client:
                return len(client.sentinel_slaves(SERVICE)) == len(self.replicas)
        except redis.ConnectionError:
            return False

    def primary_port(self) -> int | None:
        """The port of the primary the sentinel gives clients now (None: none, mid-failover):
        what redis-py's Sentinel client reads, SENTINEL MASTERS with its health flags."""
        with redis.Redis(port=self.sentinel_port) as client:
            state = client.sentinel_master(SERVICE)
        healthy = state["is_master"] and not (state["is_sdown"] or state["is_odown"])
        return int(state["port"]) if healthy else None

    def fail_over(self) -> int:
        """SIGKILL the primary; answer the port of the replica the sentinel promoted, once it
        takes writes."""
        old = self.primary
        old.kill()
        self.until(
            lambda: self.primary_port() not in (None, old.port), "the sentinel promoted no replica"
        )
        promoted = next(r for r in self.replicas if r.port == self.primary_port())

        def writable() -> bool:
            with redis.Redis(port=promoted.port) as client:
                return bool(client.role()[0] == b"master")

        self.until(writable, "the promoted replica does not take writes")
        self.replicas.remove(promoted)
        self.primary = promoted
        # The sentinel points the other replicas at the new primary: wait until they follow.
        self.until(self._replicated, "the other replicas did not follow the new primary")
        return promoted.port

    def pause_replicas(self) -> None:
        """SIGSTOP the replicas: they stay connected but confirm nothing."""
        for replica in self.replicas:
            assert replica.process is not None
            replica.process.send_signal(signal.SIGSTOP)

    def resume_replicas(self) -> None:
        for replica in self.replicas:
            assert replica.process is not None
            replica.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.sentinel is not None:
            self.sentinel.kill()
            self.sentinel.wait(10)
        self.resume_replicas_quietly()
        for server in [self.primary, *self.replicas]:
            server.kill()

    def resume_replicas_quietly(self) -> None:
        for replica in self.replicas:
            if replica.process is not None and replica.process.poll() is None:
                replica.process.send_signal(signal.SIGCONT)

    @staticmethod
    def until(check: object, failure: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if callable(check) and check():
                    return
            except redis.ConnectionError:
                pass
            time.sleep(0.05)
        pytest.fail(failure)
