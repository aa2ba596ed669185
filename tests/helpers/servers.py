"""Starting real server processes for tests: free loopback ports, readiness, clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server for port {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"the server on port {port} did not start")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def http_server(
    server_file: str, env: dict[str, str] | None = None, bin_dir: Path = BIN
) -> Iterator[str]:
    """``fastmcp run <server_file> --transport http`` on a free port (the ``fastmcp`` of
    ``bin_dir``: this environment's, or another venv's); yields its MCP URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(bin_dir / "fastmcp"),
            "run",
            server_file,
            "--transport",
            "http",
            "--port",
            str(port),
            "--no-banner",
        ],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop([process])


@contextlib.asynccontextmanager
async def serving_in_process(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app (``mcp.http_app()``) with uvicorn on a free loopback port, in this
    event loop, so a test can reach into the server; yields its MCP URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    serve = asyncio.create_task(server.serve())
    while not server.started:
        if serve.done():
            serve.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        await serve
