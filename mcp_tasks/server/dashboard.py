"""A live dashboard at ``/tasks/``: the docket's latest tasks, its workers, and its queue.

The page (``static/dashboard.html``, no external assets) opens a Server-Sent Events stream
at ``/tasks/events``: a ``snapshot`` of the latest tasks, the ``workers`` and the ``stats``
history; then ``update`` events with the tasks that changed, and every few seconds the
``workers`` and a ``stats`` point (queue depth, tasks finished since the last point). It all
comes from Redis, so every replica shows the same: the latest task keys (``Keys.recent``),
the state changes published by whichever process runs a task, the consumers of the group,
the counters of ``engine/stats.py``. One :class:`Feed` per server serves all its viewers,
only while someone watches: it reads changed tasks once per burst, asks once a second
whether tasks were added (they publish nothing until they start), and keeps the chart's
points in memory (a gap in the chart is a time nobody watched).

Security trade-off. The dashboard has no authentication of its own (fastmcp's HTTP auth
guards the MCP endpoint, not custom routes) and shows *every* caller's tasks. So it shows
only what a task's operator needs and nothing a caller sent or got back: the first
characters of the task id (too few to name a task; task access is bound to its creator
anyway), the tool, status, attempt, progress figures and the progress message, the worker,
times, and of an error only its exception type (the message may quote arguments) — never
arguments, results, error messages, questions or the owner. The detail view
(``/tasks/detail/<ref>``) takes an opaque :func:`ref` the page is given with each task, and
finds only tasks the dashboard shows. The progress message is written by the tool and may
mention what it works on: a server whose callers must not see each other's activity should
switch the dashboard off (``Tasks(dashboard=False)`` or ``MCP_TASKS_DASHBOARD=0``) or put
``/tasks/`` behind an authenticating proxy.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

import pydantic_core
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..engine import Docket
from ..engine.clock import now_ms
from ..engine.connection import CONNECTION_ERRORS
from ..engine.events import RESYNC, Event
from ..engine.inspection import TaskSummary, error_type, newer_than, recent, summaries, worker_loads
from ..engine.stats import read_stats

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
SAMPLE_EVERY = 2.0
"""Seconds between two points of the chart (and two reads of the workers)."""
HISTORY = 600.0
"""Seconds of points the chart shows and the feed keeps."""
LIVE_IDLE_MS = 60_000
"""A worker idle longer than this is shown as silent: a live one reads or renews leases every
few seconds; a killed one stays in the group until a live one forgets it (after 10 min+)."""
FINISHED = ("completed", "failed", "cancelled")
"""The counters of ``engine/stats.py`` whose sum is the number of tasks finished."""
_REF = re.compile(r"[A-Za-z0-9_-]{16}")
UNAVAILABLE: tuple[type[BaseException], ...] = (RuntimeError, *CONNECTION_ERRORS)


def ref(docket: str, key: str) -> str:
    """The page's handle of a task: a hash of its id, so the page can ask for the task's
    details without ever holding the id (the hash of a random 128-bit id cannot be turned
    back into it). Every replica computes the same handle, from no shared state."""
    digest = hashlib.sha256(f"mcp-tasks dashboard\0{docket}\0{key}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


def public(summary: TaskSummary, docket: str) -> dict[str, Any]:
    """A task as the page receives it: a summary, its id cut short, times in epoch ms."""
    progress = summary.progress
    return {
        "id": summary.key[:ID_CHARS],
        "ref": ref(docket, summary.key),
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


def _json(value: Any) -> str:
    return pydantic_core.to_json(value).decode()


Message = tuple[str, str] | None
"""What a viewer's queue carries: (SSE event, data); a snapshot with no data is one the
viewer reads itself; None ends the stream."""
_OWN_SNAPSHOT: Message = ("snapshot", "")


class Feed:
    """The changes of one docket's tasks, workers and queue, read once and fanned out to
    every viewer."""

    def __init__(
        self, docket: Callable[[], Docket], rows: int = ROWS, sample: float = SAMPLE_EVERY
    ) -> None:
        self._docket = docket
        self.rows = rows
        self.sample = sample
        self._viewers: set[asyncio.Queue[Message]] = set()
        self._dirty: set[str] = set()
        self._resync = False
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []  # the pump and the sampler
        self._listening: Docket | None = None
        self._newest_ms = 0
        self.points: deque[dict[str, Any]] = deque(maxlen=max(1, round(HISTORY / sample)))
        """The chart's points, oldest first: a ring buffer over the last ``HISTORY`` s."""
        self._finished = (0, 0)  # (when, how many tasks had finished then): the latest point
        self._workers: str | None = None  # the latest ``workers`` event, for viewers that join

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
                if data:
                    yield {"event": event, "data": data}
                else:  # everything a viewer needs to start over
                    tasks = await recent(docket, self.rows)
                    yield {"event": "snapshot", "data": self._tasks(docket, tasks)}
                    if self._workers is not None:
                        yield {"event": "workers", "data": self._workers}
                    yield {"event": "stats", "data": self._stats(list(self.points), True)}
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
            self._loops = [
                asyncio.create_task(self._run(docket), name="mcp-tasks dashboard"),
                asyncio.create_task(self._sample_loop(docket), name="mcp-tasks dashboard stats"),
            ]
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
        for loop in self._loops:
            loop.cancel()
        self._loops = []
        self._dirty.clear()
        self._workers = None  # stale by the time someone watches again

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
                    tasks = await recent(docket, self.rows)
                    self._broadcast(("snapshot", self._tasks(docket, tasks)))
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
                self._broadcast(("update", self._tasks(docket, changed)))

    async def _sample_loop(self, docket: Docket) -> None:
        """Every ``sample`` seconds while someone watches: one point, and the workers."""
        while True:
            try:
                point = await self._point(docket)
                self.points.append(point)
                self._broadcast(("stats", self._stats([point], False)))
                self._workers = await self._read_workers(docket)
                self._broadcast(("workers", self._workers))
            except CONNECTION_ERRORS as exc:  # the pump logs the outage too: no point now
                log.debug("dashboard: no sample (%s)", exc)
            except RuntimeError:  # the docket was closed (the pump ends the streams)
                return
            except Exception:
                log.exception("dashboard: sampling the queue failed")
            await asyncio.sleep(self.sample)

    async def _point(self, docket: Docket) -> dict[str, Any]:
        """The queue's depth now, and how many tasks finished since the previous point
        (None after a gap: when nobody watched, or Redis could not be read)."""
        stats = await read_stats(docket)
        total = sum(sum(stats.counters[name].values()) for name in FINISHED)
        at = now_ms()
        then, before = self._finished
        continuous = at - then <= 2500 * self.sample and total >= before  # 2.5 intervals
        self._finished = (at, total)
        finished = total - before if continuous else None
        depth = stats.model_dump(include={"queued", "running", "scheduled"})
        return {"t": at, **depth, "finished": finished}

    async def _read_workers(self, docket: Docket) -> str:
        loads = await worker_loads(docket)
        keys = [key for load in loads for key in load.tasks]
        tools = {task.key: task.label for task in await summaries(docket, keys)}
        loads.sort(key=lambda load: (load.idle_ms >= LIVE_IDLE_MS, load.name))
        workers = [
            {
                **load.model_dump(exclude={"tasks"}),
                "alive": load.idle_ms < LIVE_IDLE_MS,
                "tasks": [
                    {"id": key[:ID_CHARS], "ref": ref(docket.name, key), "tool": tools[key]}
                    for key in load.tasks
                    if key in tools
                ],
            }
            for load in loads
        ]
        return _json({"workers": workers})

    def _tasks(self, docket: Docket, tasks: list[TaskSummary]) -> str:
        return _json({"tasks": [public(t, docket.name) for t in tasks]})

    def _stats(self, points: list[dict[str, Any]], replace: bool) -> str:
        return _json(
            {"interval": self.sample, "window": HISTORY, "replace": replace, "points": points}
        )

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


async def detail(docket: Docket, handle: str, rows: int = ROWS) -> dict[str, Any] | None:
    """What the detail view shows of the task with this handle, or None when no task the
    dashboard shows (the latest ``rows``, or one a worker runs) has it."""
    if not _REF.fullmatch(handle):
        return None
    raw: list[bytes] = await docket.client.zrevrange(docket.keys.recent, 0, rows - 1)  # type: ignore[assignment]
    shown = [k.decode() for k in raw] + [k for w in await worker_loads(docket) for k in w.tasks]
    key = next((k for k in shown if secrets.compare_digest(ref(docket.name, k), handle)), None)
    for task in await summaries(docket, [key] if key is not None else []):
        return {
            **public(task, docket.name),
            "due": _ms(task.when),
            "error_type": await error_type(docket, task.key),
            "workers_recorded": "latest attempt",  # the engine keeps no per-attempt history
        }
    return None


def page_html(nonce: str, rows: int) -> str:
    template = resources.files(__package__).joinpath("static", "dashboard.html")
    html = template.read_text(encoding="utf-8")
    return html.replace("{{nonce}}", nonce).replace("{{rows}}", str(rows))


_JSON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def routes(
    docket: Callable[[], Docket], rows: int = ROWS, sample: float = SAMPLE_EVERY
) -> list[Route]:
    """``GET /tasks/`` (the page), ``GET /tasks/events`` (its SSE stream) and ``GET
    /tasks/detail/<ref>`` (one task's details, JSON); ``docket`` gives the running docket,
    or raises RuntimeError while the server is not running."""
    feed = Feed(docket, rows, sample)

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

    async def task_detail(request: Request) -> Response:
        try:
            found = await detail(docket(), request.path_params["ref"], rows)
        except UNAVAILABLE:
            return JSONResponse({"error": "unavailable"}, 503, headers=_JSON_HEADERS)
        if found is None:
            return JSONResponse({"error": "not shown"}, 404, headers=_JSON_HEADERS)
        return JSONResponse(found, headers=_JSON_HEADERS)

    return [
        Route("/tasks/", page, methods=["GET"], name="mcp-tasks-dashboard"),
        Route("/tasks", redirect, methods=["GET"], include_in_schema=False),
        Route("/tasks/events", events, methods=["GET"], name="mcp-tasks-dashboard-events"),
        Route("/tasks/detail/{ref}", task_detail, methods=["GET"], name="mcp-tasks-task-detail"),
    ]
