"""The shipped tools (tools/), run as tasks through the MCP layer."""

from __future__ import annotations

import hashlib
import http.server
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client, FastMCP

from mcp_tasks import Tasks
from mcp_tasks.engine import Status
from tests.helpers.mcp import legacy, modern
from tests.helpers.servers import ROOT

sys.path.insert(0, str(ROOT))
import tools  # loaded by path, as server.py does (it is not an installed package)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    monkeypatch.setenv("MCP_TASKS_ROOT", str(tmp_path))
    extension = Tasks(url=f"memory://tools-{uuid.uuid4().hex[:8]}")
    mcp = FastMCP("tools-test")
    mcp.add_extension(extension)
    tools.register(mcp)

    async def run(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        async with Client(mcp) as client:
            created = await modern(client, "tools/call", {"name": name, "arguments": arguments})
            await extension.docket.wait(created["taskId"], timeout=60)
            return await modern(client, "tasks/get", {"taskId": created["taskId"]})

    run.mcp = mcp  # type: ignore[attr-defined]
    run.tasks = extension  # type: ignore[attr-defined]
    yield run


def _tree(base: Path) -> None:
    (base / "a").mkdir()
    (base / "a" / "one.txt").write_text("same")
    (base / "two.txt").write_text("same")
    (base / "three.txt").write_text("different")


async def test_checksum_tree(served: Any, tmp_path: Path) -> None:
    _tree(tmp_path)
    got = await served("checksum_tree", {"path": "."})
    result = got["result"]["structuredContent"]
    assert result["files"] == 3
    assert result["sha256"]["three.txt"] == hashlib.sha256(b"different").hexdigest()
    assert set(result["sha256"]) == {"a/one.txt", "two.txt", "three.txt"}


async def test_find_duplicates(served: Any, tmp_path: Path) -> None:
    _tree(tmp_path)
    got = await served("find_duplicates", {"path": "."})
    assert got["result"]["structuredContent"]["result"] == [["a/one.txt", "two.txt"]]


async def test_paths_cannot_escape_the_root(served: Any, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"outside-{uuid.uuid4().hex[:6]}"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (tmp_path / "link").symlink_to(outside)
    for path in ("..", "/etc", "link"):
        got = await served("checksum_tree", {"path": path})
        assert got["result"]["isError"] is True, path
        assert "outside the allowed root" in got["result"]["content"][0]["text"]
    (tmp_path / "inside.txt").write_text("ok")
    got = await served("checksum_tree", {"path": "."})  # the link's target is skipped
    assert set(got["result"]["structuredContent"]["sha256"]) == {"inside.txt"}


@pytest.fixture
def web_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/missing":
                self.send_error(404)
                return
            body = b"x" * 1000
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None: ...

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_fetch_urls_on_loopback(served: Any, web_server: str) -> None:
    urls = [f"{web_server}/a", f"{web_server}/missing", "http://127.0.0.1:1/refused"]
    got = await served("fetch_urls", {"urls": urls, "concurrency": 2})
    results = got["result"]["structuredContent"]["result"]
    assert results[0]["status"] == 200 and results[0]["bytes"] == 1000
    assert results[1]["status"] == 404
    assert "error" in results[2]
    bad = await served("fetch_urls", {"urls": ["file:///etc/passwd"]})
    assert bad["result"]["isError"] is True


async def test_count_primes_in_a_process_and_cancel_stops_it(served: Any) -> None:
    got = await served("count_primes", {"below": 10_000})
    assert got["result"]["structuredContent"]["result"] == 1229
    async with Client(served.mcp) as client:
        created = await modern(
            client, "tools/call", {"name": "count_primes", "arguments": {"below": 50_000_000}}
        )
        task_id = created["taskId"]
        async for state in served.tasks.docket.watch(task_id):
            if state.status is Status.RUNNING:
                break
        t0 = time.monotonic()
        await modern(client, "tasks/cancel", {"taskId": task_id})
        final = await served.tasks.docket.wait(task_id, timeout=30)
    assert final.status is Status.CANCELLED
    assert time.monotonic() - t0 < 5


async def test_confirm_asks_first(served: Any, tmp_path: Path) -> None:
    _tree(tmp_path)
    replies = iter([{"value": False}, {"value": True}])

    async def on_elicit(message: str, response_type: Any, params: Any, context: Any) -> Any:
        assert "Checksum everything" in message
        return next(replies)

    async with Client(served.mcp, mode="legacy", elicitation_handler=on_elicit) as client:
        for expected in ("not confirmed", "3 files"):
            created = await legacy(
                client,
                "tools/call",
                {"name": "confirm_and_checksum", "arguments": {"path": "."}, "task": {}},
            )
            result = await legacy(client, "tasks/result", {"taskId": created["task"]["taskId"]})
            assert expected in result["structuredContent"]["result"]
