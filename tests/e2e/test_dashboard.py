"""The live dashboard at /tasks/ in a real browser (Debian's headless chromium via
playwright): it follows tasks as they run, without reloading, on any replica.

On memory:// one server runs everything; on Redis the page is served by a replica without a
worker while the tasks are created on, and run by, another replica.
"""

from __future__ import annotations

import base64
import contextlib
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastmcp import Client, FastMCP
from playwright.async_api import Page, async_playwright

from mcp_tasks import Tasks
from tests.helpers.mcp import legacy

pytestmark = pytest.mark.anyio
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 720}


@pytest.fixture
def replicas(http_replicas: list[str]) -> tuple[str, str]:
    """(the MCP endpoint tasks are created on, the base URL of the replica showing the page:
    on Redis the API-only one)."""
    return http_replicas[0], http_replicas[-1].removesuffix("/mcp")


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[Page]:
    """A page in headless chromium (the system's: playwright downloads no browser here)."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            context = await chromium.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
            yield await context.new_page()
        finally:
            await chromium.close()


async def progress_above(page: Page, row: str, floor: float) -> float:
    """Wait until the row's progress bar stands above ``floor`` (and below the end)."""
    handle = await page.wait_for_function(
        """([row, floor]) => {
            const tr = document.querySelector(row);
            const p = tr ? parseFloat(tr.dataset.progress) : NaN;
            return p > floor && p < 1 ? p : false;
        }""",
        arg=[row, floor],
    )
    return float(await handle.json_value())


async def test_the_dashboard_follows_tasks_live(replicas: tuple[str, str], tmp_path: Path) -> None:
    mcp_url, base = replicas
    async with browser() as page, Client(mcp_url, mode="legacy") as client:
        await page.goto(f"{base}/tasks/")
        await page.wait_for_selector("#connection.live")
        await page.evaluate("window.sameDocument = true")  # a reload would forget it

        created = await legacy(
            client, "tools/call", {"name": "sleep", "arguments": {"seconds": 3}, "task": {}}
        )
        task_id = created["task"]["taskId"]
        row = f'tr[data-id="{task_id[:8]}"]'
        await page.wait_for_selector(f'{row}[data-status="running"]')
        assert await page.text_content(f"{row} td.tool") == "sleep"
        assert await page.text_content(f"{row} td.worker")  # the worker's name
        first = await progress_above(page, row, 0)
        later = await progress_above(page, row, first)  # the bar moves as the task runs
        assert 0 < first < later < 1
        message = await page.text_content(f"{row} .message")
        assert message is not None and "/ 10" in message and "slept" in message

        failing = await legacy(
            client, "tools/call", {"name": "count", "arguments": {"to": -987654}, "task": {}}
        )
        result = await legacy(client, "tasks/result", {"taskId": failing["task"]["taskId"]})
        assert result["isError"] is True
        await legacy(client, "tasks/result", {"taskId": task_id})  # blocks until it ends

        await page.wait_for_selector(f'{row}[data-status="completed"][data-progress="1"]')
        fill = await page.eval_on_selector(f"{row} .fill", "e => e.style.width")
        assert fill == "100%"
        failed_row = f'tr[data-id="{failing["task"]["taskId"][:8]}"]'
        await page.wait_for_selector(f'{failed_row}[data-errored="true"]')
        assert await page.evaluate("window.sameDocument") is True
        assert await page.text_content("#connection") == "live"

        # Only summaries reach the browser: no full task id, no arguments, no results.
        html = await page.content()
        for secret in (task_id, failing["task"]["taskId"], "987654", "slept 3"):
            assert secret not in html

        assert (await page.text_content(f"{row} .message") or "").startswith("ran ")
        await page.wait_for_function("() => document.getAnimations().length === 0")  # bars settled
        shot = tmp_path / "dashboard.png"
        await check_screenshot(page, await page.screenshot(path=str(shot)))


async def check_screenshot(page: Page, data: bytes) -> None:
    """A PNG of the viewport's size, and not blank: many colours, among them the green of
    the completed task's badge and bar, and the red of the failed one."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (VIEWPORT["width"], VIEWPORT["height"])
    blank = await page.context.new_page()
    found = await blank.evaluate(
        """async (b64) => {
            const img = new Image();
            img.src = "data:image/png;base64," + b64;
            await img.decode();
            const canvas = document.createElement("canvas");
            canvas.width = img.width;
            canvas.height = img.height;
            const ctx = canvas.getContext("2d");
            ctx.drawImage(img, 0, 0);
            const d = ctx.getImageData(0, 0, img.width, img.height).data;
            const colours = new Set();
            let green = 0, red = 0;
            for (let i = 0; i < d.length; i += 4) {
                colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
                if (d[i] === 0x1f && d[i + 1] === 0x9d && d[i + 2] === 0x55) green++;
                if (d[i] === 0xd6 && d[i + 1] === 0x45 && d[i + 2] === 0x45) red++;
            }
            return {colours: colours.size, green, red};
        }""",
        base64.b64encode(data).decode(),
    )
    await blank.close()
    assert found["colours"] > 50, found
    assert found["green"] > 100 and found["red"] > 100, found


def test_the_dashboard_and_metrics_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    def paths(tasks: Tasks) -> set[str]:
        mcp = FastMCP("switch")
        mcp.add_extension(tasks)
        return {getattr(route, "path", "") for route in mcp.http_app().routes}

    assert {"/tasks/", "/tasks/events", "/metrics"} <= paths(Tasks())
    assert not {"/tasks/", "/tasks/events", "/metrics"} & paths(
        Tasks(dashboard=False, metrics=False)
    )
    monkeypatch.setenv("MCP_TASKS_DASHBOARD", "0")
    only_metrics = paths(Tasks())
    assert "/metrics" in only_metrics and "/tasks/" not in only_metrics
    monkeypatch.setenv("MCP_TASKS_METRICS", "off")
    assert "/metrics" not in paths(Tasks())
    assert "/tasks/" in paths(Tasks(dashboard=True))  # the argument wins


def test_a_server_with_auth_shows_no_dashboard_or_metrics_unless_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dashboard and /metrics bypass the server's auth (fastmcp custom routes) and show
    every caller's activity: a server that authenticates its callers keeps them off unless
    its operator switches them on."""
    from fastmcp.server.auth.providers.jwt import StaticTokenVerifier

    monkeypatch.delenv("MCP_TASKS_DASHBOARD", raising=False)
    monkeypatch.delenv("MCP_TASKS_METRICS", raising=False)

    def paths(tasks: Tasks) -> set[str]:
        verifier = StaticTokenVerifier({"t": {"client_id": "c", "scopes": []}})
        mcp = FastMCP("authenticated", auth=verifier)
        mcp.add_extension(tasks)
        return {getattr(route, "path", "") for route in mcp.http_app().routes}

    default = paths(Tasks())
    assert "/tasks/" not in default and "/metrics" not in default
    assert "/tasks/" in paths(Tasks(dashboard=True))
    assert "/metrics" in paths(Tasks(metrics=True))
    monkeypatch.setenv("MCP_TASKS_DASHBOARD", "1")
    assert "/tasks/" in paths(Tasks())


async def test_the_routes_answer_503_until_the_server_runs() -> None:
    mcp = FastMCP("stopped")
    mcp.add_extension(Tasks())
    transport = httpx.ASGITransport(app=mcp.http_app())  # no lifespan: never started
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        page = await http.get("/tasks/")
        assert page.status_code == 200 and "EventSource" in page.text
        assert "script-src 'nonce-" in page.headers["content-security-policy"]
        assert (await http.get("/tasks/events")).status_code == 503
        assert (await http.get("/metrics")).status_code == 503
        assert (await http.get("/tasks")).status_code == 308
