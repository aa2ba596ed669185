"""The docket: where tasks are added, looked up, awaited and cancelled.

A docket is a Redis stream (due tasks, read by workers through a consumer group), a sorted
set (future tasks), one hash per task (its execution state) and one pub/sub channel (every
state change). Every transition is a Lua script, so it is atomic and one round trip.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, NamedTuple

import anyio
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from . import tracing
from .codec import Codec
from .connection import Backend, close_client, parse_url
from .errors import QuotaExceeded, TaskNotFound, UnknownFunction
from .events import EventHub
from .functions import ConcurrencyLimit, Perpetual, Quota, Retry, TaskCallable, TaskFunction
from .keys import GROUP, Keys, check_docket_name, check_task_key, is_task_key
from .scripts import Scripts
from .serialization import from_json_text, to_json_text
from .state import ExecutionState, Progress, Status, now_ms

Call = tuple[Sequence[Any], dict[str, Any]]


class IndexPosition(NamedTuple):
    """Where a page of :meth:`Docket.list_index` ended: the last task's creation ms and key."""

    created_ms: int
    key: str


@dataclass(frozen=True, slots=True)
class _Row:
    """One task for the enqueue script."""

    key: str
    mode: str
    due: int
    function: str
    call: bytes
    meta: str = ""
    ttl: str = ""
    index: str = ""
    label: str = ""


@dataclass(frozen=True)
class Execution:
    """What :meth:`Docket.add` answers: the task's key and where it now stands.

    ``created`` is false when a task with the same key was already scheduled, queued or
    running, and this call returned that one instead of adding a second.
    """

    key: str
    function: str
    status: Status
    created: bool
    added_at: datetime
    """When this call was made: the task's ``created_at`` when ``created`` is true."""


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
        self.keys = Keys(self.name)
        ttl = result_ttl.total_seconds() if isinstance(result_ttl, timedelta) else result_ttl
        if ttl <= 0:
            raise ValueError("result_ttl must be positive")
        self.result_ttl_ms = int(ttl * 1000)
        self.functions: dict[str, TaskFunction] = {}
        self._max_connections = max_connections
        self._client: Redis | None = None
        self._scripts: Scripts | None = None
        self._hub: EventHub | None = None

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
        self._scripts = Scripts(client)
        self._hub = EventHub(client, self.keys.events)

    async def close(self) -> None:
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
        if self._client is None:
            raise RuntimeError("the docket is not open: use `async with Docket(...)`")
        return self._client

    @property
    def scripts(self) -> Scripts:
        if self._scripts is None:
            raise RuntimeError("the docket is not open: use `async with Docket(...)`")
        return self._scripts

    @property
    def hub(self) -> EventHub:
        if self._hub is None:
            raise RuntimeError("the docket is not open: use `async with Docket(...)`")
        return self._hub

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
        ttl_ms = _ttl_ms(ttl)
        function = self.function(fn)
        label = _label(label, function.name)
        due = _due_ms(when, delay)
        meta_json = _encode_meta(meta)
        if key is not None:
            check_task_key(key)
        mode = "replace" if replace else ("keep" if key is not None else "new")

        async def call(*args: Any, **kwargs: Any) -> Execution:
            encoded = self.codec.seal(function.encode_call(args, kwargs))
            task_key = key if key is not None else new_key()
            row = _Row(
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
        label = _label(label, function.name)
        due = _due_ms(None, delay)
        meta_json = _encode_meta(meta)
        rows = []
        for call in calls:
            if (
                isinstance(call, tuple)
                and len(call) == 2
                and isinstance(call[1], dict)
                and isinstance(call[0], (list, tuple))
            ):
                args, kwargs = tuple(call[0]), call[1]
            else:
                args, kwargs = tuple(call), {}
            encoded = self.codec.seal(function.encode_call(args, kwargs))
            rows.append(_Row(new_key(), "new", due, function.name, encoded, meta_json, label=label))
        results: list[Execution] = []
        for start in range(0, len(rows), 500):
            results.extend(await self._enqueue(rows[start : start + 500]))
        return results

    async def _enqueue(self, rows: list[_Row], quota: Quota | None = None) -> list[Execution]:
        """Add rows of one function and label, in a span whose trace context they carry."""
        first = rows[0]
        keys = [row.key for row in rows]
        with tracing.adding(self.name, first.label, first.function, keys) as carrier:
            try:
                return await self._enqueue_rows(rows, carrier, quota)
            except QuotaExceeded as exc:
                tracing.refused(exc.reason)
                refusal = exc
        raise refusal  # outside the span: a refusal is the quota's answer, not an error

    async def _enqueue_rows(
        self, rows: list[_Row], carrier: dict[str, str] | None, quota: Quota | None
    ) -> list[Execution]:
        now = now_ms()
        keys = [self.keys.stream, self.keys.scheduled, self.keys.events]
        keys += [self.keys.recent, self.keys.stats]
        args: list[Any] = [now, self.keep_recent, self.keys.prefix]
        if quota is None:
            keys += [self.keys.stream, self.keys.stream]  # placeholders: no quota to charge
            args += ["", "", "", ""]
        else:
            keys += [self.keys.quota(quota.tag), self.keys.rate(quota.tag)]
            args += [quota.max_unfinished or "", quota.max_per_window or ""]
            args += [max(int(quota.window * 1000), 1), max(self.result_ttl_ms, 86_400_000)]
        for row in rows:
            run = self.keys.run(row.key)
            keys += [run, self.keys.index(row.index) if row.index else run]
            index_ttl = int(row.ttl or self.result_ttl_ms) + 60_000 if row.index else ""
            meta = _with_trace(row.meta, carrier) if carrier else row.meta
            args += [row.key, row.mode, max(row.due, 0), row.function, row.call, meta]
            args += [row.ttl, index_ttl, row.label or row.function]
        answers = await self.scripts.run("enqueue", keys, args)
        results = []
        queued = False
        refusal: QuotaExceeded | None = None
        for row, (created, status, *wait_ms) in zip(rows, answers, strict=True):
            if quota is not None and status in (b"rate", b"unfinished"):
                reason = status.decode()
                if reason == "rate":
                    limit, retry_after = quota.max_per_window or 0, int(wait_ms[0]) / 1000
                    refusal = QuotaExceeded(quota.tag, reason, limit, retry_after)
                else:
                    refusal = QuotaExceeded(quota.tag, reason, quota.max_unfinished or 0, None)
                continue
            state = Status(status.decode())
            queued = queued or (bool(created) and state is Status.QUEUED)
            added_at = datetime.fromtimestamp(now / 1000, UTC)
            results.append(Execution(row.key, row.function, state, bool(created), added_at))
        if queued and self.backend.memory is not None:
            self.backend.memory.signal.notify()  # also when a refusal follows: others were added
        if refusal is not None:
            raise refusal
        return results

    # -- reading and waiting -------------------------------------------------------------

    async def get(self, key: str) -> ExecutionState | None:
        """The task's current state, or None if there is no such task (or it expired)."""
        if not is_task_key(key):
            return None
        raw: dict[bytes, bytes] = await self.client.hgetall(self.keys.run(key))  # type: ignore[assignment]
        if not raw or b"status" not in raw:
            return None
        return ExecutionState.from_hash(raw, self.codec)

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
                await events.get()  # any event of this key (or a resync): read it afresh
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
        answer = await self.scripts.run(
            "cancel",
            [
                self.keys.run(key),
                self.keys.scheduled,
                self.keys.stream,
                self.keys.events,
                self.keys.stats,
            ],
            [key, now_ms(), self.result_ttl_ms],
        )
        verdict = bytes(answer).decode()
        if verdict == "missing":
            raise TaskNotFound(key)
        return verdict in ("cancelled", "cancelling")

    async def report_progress(
        self, key: str, current: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Store a running task's progress and publish the change."""
        progress = Progress(current=current, total=total, message=message)
        await self._update(key, "progress", "", progress=progress.model_dump_json())

    async def _update(self, key: str, status: str, detail: str, **fields: Any) -> None:
        """Set fields of a task's hash and publish the change, in one script."""
        args: list[Any] = [status, detail, key, "updated", now_ms()]
        for name, value in fields.items():
            args += [name, value]
        await self.scripts.run("update", [self.keys.run(key), self.keys.events], args)

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
                await events.get()

    async def answer(self, key: str, answers: dict[str, Any]) -> int:
        """Answer a task's open questions by id; unknown or answered ids are ignored.
        Returns how many answers were taken."""
        if not is_task_key(key):
            raise TaskNotFound(key)
        args: list[Any] = [key]
        for question_id, value in answers.items():
            if is_task_key(question_id):  # any other id is no question's (and unencodable)
                args += [question_id, self.codec.seal(to_json_text(value))]
        stored = await self.scripts.run("answer", [self.keys.run(key), self.keys.events], args)
        return int(stored)

    # -- inspection ----------------------------------------------------------------------

    async def depth(self) -> tuple[int, int]:
        """(tasks on the stream not yet finished, tasks scheduled for later)."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xlen(self.keys.stream)
            pipe.zcard(self.keys.scheduled)
            stream, scheduled = await pipe.execute()
        return int(stream), int(scheduled)

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
        if limit < 1:
            raise ValueError("limit must be >= 1")
        index = self.keys.index(tag)
        if after is None:
            found: list[tuple[bytes, float]] = await self.client.zrange(  # type: ignore[assignment]
                index, 0, limit, withscores=True
            )
            entries = [(key, int(ms)) for key, ms in found]
        else:
            # The rest of `after`'s millisecond, then what follows it, read at one instant:
            # reads in rounds could lose their place when a joining task prunes the index.
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.zrangebyscore(index, after.created_ms, after.created_ms)
                pipe.zrangebyscore(
                    index, f"({after.created_ms}", "+inf", start=0, num=limit + 1, withscores=True
                )
                same, later = await pipe.execute()
            mark = after.key.encode()  # one millisecond's members are in byte order
            entries = [(key, after.created_ms) for key in same if key > mark]
            entries += [(key, int(ms)) for key, ms in later]
        page, more = entries[:limit], len(entries) > limit
        async with self.client.pipeline(transaction=False) as pipe:
            for key, _ in page:
                pipe.hgetall(self.keys.run(key.decode()))
            raws: list[dict[bytes, bytes]] = await pipe.execute()
        states = [
            ExecutionState.from_hash(raw, self.codec) for raw in raws if raw and b"status" in raw
        ]
        gone = [key for (key, _), raw in zip(page, raws, strict=True) if not raw]
        if gone:  # met on the way: drop them now rather than when a task next joins
            await self.client.zrem(index, *gone)
        if not more:
            return states, None
        last_key, last_ms = page[-1]
        return states, IndexPosition(last_ms, last_key.decode())

    async def backlog(self, limit: int = 1000) -> tuple[int, list[str]]:
        """(tasks queued, running or parked on a concurrency limit, the first ``limit``
        scheduled keys), read atomically: a task moving between them is always counted."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        keys = self.keys
        pending, scheduled = await self.scripts.run(
            "backlog", [keys.stream, keys.scheduled, keys.limits], [limit, keys.prefix]
        )
        return int(pending), [bytes(k).decode() for k in scheduled]

    async def scheduled_keys(self, limit: int = 1000) -> list[str]:
        raw: list[bytes] = await self.client.zrange(self.keys.scheduled, 0, limit - 1)  # type: ignore[assignment]
        return [k.decode() for k in raw]


def new_key() -> str:
    """A task key with 128 bits of randomness: unguessable, so it can be handed out."""
    return secrets.token_hex(16)


def _due_ms(when: datetime | None, delay: timedelta | float | None) -> int:
    if when is not None and delay is not None:
        raise ValueError("give when= or delay=, not both")
    if delay is not None:
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        if seconds < 0:
            raise ValueError(f"delay may not be negative (got {seconds}s)")
        return now_ms() + int(seconds * 1000) if seconds > 0 else 0
    if when is not None:
        if when.tzinfo is None:
            raise ValueError("when= must be a timezone-aware datetime")
        return int(when.astimezone(UTC).timestamp() * 1000)
    return 0


def _ttl_ms(ttl: timedelta | float | None) -> str:
    if ttl is None:
        return ""
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if seconds <= 0:
        raise ValueError(f"ttl must be positive (got {seconds}s)")
    return str(round(seconds * 1000))


def _encode_meta(meta: dict[str, Any] | None) -> str:
    if not meta:
        return ""
    return to_json_text(meta)


def _with_trace(meta_json: str, carrier: dict[str, str]) -> str:
    """The task's metadata with the trace context of the span that adds it."""
    meta = from_json_text(meta_json) if meta_json else {}
    return _encode_meta({**meta, tracing.META_KEY: carrier})


def _label(label: str | None, function: str) -> str:
    label = function if label is None else label
    if not 0 < len(label) <= 200:
        raise ValueError("a task label must be 1-200 characters")
    return label


__all__ = ["Docket", "Execution", "new_key"]
