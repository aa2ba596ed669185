"""A live dashboard at ``/tasks/``: the latest tasks of the docket, updated as they change.

The page (``static/dashboard.html``: plain HTML and a little inline JavaScript) opens a
Server-Sent Events stream at ``/tasks/events``: a ``snapshot`` of the latest tasks on
connect, then ``update`` events carrying the tasks that changed. The data comes from Redis,
so the page shows the same tasks on every replica: the docket lists its latest task keys
(``Keys.recent``, trimmed by the enqueue script), and every state change the docket
publishes — from whichever process runs the task — marks that task for the next update. One
:class:`Feed` per server serves all its viewers: it listens only while someone is watching,
reads the changed tasks once per burst (at most ten times a second) and fans the result out.
New tasks publish no event of their own until they start, so while someone is watching it
also asks Redis once a second whether tasks were added (one cheap sorted-set read).

Security trade-off. The dashboard has no authentication of its own (fastmcp's HTTP auth
guards the MCP endpoint, not custom routes) and shows *every* caller's tasks. So it shows
only what a task's operator needs and nothing a caller sent or got back: the first
characters of the task id (too few to name a task; task access is bound to its creator
anyway), the tool, status, attempt, progress figures and the progress message, the worker,
and times — never arguments, results, errors, questions or the owner. The progress message is
written by the tool and may mention what it works on: a server whose callers must not see
each other's activity should switch the dashboard off (``Tasks(dashboard=False)`` or
``MCP_TASKS_DASHBOARD=0``) or put ``/tasks/`` behind an authenticating proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

import pydantic_core
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..engine import Docket
from ..engine.clock import now_ms
from ..engine.connection import CONNECTION_ERRORS
from ..engine.events import RESYNC, Event
from ..engine.inspection import TaskSummary, newer_than, recent, summaries

log = logging.getLogger("mcp_tasks.dashboard")

ROWS = 100
"""How many tasks the page lists (the latest ones)."""
ID_CHARS = 8
"""How much of a task id the page shows: 32 of its 128 random bits."""
COALESCE = 0.1
"""Seconds to gather a burst of changes into one read and one update."""
NEW_TASK_CHECK = 1.0
"""Seconds between checks for tasks that were added (they publish no event until they run)."""
QUEUE_LIMIT = 64
"""Updates a slow viewer may fall behind before it is sent a fresh snapshot instead."""


def public(summary: TaskSummary) -> dict[str, Any]:
    """A task as the page receives it: a summary, its id cut short, times in epoch ms."""
    progress = summary.progress
    return {
        "id": summary.key[:ID_CHARS],
        "tool": summary.label,
        "status": summary.status.value,
        "errored": summary.errored,
        "attempt": summary.attempt,
        "worker": summary.worker,
        "created": _ms(summary.created_at),
        "updated": _ms(summary.updated_at),
        "started": _ms(summary.started_at),
        "finished": _ms(summary.finished_at),
        "progress": None
        if progress is None
        else {"current": progress.current, "total": progress.total, "message": progress.message},
    }


def _ms(moment: Any) -> int | None:
    return None if moment is None else round(moment.timestamp() * 1000)


def _payload(tasks: list[TaskSummary]) -> str:
    return pydantic_core.to_json({"tasks": [public(t) for t in tasks]}).decode()


Message = tuple[str, str] | None
"""What a viewer's queue carries: (SSE event, data); a snapshot with no data is one the
viewer reads itself; None ends the stream."""
_OWN_SNAPSHOT: Message = ("snapshot", "")


class Feed:
    """The changes of one docket's tasks, read once and fanned out to every viewer."""

    def __init__(self, docket: Callable[[], Docket], rows: int = ROWS) -> None:
        self._docket = docket
        self.rows = rows
        self._viewers: set[asyncio.Queue[Message]] = set()
        self._dirty: set[str] = set()
        self._resync = False
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._listening: Docket | None = None
        self._newest_ms = 0

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    async def events(self) -> AsyncIterator[dict[str, str]]:
        """One viewer's stream: a snapshot, then updates (and a snapshot after a gap)."""
        docket = self._docket()
        queue: asyncio.Queue[Message] = asyncio.Queue(QUEUE_LIMIT)
        try:
            await self._join(docket, queue)  # inside: a failed or abandoned join leaves too
            message: Message = _OWN_SNAPSHOT
            while message is not None:
                event, data = message
                if not data:
                    data = _payload(await recent(docket, self.rows))
                yield {"event": event, "data": data}
                message = await queue.get()
        finally:
            self._leave(queue)

    async def _join(self, docket: Docket, queue: asyncio.Queue[Message]) -> None:
        self._viewers.add(queue)
        if self._listening is not docket:
            self._stop_listening()
            self._listening = docket
            self._newest_ms = now_ms()
            docket.hub.on_every_event(self._on_event)
            self._pump = asyncio.create_task(self._run(docket), name="mcp-tasks dashboard")
        await docket.hub.start()

    def _leave(self, queue: asyncio.Queue[Message]) -> None:
        self._viewers.discard(queue)
        if not self._viewers:
            self._stop_listening()

    def _stop_listening(self) -> None:
        listening, self._listening = self._listening, None
        if listening is not None:
            with contextlib.suppress(RuntimeError):  # its docket is closed: nothing to remove
                listening.hub.remove_listener(self._on_event)
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None
        self._dirty.clear()

    def _on_event(self, event: Event) -> None:
        if event.status == RESYNC or len(self._dirty) >= self.rows:
            self._resync = True  # lost events, or too many changes: resend the latest tasks
            self._dirty.clear()
        elif not self._resync:
            self._dirty.add(event.key)
        self._wake.set()

    async def _run(self, docket: Docket) -> None:
        delay = 0.05
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(NEW_TASK_CHECK):
                    await self._wake.wait()
            await asyncio.sleep(COALESCE)
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            resync, self._resync = self._resync, False
            try:
                if resync:
                    self._broadcast(("snapshot", _payload(await recent(docket, self.rows))))
                    continue
                added = await newer_than(docket, self._newest_ms, self.rows)
                keys = added + [key for key in dirty if key not in added]
                changed = await summaries(docket, keys)
                delay = 0.05
            except CONNECTION_ERRORS as exc:
                log.warning("dashboard: Redis unreachable (%s)", exc)
                self._resync = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            except RuntimeError:  # the docket was closed: the server is stopping
                self._close_all()
                return
            except Exception:  # never let the feed die silently: log, resend everything
                log.exception("dashboard: reading the latest tasks failed")
                self._resync = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if changed:
                self._newest_ms = max(self._newest_ms, *(_ms(t.created_at) or 0 for t in changed))
                self._broadcast(("update", _payload(changed)))

    def _broadcast(self, message: Message) -> None:
        for queue in self._viewers:
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:  # a slow viewer: drop its backlog, send it a snapshot
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(_OWN_SNAPSHOT)

    def _close_all(self) -> None:
        for queue in self._viewers:
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)


def page_html(nonce: str, rows: int) -> str:
    template = resources.files(__package__).joinpath("static", "dashboard.html")
    html = template.read_text(encoding="utf-8")
    return html.replace("{{nonce}}", nonce).replace("{{rows}}", str(rows))


def routes(docket: Callable[[], Docket], rows: int = ROWS) -> list[Route]:
    """``GET /tasks/`` (the page) and ``GET /tasks/events`` (its SSE stream); ``docket``
    gives the running docket, or raises RuntimeError while the server is not running."""
    feed = Feed(docket, rows)

    async def page(request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        return HTMLResponse(
            page_html(nonce, rows),
            headers={
                "Content-Security-Policy": (
                    f"default-src 'none'; script-src 'nonce-{nonce}'; "
                    f"style-src 'nonce-{nonce}'; connect-src 'self'; img-src 'self' data:; "
                    "frame-ancestors 'none'; base-uri 'none'"
                ),
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )

    async def redirect(request: Request) -> Response:
        return RedirectResponse(request.url.path + "/", status_code=308)

    async def events(request: Request) -> Response:
        try:
            docket()
        except RuntimeError:
            return Response("the task docket is not running\n", status_code=503)
        return EventSourceResponse(
            feed.events(),
            ping=15,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return [
        Route("/tasks/", page, methods=["GET"], name="mcp-tasks-dashboard"),
        Route("/tasks", redirect, methods=["GET"], include_in_schema=False),
        Route("/tasks/events", events, methods=["GET"], name="mcp-tasks-dashboard-events"),
    ]
