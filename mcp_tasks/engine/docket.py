"""The docket: where tasks are added, looked up, awaited and cancelled.

A docket is a Redis stream (due tasks, read by workers through a consumer group), a sorted
set (future tasks), one hash per task (its execution state) and pub/sub channels (one per
task, heard by whoever follows it; one for workers; one for dashboards). Every transition
is a Lua script, so it is atomic and one round trip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import anyio
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from . import adding, clock, listing, tracing
from .adding import (
    Execution,
    Row,
    check_label,
    due_ms,
    encode_meta,
    new_task_key,
    split_call,
    ttl_ms_of,
)
from .clock import now_ms
from .codec import Codec
from .connection import Backend, close_client, parse_url
from .depth import read_depth
from .errors import DocketClosed, QuotaExceeded, TaskNotFound, UnknownFunction
from .events import EventHub, next_event
from .functions import ConcurrencyLimit, Perpetual, Quota, Retry, TaskCallable, TaskFunction
from .keys import GROUP, Keys, check_docket_name, check_task_key, is_task_key
from .listing import IndexPosition
from .reads import RecordReads
from .scripts import Replication, Scripts
from .serialization import from_json_text, to_json_text
from .state import ExecutionState, TaskProgress

Call = tuple[Sequence[Any], dict[str, Any]]
T = TypeVar("T")


class Docket:
    """A named task queue on Redis (``redis://``) or in this process (``memory://``)."""

    def __init__(
        self,
        name: str = "mcp-tasks",
        url: str = "memory://",
        *,
        result_ttl: timedelta | float = timedelta(hours=1),
        max_connections: int = 64,
        codec: Codec | None = None,
        keep_recent: int = 1000,
        min_replicas: int = 0,
        replica_timeout: timedelta | float = 1.0,
    ) -> None:
        self.name = check_docket_name(name)
        if keep_recent < 0:
            raise ValueError("keep_recent may not be negative")
        self.keep_recent = keep_recent
        """How many of the latest task keys the docket lists for dashboards (0: none)."""
        self.codec = codec if codec is not None else Codec.from_env()
        """Seals arguments, results, errors and questions before they reach Redis (see
        :mod:`.codec`); by default with the key in ``MCP_TASKS_ENCRYPTION_KEY``, if any."""
        self.backend: Backend = parse_url(url)
        self.url = url
        self.replication = Replication.of(min_replicas, replica_timeout, self.backend)
        """How many replicas confirm what a client is told, if any (see :mod:`.scripts`)."""
        self.keys = Keys(self.name)
        ttl = clock.seconds(result_ttl)
        if ttl <= 0:
            raise ValueError("result_ttl must be positive")
        self.result_ttl_ms = int(ttl * 1000)
        self.functions: dict[str, TaskFunction] = {}
        self._max_connections = max_connections
        self._client: Redis | None = None
        self._scripts: Scripts | None = None
        self._hub: EventHub | None = None
        self._reads: RecordReads | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Docket:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect, check the server answers, and make sure the consumer group exists."""
        if self._client is not None:
            return
        client = self.backend.client(max_connections=self._max_connections)
        try:
            await client.ping()
            await self.ensure_group(client)
        except Exception:
            await close_client(client)
            raise
        self._client = client
        self._scripts = Scripts(client, self.keys, self.replication)
        self._hub = EventHub(client, self.keys)
        self._reads = RecordReads(client, self.keys, self.codec)

    async def close(self) -> None:
        if self._reads is not None:
            await self._reads.close()
        if self._hub is not None:
            await self._hub.close()
            self._hub = None
        if self._client is not None:
            await close_client(self._client)
            self._client = None
            self._scripts = None

    async def ensure_group(self, client: Redis | None = None) -> None:
        """Create the stream's consumer group (again, after a Redis restart lost it)."""
        try:
            await (client or self.client).xgroup_create(
                self.keys.stream, GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    @property
    def client(self) -> Redis:
        return _opened(self._client)

    @property
    def scripts(self) -> Scripts:
        return _opened(self._scripts)

    @property
    def hub(self) -> EventHub:
        return _opened(self._hub)

    # -- registration --------------------------------------------------------------------

    def register(
        self,
        fn: TaskCallable,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: timedelta | float | None = None,
        concurrency: ConcurrencyLimit | None = None,
        perpetual: Perpetual | None = None,
    ) -> TaskFunction:
        """Make ``fn`` runnable as a task of this docket under ``name`` (its qualified name
        by default). Workers of every process must register the same functions."""
        function = TaskFunction(
            fn,
            name=name,
            retry=retry,
            timeout=timeout,
            concurrency=concurrency,
            perpetual=perpetual,
        )
        existing = self.functions.get(function.name)
        if existing is not None and existing.fn is not fn:
            raise ValueError(f"another function is already registered as {function.name!r}")
        self.functions[function.name] = function
        return function

    def function(self, fn_or_name: TaskCallable | str) -> TaskFunction:
        if isinstance(fn_or_name, str):
            found = self.functions.get(fn_or_name)
        else:
            found = next((f for f in self.functions.values() if f.fn is fn_or_name), None)
        if found is None:
            name = fn_or_name if isinstance(fn_or_name, str) else repr(fn_or_name)
            raise UnknownFunction(
                f"{name} is not registered on docket {self.name!r}: call docket.register() first"
            )
        return found

    # -- adding tasks --------------------------------------------------------------------

    def add(
        self,
        fn: TaskCallable | str,
        *,
        key: str | None = None,
        when: datetime | None = None,
        delay: timedelta | float | None = None,
        replace: bool = False,
        meta: dict[str, Any] | None = None,
        ttl: timedelta | float | None = None,
        index: str | None = None,
        quota: Quota | None = None,
        label: str | None = None,
    ) -> Callable[..., Awaitable[Execution]]:
        """``await docket.add(fn, ...)(*args, **kwargs)`` adds one task.

        With ``key``, a task of that key that is still scheduled, queued or running is
        returned instead of adding another; ``replace=True`` reschedules it instead (a running
        task is never replaced). ``when`` (aware datetime) or ``delay`` defer it. ``ttl``
        keeps this task's final state that long instead of the docket's ``result_ttl``.
        ``index`` lists the task under that tag for :meth:`list_index` (e.g. its owner).
        ``quota`` admits the task only within that quota, else raises :class:`QuotaExceeded`;
        it is charged in the same script that creates the task, so an add that creates nothing
        (a duplicate key, a reschedule, a refusal, an error) costs nothing.
        ``label`` is what the docket's statistics and traces count the task under (the
        function's name by default; e.g. the tool a generic function runs).
        """
        ttl_ms = ttl_ms_of(ttl)
        function = self.function(fn)
        label = check_label(label, function.name)
        due = due_ms(when, delay)
        meta_json = encode_meta(meta)
        if key is not None:
            check_task_key(key)
        mode = "replace" if replace else ("keep" if key is not None else "new")

        async def call(*args: Any, **kwargs: Any) -> Execution:
            encoded = self.codec.seal(function.encode_call(args, kwargs))
            task_key = key if key is not None else new_task_key()
            row = Row(
                task_key, mode, due, function.name, encoded, meta_json, ttl_ms, index or "", label
            )
            (result,) = await self._enqueue([row], quota)
            return result

        return call

    async def add_many(
        self,
        fn: TaskCallable | str,
        calls: Iterable[Call | Sequence[Any]],
        *,
        delay: timedelta | float | None = None,
        meta: dict[str, Any] | None = None,
        label: str | None = None,
    ) -> list[Execution]:
        """Add many tasks of one function in one round trip. Each call is an argument tuple,
        or a pair ``(args, kwargs)`` when it is a tuple of a sequence and a dict."""
        function = self.function(fn)
        label = check_label(label, function.name)
        due = due_ms(None, delay)
        meta_json = encode_meta(meta)
        rows = []
        for call in calls:
            args, kwargs = split_call(call)
            encoded = self.codec.seal(function.encode_call(args, kwargs))
            rows.append(
                Row(new_task_key(), "new", due, function.name, encoded, meta_json, label=label)
            )
        results: list[Execution] = []
        for start in range(0, len(rows), 500):
            results.extend(await self._enqueue(rows[start : start + 500]))
        return results

    async def _enqueue(self, rows: list[Row], quota: Quota | None = None) -> list[Execution]:
        """Add rows of one function and label, in a span whose trace context they carry."""
        first = rows[0]
        keys = [row.key for row in rows]
        with tracing.adding(self.name, first.label, first.function, keys) as carrier:
            try:
                return await adding.enqueue(self, rows, carrier, quota)
            except QuotaExceeded as exc:
                tracing.refused(exc.reason)
                refusal = exc
        raise refusal  # outside the span: a refusal is the quota's answer, not an error

    # -- reading and waiting -------------------------------------------------------------

    async def get(self, key: str) -> ExecutionState | None:
        """The task's current state, or None if there is no such task (or it expired)."""
        return await _opened(self._reads).state(key) if is_task_key(key) else None

    async def wait(self, key: str, timeout: float | None = None) -> ExecutionState:  # noqa: ASYNC109
        """Wait until the task is terminal and return its final state. Push-based: it
        listens on the docket's shared subscription and reads the state only on a change."""
        with anyio.fail_after(timeout):
            async for state in self.watch(key):
                if state.terminal:
                    return state
        raise TaskNotFound(key)  # pragma: no cover - watch() raises or ends on a terminal state

    async def watch(self, key: str) -> AsyncIterator[ExecutionState]:
        """Yield the task's state now and after every change, ending with a terminal state.
        Raises :class:`TaskNotFound` if the task does not exist (or expires meanwhile)."""
        if not is_task_key(key):
            raise TaskNotFound(key)
        async with self.hub.subscription(key) as events:
            state = await self.get(key)
            if state is None:
                raise TaskNotFound(key)
            yield state
            while not state.terminal:
                await next_event(events)  # any event of this key, a resync, or silence
                fresh = await self.get(key)
                if fresh is None:
                    raise TaskNotFound(key)
                if fresh != state:
                    state = fresh
                    yield state

    async def cancel(self, key: str) -> bool:
        """Cancel a task: a scheduled or queued one never runs; a running one is cancelled
        cooperatively by its worker, wherever it runs. False if it had already finished."""
        if not is_task_key(key):
            raise TaskNotFound(key)
        verdict = await self.scripts.cancel(key, now_ms(), self.result_ttl_ms)
        if verdict == "missing":
            raise TaskNotFound(key)
        return verdict in ("cancelled", "cancelling")

    async def report_progress(
        self, key: str, current: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Store a running task's progress and publish the change."""
        progress = TaskProgress(current=current, total=total, message=message)
        await self._update(key, "progress", "", progress=to_json_text(progress.model_dump()))

    async def _update(self, key: str, status: str, detail: str, **fields: Any) -> None:
        """Set fields of a task's hash and publish the change, in one script."""
        await self.scripts.update(key, status, detail, {"updated": now_ms(), **fields})

    # -- questions and answers -----------------------------------------------------------

    async def ask(self, key: str, attempt: int, question: Any) -> Any:
        """Store a running task's question, publish it, and wait for its answer (push)."""
        run = self.keys.run(key)
        question_id = f"{attempt}-{await self.client.hincrby(run, 'asked', 1)}"
        async with self.hub.subscription(key) as events:
            asked = self.codec.seal(to_json_text(question))
            await self._update(key, "asking", question_id, **{f"ask:{question_id}": asked})
            while True:
                raw = await self.client.hget(run, f"answer:{question_id}")
                if raw is not None:
                    await self.client.hdel(run, f"ask:{question_id}", f"answer:{question_id}")
                    return from_json_text(self.codec.open(raw))
                await next_event(events)

    async def answer(self, key: str, answers: dict[str, Any]) -> int:
        """Answer a task's open questions by id; unknown or answered ids are ignored.
        Returns how many answers were taken."""
        if not is_task_key(key):
            raise TaskNotFound(key)
        taken = [
            (question_id, self.codec.seal(to_json_text(value)))
            for question_id, value in answers.items()
            if is_task_key(question_id)  # any other id is no question's (and unencodable)
        ]
        return await self.scripts.answer(key, taken)

    # -- inspection ----------------------------------------------------------------------

    async def depth(self) -> tuple[int, int]:
        """(tasks on the stream not yet finished, tasks scheduled for later)."""
        depth = await read_depth(self)
        return depth.length, depth.scheduled

    async def list_index(
        self, tag: str, after: IndexPosition | None = None, limit: int = 50
    ) -> tuple[list[ExecutionState], IndexPosition | None]:
        """A page of the tasks added with ``index=tag``, oldest first, and the position to
        pass as ``after`` for the next page (None at the end). Expired tasks are left out.

        The position is the last entry of the page (its creation ms and key), not a count:
        expired entries leave the index whenever a task joins it (see enqueue.lua), and an
        offset would then skip live tasks that moved up into a page already read. Scores are
        whole milliseconds, as enqueue.lua writes them.
        """
        return await listing.list_index(self, tag, after, limit)

    async def backlog(self, limit: int = 1000) -> tuple[int, list[str]]:
        """(tasks queued, running or parked on a concurrency limit, the first ``limit``
        scheduled keys), read atomically: a task moving between them is always counted."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        return await self.scripts.backlog(limit)

    async def scheduled_keys(self, limit: int = 1000) -> list[str]:
        raw: list[bytes] = await self.client.zrange(self.keys.scheduled, 0, limit - 1)  # type: ignore[assignment]
        return [k.decode() for k in raw]


def _opened(part: T | None) -> T:
    if part is None:
        raise DocketClosed("the docket is not open: use `async with Docket(...)`")
    return part


__all__ = ["Docket", "Execution", "IndexPosition", "new_task_key"]
