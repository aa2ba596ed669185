"""The docket's Lua scripts (``lua/*.lua``) behind typed Python wrappers.

Each transition of a task (enqueue, start, finish, cancel, ...) is one script, so that it is
atomic on the server and costs one round trip. Every script's KEYS/ARGV marshalling lives in
its wrapper here, next to the others, and each returns a typed answer; the callers (the
docket and the worker) never build a script's argument list.

A script's text is: a preamble generated from :mod:`.keys` (``run_key``, ``limit_key``,
``waiting_key``, the event channels ``task_channel`` and ``control_channel``, and the
histogram bounds: the scripts derive some names from the docket prefix or its event channel,
and they get the layout from its one home), then ``common.lua`` (helpers; Redis
scripts cannot include one another), then the script itself. redis-py runs them with
EVALSHA and falls back to EVAL on NOSCRIPT.

With ``min_replicas`` (:class:`Replication`) the scripts whose outcome a client is told about
(enqueue, finish, cancel, answer) run in a *held* variant: the same body, but its event
messages come back with its answer (channel, message, channel, message...) instead of being
published. The wrapper sends the script
and a ``WAIT`` in one pipeline — WAIT counts the replicas that have every write made *on its
own connection*, so it must follow the script on the same one — and publishes the messages
once the replicas confirmed (or the wait timed out). A process killed between the two leaves
a change unannounced: listeners read their tasks again after ``events.recheck_seconds()``
of silence, so that costs at most that delay.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from . import keys as layout
from .clock import seconds
from .connection import Backend
from .errors import ReplicasBehind
from .keys import GROUP, Keys

NAMES = (
    "enqueue",
    "start",
    "finish",
    "promote",
    "cancel",
    "sweep",
    "answer",
    "update",
    "backlog",
)


CONFIRMED = ("enqueue", "finish", "cancel", "answer")
"""The scripts whose outcome a client is told about: with min_replicas, replicas confirm them."""
HELD = CONFIRMED
"""Of those, the ones whose event message waits for the confirmation: all of them."""

PUBLISH_AT_ONCE = "local function emit(channel, text) redis.call('PUBLISH', channel, text) end"
HOLD_BACK = (
    "local HELD = {}\n"
    "local function emit(channel, text) HELD[#HELD + 1] = channel; HELD[#HELD + 1] = text end"
)


def preamble(*, held: bool = False) -> str:
    """Lua definitions generated from keys.py (the key names scripts derive themselves), and
    ``emit``, which publishes an event message at once or holds it back (``held``)."""
    k = layout
    buckets = ", ".join(str(bound) for bound in k.RUN_BUCKETS_MS)
    control = ", ".join(f"{status} = true" for status in k.CONTROL_STATUSES)
    return "\n".join(
        [
            "-- Generated from mcp_tasks/engine/keys.py (scripts.preamble): do not edit.",
            f"local function run_key(prefix, key) return prefix .. '{k.RUN}' .. key end",
            f"local function large_key(prefix, key) return prefix .. '{k.LARGE}' .. key end",
            f"local COMPACT_VALUE_BYTES = {k.COMPACT_VALUE_BYTES}",
            f"local LARGE_OUTLIVES_MS = {k.LARGE_OUTLIVES_MS}",
            f"local function limit_key(prefix, name) return prefix .. '{k.LIMIT}' .. name end",
            f"local function waiting_key(prefix, name) return prefix .. '{k.WAITING}' .. name end",
            f"local RUN_BUCKETS_MS = {{{buckets}}}",
            f"local function task_channel(events, key) return events .. '{k.TASK_EVENTS}' .. key"
            " end",
            f"local function control_channel(events) return events .. '{k.CONTROL}' end",
            f"local CONTROL_STATUSES = {{{control}}}",
            HOLD_BACK if held else PUBLISH_AT_ONCE,
        ]
    )


@cache
def source(name: str, *, held: bool = False) -> str:
    """The full text of one script: generated preamble, helpers, body. The held variant runs
    the body as a function and answers ``{held event messages, the body's answer}``."""
    folder = resources.files(__package__).joinpath("lua")
    common = folder.joinpath("common.lua").read_text(encoding="utf-8")
    body = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    if held:
        body = f"local function body()\n{body}\nend\nlocal answer = body()\nreturn {{HELD, answer}}"
    return f"{preamble(held=held)}\n{common}\n{body}"


@dataclass(frozen=True)
class Replication:
    """``min_replicas`` replicas must confirm a held script's writes within ``timeout`` s."""

    min_replicas: int
    timeout: float

    @classmethod
    def of(
        cls, min_replicas: int, timeout: timedelta | float, backend: Backend
    ) -> Replication | None:
        """The docket's setting: None (off, the default) for 0. Redis replicates
        asynchronously, so without it a failover can lose the latest writes."""
        if not min_replicas:
            return None
        if backend.is_memory:
            raise ValueError("min_replicas needs a Redis with replicas; memory:// has none")
        return cls(min_replicas, seconds(timeout))

    def __post_init__(self) -> None:
        if self.min_replicas < 1:
            raise ValueError("min_replicas must be at least 1 (0 turns confirmation off)")
        if not self.timeout > 0:
            raise ValueError("replica_timeout must be positive")


@dataclass(frozen=True)
class EnqueueRow:
    """One task to add (see enqueue.lua)."""

    key: str
    mode: str  # new | keep | replace
    due_ms: int
    function: str
    call: str | bytes
    meta: str
    ttl_ms: str  # '' = the docket's default
    index: str | None
    index_ttl_ms: int | str
    label: str


@dataclass(frozen=True)
class QuotaCaps:
    tag: str
    max_unfinished: int | None
    max_per_window: int | None
    window_ms: int
    set_ttl_ms: int


@dataclass(frozen=True)
class StartClaim:
    """A claimed stream entry to start; ``limit`` is (name, maximum) of its concurrency
    limit, if it has one."""

    sid: str
    key: str
    limit: tuple[str, int] | None


@dataclass(frozen=True)
class StartVerdict:
    verdict: str  # run | stale | cancelled | parked | lost
    attempt: int
    when_ms: int | None
    ttl: str
    label: str
    meta: bytes


@dataclass(frozen=True)
class FinishRow:
    """The outcome of one run (see finish.lua for the outcomes)."""

    sid: str
    key: str
    outcome: str
    data: str | bytes
    when_ms: int
    limit: str | None
    ttl: str
    counter: str
    label: str
    started_ms: int | str  # '' = no finished run (a hand-back): no run time


class Scripts:
    """The scripts bound to one Redis client and one docket's keys."""

    def __init__(self, client: Redis, keys: Keys, replication: Replication | None = None) -> None:
        self.keys = keys
        self.replication = replication
        self._client = client
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(source(name)) for name in NAMES
        }
        self._confirmed = {name: source(name, held=name in HELD) for name in CONFIRMED}
        self._confirmed_sha = {
            name: hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
            for name, text in self._confirmed.items()
        }

    async def _run(
        self, name: str, keys: list[str], args: list[Any], *, confirm: bool = True
    ) -> Any:
        if confirm and self.replication is not None and name in self._confirmed:
            return await self._run_confirmed(name, keys, args, self.replication)
        return await self._scripts[name](keys=keys, args=args)

    async def _run_confirmed(
        self, name: str, keys: list[str], args: list[Any], replication: Replication
    ) -> Any:
        """Run the script and WAIT on the same connection (then publish a held script's event
        message). Replicas that did not confirm in time raise :class:`ReplicasBehind`,
        carrying the script's answer: the change stands on the primary, and the caller
        decides what that means. A script that failed raises; one that ran never runs twice
        here, whatever became of its WAIT."""
        timeout_ms = max(int(replication.timeout * 1000), 1)
        held = name in HELD
        # On a cluster, WAIT has no key to route by: send it to the node of the script's keys,
        # and the cluster pipeline sends both on that node's one connection.
        node = getattr(self._client, "get_node_from_key", None)
        where = {"target_nodes": node(keys[0])} if node is not None else {}
        for _ in range(2):
            pipe = self._client.pipeline(transaction=False)
            # (execute_command: the cluster pipeline refuses its evalsha() method.)
            pipe.execute_command("EVALSHA", self._confirmed_sha[name], len(keys), *keys, *args)
            pipe.execute_command("WAIT", replication.min_replicas, timeout_ms, **where)
            ran, confirmed = await pipe.execute(raise_on_error=False)
            if isinstance(ran, NoScriptError):
                # A new primary after a failover has an empty script cache; the script did
                # not run, so loading it and running it again is safe.
                await self._client.script_load(self._confirmed[name])
                continue
            if isinstance(ran, Exception):
                raise ran
            answer = ran
            if held:
                messages, answer = [*ran, None][:2]
                await self._publish(list(zip(messages[::2], messages[1::2], strict=True)))
            # A WAIT that failed (on a cluster mid-failover, sent to a node just demoted, or
            # after the script was redirected to another node) confirmed nothing.
            count = 0 if isinstance(confirmed, Exception) else int(confirmed)
            if count < replication.min_replicas:
                raise ReplicasBehind(replication.min_replicas, count, replication.timeout, answer)
            return answer
        raise NoScriptError(f"the {name} script could not be loaded")

    async def _publish(self, messages: list[tuple[Any, Any]]) -> None:
        """Publish a held script's messages in one round trip. (``execute_command``: a
        cluster pipeline refuses its ``publish()`` method, not the command.)"""
        if messages:
            pipe = self._client.pipeline(transaction=False)
            for channel, message in messages:
                pipe.execute_command("PUBLISH", channel, message)
            await pipe.execute()

    async def enqueue(
        self, now_ms: int, keep_recent: int, quota: QuotaCaps | None, rows: Sequence[EnqueueRow]
    ) -> list[tuple[bool, str, int | None]]:
        """Add tasks: per row (created, status, ms to wait when its quota refused it)."""
        k = self.keys
        keys = [k.stream, k.scheduled, k.events, k.recent, k.stats]
        args: list[Any] = [now_ms, keep_recent, k.prefix]
        if quota is None:
            keys += [k.stream, k.stream]  # placeholders: no quota to charge
            args += ["", "", "", ""]
        else:
            keys += [k.quota(quota.tag), k.rate(quota.tag)]
            args += [quota.max_unfinished or "", quota.max_per_window or ""]
            args += [quota.window_ms, quota.set_ttl_ms]
        for row in rows:
            run = k.run(row.key)
            keys += [run, k.index(row.index) if row.index else run]
            args += [row.key, row.mode, max(row.due_ms, 0), row.function, row.call, row.meta]
            args += [row.ttl_ms, row.index_ttl_ms, row.label]
        try:
            answers = await self._run("enqueue", keys, args)
        except ReplicasBehind as exc:
            exc.answer = self._enqueue_answers(exc.answer)
            raise
        return self._enqueue_answers(answers)

    @staticmethod
    def _enqueue_answers(answers: Any) -> list[tuple[bool, str, int | None]]:
        return [
            (bool(created), bytes(status).decode(), int(wait[0]) if wait else None)
            for created, status, *wait in answers
        ]

    async def start(
        self,
        consumer: str,
        now_ms: int,
        lease_until_ms: int,
        result_ttl_ms: int,
        max_deliveries: int,
        claims: Sequence[StartClaim],
    ) -> list[StartVerdict]:
        """Start a batch of claimed entries: a verdict per claim, in order."""
        k = self.keys
        keys = [k.stream, k.events, k.limits, k.stats]
        args: list[Any] = [GROUP, consumer, now_ms, lease_until_ms, result_ttl_ms]
        args += [max_deliveries, k.prefix]
        for claim in claims:
            run = k.run(claim.key)
            if claim.limit:
                name, maximum = claim.limit
                keys += [run, k.limit(name), k.waiting(name)]
                args += [claim.sid, claim.key, maximum, name]
            else:
                keys += [run, run, run]
                args += [claim.sid, claim.key, 0, ""]
        answers = await self._run("start", keys, args)
        return [
            StartVerdict(
                verdict=bytes(verdict).decode(),
                attempt=int(attempt),
                when_ms=int(when) if when else None,
                ttl=bytes(ttl).decode(),
                label=bytes(label).decode(),
                meta=bytes(meta),
            )
            for verdict, attempt, when, ttl, label, meta in answers
        ]

    async def finish(self, now_ms: int, result_ttl_ms: int, rows: Sequence[FinishRow]) -> None:
        """Record a batch of outcomes, ack their entries and wake tasks waiting for a slot."""
        k = self.keys
        keys = [k.stream, k.events, k.scheduled, k.stats]
        args: list[Any] = [GROUP, now_ms, result_ttl_ms, k.prefix]
        for row in rows:
            run = k.run(row.key)
            keys += [run, k.limit(row.limit), k.waiting(row.limit)] if row.limit else [run] * 3
            args += [row.sid, row.key, row.outcome, row.data, row.when_ms]
            args += [1 if row.limit else 0, row.ttl, row.counter, row.label, row.started_ms]
        await self._run("finish", keys, args)

    async def promote(self, now_ms: int, batch: int) -> tuple[int, int | None]:
        """Move due scheduled tasks to the stream: (how many, the next due ms or None)."""
        k = self.keys
        moved, next_due = await self._run(
            "promote", [k.scheduled, k.stream, k.events], [now_ms, batch, k.prefix]
        )
        return int(moved), None if int(next_due) == -1 else int(next_due)

    async def cancel(
        self, key: str, now_ms: int, result_ttl_ms: int, *, confirm: bool = True
    ) -> str:
        """missing | cancelling (running: its worker stops it) | cancelled | the terminal
        status it already had. ``confirm=False``: no replica confirmation even with
        min_replicas (for withdrawing a task nobody was told of)."""
        k = self.keys
        keys = [k.run(key), k.scheduled, k.stream, k.events, k.stats]
        args = [key, now_ms, result_ttl_ms, k.prefix]
        answer = await self._run("cancel", keys, args, confirm=confirm)
        return bytes(answer).decode()

    async def sweep(self, now_ms: int) -> int:
        """Free slots whose holders' leases ran out; how many waiting tasks were woken."""
        k = self.keys
        return int(await self._run("sweep", [k.limits, k.stream, k.events], [now_ms, k.prefix]))

    async def answer(self, key: str, answers: Sequence[tuple[str, bytes]]) -> int:
        """Store answers to a task's open questions; how many were taken."""
        args: list[Any] = [key]
        for question_id, sealed in answers:
            args += [question_id, sealed]
        return int(await self._run("answer", [self.keys.run(key), self.keys.events], args))

    async def update(self, key: str, status: str, detail: str, fields: dict[str, Any]) -> None:
        """Set fields of a task's hash and publish the change."""
        args: list[Any] = [status, detail, key]
        for name, value in fields.items():
            args += [name, value]
        await self._run("update", [self.keys.run(key), self.keys.events], args)

    async def backlog(self, limit: int) -> tuple[int, list[str]]:
        """(queued + running + parked, the first ``limit`` scheduled keys), atomically."""
        k = self.keys
        pending, scheduled = await self._run(
            "backlog", [k.stream, k.scheduled, k.limits], [limit, k.prefix]
        )
        return int(pending), [bytes(key).decode() for key in scheduled]
