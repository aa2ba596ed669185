"""The live dashboard at /tasks/ in a real browser (Debian's headless chromium via
playwright): it follows tasks as they run, without reloading, on any replica — the list, the
workers panel, the queue chart, the filters and the detail view — and never shows what a
caller sent or got back.

On memory:// one server runs everything; on Redis the page is served by a replica without a
worker while the tasks are created on, and run by, another replica. The detail endpoint's
own test drives a docket directly (a task that fails and is retried; one a worker holds).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import shutil
import struct
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client, FastMCP
from playwright.async_api import Page, Response, async_playwright
from starlette.applications import Starlette

from mcp_tasks import Tasks
from mcp_tasks.engine import Docket, Retry, Status, Worker
from mcp_tasks.server import dashboard
from tests.helpers.dockets import running
from tests.helpers.mcp import legacy
from tests.helpers.servers import free_port

pytestmark = pytest.mark.anyio
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 720}
SCREENSHOT = Path("/tmp/dashboard.png")
"""A copy of the last screenshot, to look at."""


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
    """The task list, the workers panel, the chart, the filters and the detail view, fed
    live; and nothing a caller sent or got back reaches the page, its stream or its JSON."""
    mcp_url, base = replicas
    secret = f"hush-{uuid.uuid4().hex}"
    leaky_url = f"http://127.0.0.1:{free_port()}/{secret}"  # refused at once: in the result
    streamed: list[str] = []
    async with (
        browser() as page,
        Client(mcp_url, mode="legacy") as client,
        sse_text(f"{base}/tasks/events", streamed),
    ):
        details: list[Response] = []
        page.on("response", lambda r: details.append(r) if "/tasks/detail/" in r.url else None)
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
        worker = await page.text_content(f"{row} td.worker")
        assert worker  # the worker's name

        # The workers panel: the (one) live worker, and the task it runs.
        chip = (
            f'#workers li.worker.alive[data-name="{worker}"] button.chip[data-id="{task_id[:8]}"]'
        )
        await page.wait_for_selector(chip)
        assert await page.locator("#workers li.worker").count() == 1
        assert (await page.text_content(chip) or "").endswith("sleep")
        assert not await page.is_visible("#no-workers")

        first = await progress_above(page, row, 0)
        later = await progress_above(page, row, first)  # the bar moves as the task runs
        assert 0 < first < later < 1
        message = await page.text_content(f"{row} .message")
        assert message is not None and "/ 10" in message and "slept" in message

        # The detail view, opened from the workers panel while the task runs.
        await page.click(chip)
        await page.wait_for_selector('#detail[data-status="running"]')
        assert await field(page, "worker") == worker
        assert await field(page, "attempts") == "1"
        assert await field(page, "finished") == "—"

        failing = await legacy(
            client, "tools/call", {"name": "count", "arguments": {"to": -987654}, "task": {}}
        )
        result = await legacy(client, "tasks/result", {"taskId": failing["task"]["taskId"]})
        assert result["isError"] is True
        leaky = await legacy(
            client,
            "tools/call",
            {"name": "fetch_urls", "arguments": {"urls": [leaky_url]}, "task": {}},
        )
        leaked = await legacy(client, "tasks/result", {"taskId": leaky["task"]["taskId"]})
        assert secret in str(leaked)  # the result does carry the secret: the page must not
        await legacy(client, "tasks/result", {"taskId": task_id})  # blocks until it ends

        await page.wait_for_selector(f'{row}[data-status="completed"][data-progress="1"]')
        fill = await page.eval_on_selector(f"{row} .fill", "e => e.style.width")
        assert fill == "100%"
        failed_row = f'tr[data-id="{failing["task"]["taskId"][:8]}"]'
        leaky_row = f'tr[data-id="{leaky["task"]["taskId"][:8]}"]'
        await page.wait_for_selector(f'{failed_row}[data-errored="true"]')
        await page.wait_for_selector(f'{leaky_row}[data-status="completed"]')
        assert await page.evaluate("window.sameDocument") is True
        assert await page.text_content("#connection") == "live"

        # The open detail view followed the task to its end, without a click.
        await page.wait_for_selector('#detail[data-status="completed"]')
        times = [await field(page, name) for name in ("created", "started", "finished")]
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", t) for t in times)
        assert times == sorted(times), times
        assert await field(page, "attempts") == "1"
        assert await field(page, "error") == "—"
        assert (await field(page, "ran")).endswith(" s")

        # The chart: points every few seconds, the running task in the depth, three finished.
        await page.wait_for_function(
            """() => {
                const depth = document.getElementById("depth-chart").dataset;
                const done = document.getElementById("throughput-chart").dataset;
                return depth.points >= 2 && depth.peakRunning >= 1 && done.finished >= 3;
            }"""
        )
        assert await page.locator("#depth-chart path[data-series=running]").count() == 1
        assert await page.locator("#throughput-chart rect").count() >= 1

        # Filters: by status (the error state of the badge), by tool, and both reset.
        await page.select_option("#status-filter", "errored")
        assert await page.is_visible(failed_row)
        assert await page.is_hidden(row) and await page.is_hidden(leaky_row)
        await page.select_option("#status-filter", "")
        await page.select_option("#tool-filter", "sleep")
        assert await page.is_visible(row)
        assert await page.is_hidden(failed_row) and await page.is_hidden(leaky_row)
        await page.select_option("#status-filter", "completed")
        assert await page.is_visible(row)
        await page.select_option("#status-filter", "running")
        assert await page.is_hidden(row)
        assert await page.is_visible("#empty")
        await page.select_option("#status-filter", "")
        await page.select_option("#tool-filter", "")
        assert await page.locator("#tasks tbody tr:visible").count() == 3

        # Details of the task that errored, and of the one whose argument and result hold
        # the secret: what it was, never what it carried.
        await page.click(f"{failed_row} td.tool")
        await page.wait_for_function(
            "ref => document.getElementById('detail').dataset.status === 'completed'"
            " && document.getElementById('detail').dataset.ref === ref",
            arg=await page.get_attribute(failed_row, "data-ref"),
        )
        assert await field(page, "error") == "the tool returned an error result (not shown)"
        await page.click(f"{leaky_row} td.tool")
        await page.wait_for_function(
            "ref => document.getElementById('detail').dataset.status === 'completed'"
            " && document.getElementById('detail').dataset.ref === ref",
            arg=await page.get_attribute(leaky_row, "data-ref"),
        )
        assert await page.text_content("#detail-tool") == "fetch_urls"

        # Only summaries reach the browser: no full task id, no arguments, no results.
        html = await page.content()
        bodies = [await response.text() for response in details]
        assert len(bodies) >= 3 and all('"ref"' in body for body in bodies)
        assert "fetch_urls" in "".join(streamed) and "event: workers" in "".join(streamed)
        ids = [task_id, failing["task"]["taskId"], leaky["task"]["taskId"]]
        for secret_text in (*ids, secret, leaky_url, "987654", "slept 3"):
            assert secret_text not in html
            assert secret_text not in "".join(streamed)
            assert all(secret_text not in body for body in bodies)

        # The screenshot: the sleep task's details open beside the list.
        await page.click(f"{row} td.tool")
        await page.wait_for_function(
            "ref => document.getElementById('detail').dataset.status === 'completed'"
            " && document.getElementById('detail').dataset.ref === ref",
            arg=await page.get_attribute(row, "data-ref"),
        )
        assert (await page.text_content(f"{row} .message") or "").startswith("ran ")
        await page.wait_for_function("() => document.getAnimations().length === 0")  # bars settled
        shot = tmp_path / "dashboard.png"
        await check_screenshot(page, await page.screenshot(path=str(shot)))
        shutil.copyfile(shot, SCREENSHOT)


async def field(page: Page, name: str) -> str:
    """The text of one field of the detail view."""
    return (await page.text_content(f'#detail dd[data-field="{name}"]') or "").strip()


@contextlib.asynccontextmanager
async def sse_text(url: str, into: list[str]) -> AsyncIterator[None]:
    """Read the dashboard's event stream in the background, as a second viewer, collecting
    every byte of it into ``into`` (every kind of event, known to the page or not)."""
    opened = asyncio.Event()

    async def read() -> None:
        async with httpx.AsyncClient(timeout=None) as http, http.stream("GET", url) as response:
            assert response.status_code == 200
            async for text in response.aiter_text():
                into.append(text)
                opened.set()

    reader = asyncio.create_task(read())
    try:
        async with asyncio.timeout(10):
            await asyncio.wait(
                [reader, asyncio.create_task(opened.wait())], return_when="FIRST_COMPLETED"
            )
        if reader.done():
            reader.result()
        yield
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


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

    every = {"/tasks/", "/tasks/events", "/tasks/detail/{ref}", "/metrics"}
    assert every <= paths(Tasks())
    assert not every & paths(Tasks(dashboard=False, metrics=False))
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
        assert (await http.get(f"/tasks/detail/{'a' * 16}")).status_code == 503
        assert (await http.get("/metrics")).status_code == 503
        assert (await http.get("/tasks")).status_code == 308


async def test_details_show_attempts_and_the_error_type_only(docket: Docket) -> None:
    """The detail endpoint of a task that failed twice and of one a worker holds: attempts,
    the worker, times and the error's type — never the arguments, the error's message (which
    quotes them) or the result; and it answers only to the handles the feed gives out."""
    secret = f"hush-{uuid.uuid4().hex}"
    release = asyncio.Event()

    async def leaky(token: str) -> str:
        raise ValueError(f"refused {token}")

    async def holding(token: str) -> str:
        await release.wait()
        return f"kept {token}"

    docket.register(leaky, retry=Retry(attempts=2, delay=0))
    docket.register(holding)
    failing = await docket.add(leaky)(secret)
    held = await docket.add(holding, label="holder")(secret)
    feed = dashboard.Feed(lambda: docket, sample=0.1)
    app = Starlette(routes=dashboard.routes(lambda: docket))
    seen: list[str] = []
    async with (
        running(Worker(docket, name="w-detail")),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        contextlib.aclosing(feed.events()) as events,
    ):
        assert (await docket.wait(failing.key, timeout=10)).status is Status.FAILED
        async with asyncio.timeout(10):
            async for message in events:  # until a worker is seen holding the task
                seen.append(message["data"])
                if message["event"] == "workers" and held.key[:8] in message["data"]:
                    break

        async def detail(task_key: str) -> dict[str, Any]:
            response = await http.get(f"/tasks/detail/{dashboard.ref(docket.name, task_key)}")
            assert response.status_code == 200, response.text
            assert response.headers["cache-control"] == "no-store"
            seen.append(response.text)
            return dict(response.json())

        failed = await detail(failing.key)
        assert failed["status"] == "failed" and failed["attempt"] == 2
        assert failed["error_type"] == "ValueError" and failed["worker"] == "w-detail"
        assert failed["workers_recorded"] == "latest attempt"
        assert failed["created"] <= failed["started"] <= failed["finished"]
        assert failed["id"] == failing.key[:8] and failed["tool"].endswith("leaky")
        holding_now = await detail(held.key)
        assert holding_now["status"] == "running" and holding_now["worker"] == "w-detail"
        assert holding_now["tool"] == "holder" and holding_now["error_type"] is None

        release.set()
        assert (await docket.wait(held.key, timeout=10)).result == f"kept {secret}"
        done = await detail(held.key)
        assert done["status"] == "completed" and done["finished"] is not None

        # Only the feed's handles: not a task id, not its prefix, not a made-up handle.
        for probe in (failing.key, failing.key[:8], dashboard.ref(docket.name, "x" * 32)):
            missing = await http.get(f"/tasks/detail/{probe}")
            assert missing.status_code == 404
            seen.append(missing.text)
    everything = "\n".join(seen)
    assert dashboard.ref(docket.name, failing.key) in everything  # the feed gave it out
    for secret_text in (secret, "refused", failing.key, held.key):
        assert secret_text not in everything
