"""Chaos run: thousands of MCP tasks while workers are SIGKILLed and Redis fails.

What runs, all on loopback:

* a Redis of its own, in one of three ``--topology`` (``benchmarks/topology.py``): ``single``
  (one ``redis-server``, append-only with fsync always: SIGKILLed once in the middle and
  started again on the same port and files after ``--redis-down`` seconds), ``sentinel`` (a
  primary, two replicas, three sentinels: the primary is SIGKILLed once in the middle and a
  replica promoted) or ``cluster`` (three masters with a replica each: the master of the
  docket's slot is SIGKILLed once in the middle and its replica takes over). Replication is
  asynchronous, so a failover may lose what the old primary acknowledged last; with
  ``--min-replicas N`` the servers and workers run with ``MCP_TASKS_MIN_REPLICAS=N``: the
  engine waits for N replicas to confirm a state change before a client is told of it;
* ``--servers`` HTTP server processes (``fastmcp run benchmarks/chaos_server.py``) with
  ``MCP_TASKS_WORKER=0``: API-only replicas, they create and read tasks but never run them;
* ``--workers`` worker processes (``mcp-tasks worker benchmarks/chaos_server.py --url ...``);
  about every ``--kill-every`` seconds a random one that is ready is SIGKILLed and a new one
  started, so that many keep running;
* ``--clients`` fastmcp ``Client``s over streamable HTTP, half in the 2026-07-28 dialect
  (``tools/call`` opted in to the tasks extension, then ``subscriptions/listen`` until the task
  ends, then ``tasks/get``), half in 2025-11-25 (task-augmented ``tools/call``, then the
  blocking ``tasks/result``, then ``tasks/get``), spread over the servers, ``--in-flight``
  tasks open at once.

The tool (``work(n, sleep_ms)`` in ``chaos_server.py``) journals every execution to a file
per worker process, independently of Redis. When every task has ended, workers stop, and the
audit compares four sources: what the clients read over MCP, a final ``tasks/get`` of every
task, the docket's own records, and the journal.

Honesty rules. Reads (``tasks/get``, ``tasks/result``, ``subscriptions/listen``) that fail
while Redis is down are retried, and counted. A ``tools/call`` that fails is counted and
retried as a new call: its first try may still have created a task whose answer never came
back, so the audit looks for such *orphans* among the docket's tasks (same ``n``, an id no
client holds), checks they also ended, and reports them; the tool ran for them too.

Figures: ``lost`` (must be 0) = a task a client holds that did not end, ended without the
right result, or was never executed; ``duplicates`` = executions of the tool beyond one per
task (from the journal), split into those explained by a SIGKILLed worker (the earlier run's
process was killed) and unexplained ones (two live workers ran it); ``redeliveries`` = runs
the engine started beyond one per task (its ``attempt``); ``terminal changes`` (must be 0) =
a task whose terminal state, once read, later read differently, or that the engine announced
as ended more than once (on its pub/sub channel, which the driver follows; what is published
while Redis is down is not heard by anyone, so that count is a lower bound).

    .venv/bin/python benchmarks/chaos.py                  # 10,000 tasks
    .venv/bin/python benchmarks/chaos.py --tasks 1000     # shorter; --help for the rest
    .venv/bin/python benchmarks/chaos.py --topology sentinel --min-replicas 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# benchmarks/ is no package: the siblings below are imported from this folder, which leads
# sys.path when this file runs as a script and is added (last: it shadows nothing) when a test
# loads this file by path.
if not any(Path(p or os.curdir).resolve() == HERE for p in sys.path):
    sys.path.append(str(HERE))
import topology  # noqa: E402
from chaos_clients import TERMINAL, Driver, Job, Observed, Slot, describe  # noqa: E402
from chaos_fleet import Fleet  # noqa: E402


def expected(n: int) -> int:
    """The answer of ``work(n, ...)``; kept equal to ``chaos_server.expected``."""
    return n * n + 1


@dataclass(frozen=True)
class Settings:
    tasks: int = 10_000
    workers: int = 4
    concurrency: int = 10
    servers: int = 2
    clients: int = 8
    in_flight: int = 200
    kill_every: float = 1.0
    redelivery: float = 2.0
    sleep_min_ms: int = 5
    sleep_max_ms: int = 100
    redis_down: float = 1.0
    topology: str = "single"
    min_replicas: int = 0
    replica_timeout: float = 2.0
    deadline: float = 900.0
    stall: float = 90.0
    seed: int = 1


@dataclass
class Report:
    """What a chaos run found; ``ok`` when nothing was lost and nothing double-finished."""

    tasks: int = 0
    topology: str = "single"
    min_replicas: int = 0
    modern_tasks: int = 0
    legacy_tasks: int = 0
    kills: int = 0
    worker_crashes: int = 0
    workers_started: int = 0
    disruptions: int = 0
    redis_outage_s: float = 0.0
    rejoined_s: float = 0.0
    replica_waits: int = 0
    redeliveries: int = 0
    executions: int = 0
    duplicates: int = 0
    duplicates_explained: int = 0
    duplicates_unexplained: int = 0
    lost: int = 0
    failed: int = 0
    wrong_results: int = 0
    not_terminal: int = 0
    never_executed: int = 0
    terminal_changes: int = 0
    double_finish_events: int = 0
    create_errors: int = 0
    orphans: int = 0
    orphans_not_terminal: int = 0
    orphans_beyond_errors: int = 0
    read_retries: int = 0
    reconnects: int = 0
    unreadable_at_end: int = 0
    wall_s: float = 0.0
    tasks_per_s: float = 0.0
    error_kinds: dict[str, int] = field(default_factory=dict)
    log_problems: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def redis_restarts(self) -> int:
        """The old name of ``disruptions`` (the single topology's disruption is a restart),
        which ``tests/e2e/test_chaos.py`` reads."""
        return self.disruptions

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.terminal_changes == 0
            and self.double_finish_events == 0
            and self.orphans_not_terminal == 0
            and self.duplicates_unexplained == 0
            and self.unreadable_at_end == 0
        )

    def note(self, where: str, exc: BaseException) -> None:
        """Count an error the clients saw, by where and what (ids and ports blanked)."""
        text = f"{where}: " + re.sub(r"[0-9a-f]{32}|\b\d+\b", "#", describe(exc))
        self.error_kinds[text] = self.error_kinds.get(text, 0) + 1

    def outage(self) -> str:
        """The disruption's count and measured seconds until the primary took writes."""
        text = f"{self.disruptions} ({self.redis_outage_s:.2f} s until writes were taken"
        if self.rejoined_s:
            text += f"; the killed node a synced replica again after {self.rejoined_s:.1f} s"
        return text + ")"

    def table(self) -> str:
        rows = [
            (
                "tasks (2026-07-28 / 2025-11-25)",
                f"{self.tasks:,} ({self.modern_tasks:,} / {self.legacy_tasks:,})",
            ),
            ("worker SIGKILLs", f"{self.kills:,} ({self.workers_started:,} workers started)"),
            ("workers that exited by themselves (replaced)", f"{self.worker_crashes}"),
            ("redis topology", f"{self.topology}, min_replicas {self.min_replicas}"),
            (f"redis fault: {topology.TOPOLOGIES[self.topology].fault}", self.outage()),
            ("WAITs for replicas (counted by the live Redis nodes)", f"{self.replica_waits:,}"),
            ("redeliveries (runs started beyond one per task)", f"{self.redeliveries:,}"),
            ("tool executions (journal)", f"{self.executions:,}"),
            ("duplicates (executions beyond one per task)", f"{self.duplicates:,}"),
            (
                "  of which after a SIGKILL of the earlier run's worker",
                f"{self.duplicates_explained:,}",
            ),
            ("  of which unexplained (must be 0)", f"{self.duplicates_unexplained:,}"),
            ("lost (must be 0)", f"{self.lost:,}"),
            (
                "  not terminal / wrong result / never executed",
                f"{self.not_terminal} / {self.wrong_results} / {self.never_executed}",
            ),
            ("failed", f"{self.failed:,}"),
            ("final tasks/get failing (must be 0)", f"{self.unreadable_at_end}"),
            (
                "terminal state changed or announced twice (must be 0)",
                f"{self.terminal_changes} / {self.double_finish_events}",
            ),
            ("tools/call errors, retried as new calls", f"{self.create_errors:,}"),
            (
                "  orphans: tasks made by an errored call (all ended?)",
                f"{self.orphans} ({'yes' if self.orphans_not_terminal == 0 else 'NO'})",
            ),
            (
                "  orphans beyond the errored calls of their n (one call, two tasks)",
                f"{self.orphans_beyond_errors}",
            ),
            ("reads retried (tasks/get, tasks/result, listen)", f"{self.read_retries:,}"),
            ("clients replaced after their connection broke", f"{self.reconnects:,}"),
            ("wall time", f"{self.wall_s:.1f} s"),
            (
                "tasks/s (tasks / wall time: first create to last end read)",
                f"{self.tasks_per_s:.1f}",
            ),
        ]
        lines = ["| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in rows]
        return "\n".join(lines)


# -- the run ---------------------------------------------------------------------------------


async def chaos(settings: Settings, folder: Path, progress: bool = False) -> Report:
    """One chaos run in ``folder`` (logs, journal, Redis files stay there); the Redis
    topology lives exactly as long as the run."""
    if settings.min_replicas and settings.topology == "single":
        raise ValueError("min_replicas needs replicas: use --topology sentinel or cluster")
    with topology.make(settings.topology, folder / "redis", settings.redis_down) as store:
        return await run(settings, store, folder, progress)


async def run(settings: Settings, store: topology.Topology, folder: Path, progress: bool) -> Report:
    from mcp_tasks.engine import Docket

    report = Report(
        tasks=settings.tasks, topology=settings.topology, min_replicas=settings.min_replicas
    )
    name = f"chaos-{os.getpid()}"
    fleet = Fleet(settings, store.url, name, folder)
    rng = random.Random(settings.seed)
    finish_events: Counter[str] = Counter()
    stop = asyncio.Event()
    background: list[asyncio.Task[None]] = []
    slots: list[Slot] = []
    try:
        async with Docket(name=name, url=store.url) as docket:
            docket.hub.on_every_event(
                lambda e: finish_events.update([e.key]) if e.status in TERMINAL else None
            )
            await docket.hub.start()
            await asyncio.to_thread(fleet.start_servers)
            for _ in range(settings.workers):
                fleet.start_worker()
            await fleet.until_ready()
            observed = Observed()
            for i in range(settings.clients):
                dialect = "modern" if i % 2 == 0 else "legacy"
                url = fleet.urls[(i // 2) % len(fleet.urls)]  # each dialect on every server
                slots.append(Slot(i, dialect, url, observed))
                await slots[-1].open()
            driver = Driver(settings, report)

            async def killer() -> None:
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        pause = settings.kill_every * rng.uniform(0.5, 1.5)
                        await asyncio.wait_for(stop.wait(), pause)
                    if stop.is_set():
                        return
                    report.worker_crashes += fleet.replace_crashed()
                    ready = [w for w in fleet.workers if w.ready and w.process.poll() is None]
                    if not ready:
                        continue
                    fleet.kill(rng.choice(ready))
                    report.kills += 1
                    fleet.start_worker()

            async def disrupter() -> None:
                await driver.halfway.wait()
                if stop.is_set():
                    return
                # Measured by the topology: until the docket's primary took a write again.
                outage = await asyncio.to_thread(store.disrupt, docket.keys.stream)
                report.redis_outage_s, report.rejoined_s = outage, store.rejoined_s
                report.disruptions += 1

            async def ticker() -> None:
                while not stop.is_set():
                    await asyncio.sleep(5)
                    overdue: Any = "?"
                    with contextlib.suppress(Exception):
                        overdue = len(
                            await docket.client.xpending_range(
                                docket.keys.stream,
                                "workers",
                                min="-",
                                max="+",
                                count=1000,
                                idle=int(settings.redelivery * 1000),
                            )
                        )
                    print(
                        f"  {time.monotonic() - started:5.0f}s: {driver.done:,} of "
                        f"{settings.tasks:,} ended, {report.kills} kills, "
                        f"{report.disruptions} redis faults, {overdue} overdue for "
                        f"redelivery; open: {stuck(jobs)[:160]}",
                        file=sys.stderr,
                        flush=True,
                    )

            jobs = []
            for n in range(settings.tasks):
                slot = slots[n % len(slots)]
                sleep_ms = random.Random(settings.seed * 1_000_003 + n).randint(
                    settings.sleep_min_ms, settings.sleep_max_ms
                )
                jobs.append(Job(n, slot.dialect, sleep_ms, slot))
            report.modern_tasks = sum(job.dialect == "modern" for job in jobs)
            report.legacy_tasks = settings.tasks - report.modern_tasks
            started = time.monotonic()
            background = [asyncio.create_task(killer()), asyncio.create_task(disrupter())]
            if progress:
                background.append(asyncio.create_task(ticker()))
            runs = [asyncio.create_task(driver.run(job)) for job in jobs]
            pending = await supervise(settings, report, fleet, driver, runs, background)
            if pending:
                report.details.append(f"open when stopped: {stuck(jobs)}")
            report.wall_s = time.monotonic() - started
            stop.set()
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if report.disruptions == 0:
                report.details.append("the run ended before the Redis fault could happen")
            fleet.stop_workers()
            await audit(settings, report, docket, driver, jobs, observed, fleet, finish_events)
            # Whether the engine did wait for replicas: 0 with min_replicas off.
            report.replica_waits = await asyncio.to_thread(store.calls, "wait")
    finally:
        stop.set()
        for task in background:
            task.cancel()
        for slot in slots:
            await slot.close()
        fleet.close()
    report.reconnects = sum(slot.reconnects for slot in slots)
    report.log_problems = fleet.log_problems()[:20]
    report.workers_started = fleet.started
    report.tasks_per_s = settings.tasks / report.wall_s if report.wall_s else 0.0
    return report


async def supervise(
    settings: Settings,
    report: Report,
    fleet: Fleet,
    driver: Driver,
    runs: list[asyncio.Task[None]],
    background: list[asyncio.Task[None]],
) -> set[asyncio.Task[None]]:
    """Wait for every task to be followed to its end; stop early (the rest counts as lost)
    past the deadline, when no task has ended for ``stall`` seconds, when a server process
    died, or when the killer or the Redis fault failed. Answers the unfinished runs."""
    started = last_change = time.monotonic()
    last_done = -1
    pending = set(runs)
    while pending:
        _, pending = await asyncio.wait(pending, timeout=1.0)
        now = time.monotonic()
        if driver.done != last_done:
            last_done, last_change = driver.done, now
        problem = None
        if now - started > settings.deadline:
            problem = f"the deadline of {settings.deadline:g}s passed"
        elif now - last_change > settings.stall:
            problem = f"no task ended for {settings.stall:g}s"
        elif any(p.poll() is not None for p in fleet.servers):
            problem = "a server process died"
        for task in background:
            if task.done() and not task.cancelled() and task.exception() is not None:
                problem = f"the chaos itself failed: {describe(task.exception())}"  # type: ignore[arg-type]
        if problem is not None and pending:
            report.details.append(f"stopped early with {len(pending)} tasks open: {problem}")
            break
    return pending


def stuck(jobs: list[Job]) -> str:
    """Where the unfinished jobs are: counts by (dialect, client, stage)."""
    where = Counter(
        f"{j.dialect} client {j.slot.index} {j.stage}" for j in jobs if j.stage != "ended"
    )
    return ", ".join(f"{count} {place}" for place, count in sorted(where.items()))


async def where(docket: Any, key: str) -> str:
    """Where the engine has a task: its run hash's status, attempt, worker and stream id, and
    that stream entry (still there? pending for which consumer, idle how long?)."""
    try:
        fields = await docket.client.hmget(
            docket.keys.run(key), ["status", "attempt", "worker", "sid", "updated"]
        )
        status, attempt, worker, sid, updated = (f.decode() if f else None for f in fields)
        text = f"status={status} attempt={attempt} worker={worker} sid={sid} updated={updated}"
        if sid:
            entry = await docket.client.xrange(docket.keys.stream, sid, sid)
            pending = await docket.client.xpending_range(
                docket.keys.stream, "workers", min=sid, max=sid, count=1
            )
            text += f"; entry {'in' if entry else 'not in'} the stream"
            text += f", pending: {pending[0] if pending else 'no'}"
        return text
    except Exception as exc:
        return f"unreadable ({describe(exc)})"


def read_journal(folder: Path) -> dict[str, list[tuple[int, int, bool, int]]]:
    """Per task id: its executions as (attempt, pid, ended, n), in journal order."""
    starts: dict[tuple[str, int, int], list[Any]] = {}
    runs: defaultdict[str, list[list[Any]]] = defaultdict(list)
    for path in sorted(folder.glob("worker-*.log")):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 6:
                continue  # a line cut by the SIGKILL cannot happen (one write), but be safe
            kind, task = parts[0], parts[1]
            attempt, pid, n = (int(p) for p in parts[2:5])
            if kind == "S":
                record = [attempt, pid, False, n]
                runs[task].append(record)
                starts[task, attempt, pid] = record
            elif kind == "E" and (task, attempt, pid) in starts:
                starts[task, attempt, pid][2] = True
    return {task: [tuple(r) for r in records] for task, records in runs.items()}  # type: ignore[misc]


async def audit(
    settings: Settings,
    report: Report,
    docket: Any,
    driver: Driver,
    jobs: list[Job],
    observed: Observed,
    fleet: Fleet,
    finish_events: Counter[str],
) -> None:
    import pydantic_core

    journal = read_journal(fleet.journal)
    held = {job.task_id for job in jobs if job.task_id}
    # 1. What the clients read, and a final tasks/get of every task: one terminal state.
    gate = asyncio.Semaphore(100)

    async def final(job: Job) -> tuple[Job, dict[str, Any]]:
        async with gate:
            return job, await driver.reread(job)

    rereads = await asyncio.gather(*(final(job) for job in jobs if job.task_id))
    for job, got in rereads:
        right = job.status == "completed" and job.value == expected(job.n)
        if job.status not in TERMINAL:
            report.not_terminal += 1
            report.details.append(
                f"n={job.n} {job.task_id}: not terminal ({job.status}); the final tasks/get "
                f"says {got.get('status')}"
            )
        elif job.status == "failed":
            report.failed += 1
            report.details.append(f"n={job.n} {job.task_id}: failed")
        elif not right:
            report.wrong_results += 1
            report.details.append(f"n={job.n} {job.task_id}: {job.status} with {job.value!r}")
        if not got:
            report.unreadable_at_end += 1
            report.details.append(f"n={job.n} {job.task_id}: the final tasks/get kept failing")
        elif job.status in TERMINAL and (
            got.get("status") != job.status or got.get("lastUpdatedAt") != job.updated
        ):
            report.terminal_changes += 1
            report.details.append(
                f"n={job.n} {job.task_id}: read {job.status} at {job.updated}, later "
                f"{got.get('status')} at {got.get('lastUpdatedAt')}"
            )
        pushed = observed.terminal.get(job.task_id or "", set())
        if pushed - {job.status}:
            report.terminal_changes += 1
            report.details.append(f"n={job.n} {job.task_id}: pushed {pushed}, read {job.status}")
        if job.task_id not in journal and job.status == "completed":
            report.never_executed += 1
    report.not_terminal += sum(1 for job in jobs if not job.task_id)
    for job in jobs:
        if job.task_id and job.status not in TERMINAL and len(report.details) < 60:
            report.details.append(
                f"n={job.n} {job.task_id} in the docket: {await where(docket, job.task_id)}"
            )
    report.lost = report.not_terminal + report.wrong_results + report.never_executed
    # 2. The docket's own records: attempts, orphans, and terminal announcements.
    prefix = docket.keys.run_prefix
    # SCAN may return a key more than once (Redis says so; seen on a cluster after its
    # failover, every orphan twice): a set.
    keys = {k.decode() async for k in docket.client.scan_iter(match=f"{docket.keys.pattern}")}
    run_keys = [k[len(prefix) :] for k in keys if k.startswith(prefix)]
    attempts: dict[str, int] = {}
    orphans_of: Counter[int | None] = Counter()
    for key in run_keys:
        state = await docket.get(key)
        if state is None:
            continue
        attempts[key] = state.attempt
        if key not in held:
            report.orphans += 1
            raw = await docket.client.hget(docket.keys.run(key), "call")
            n = None
            with contextlib.suppress(Exception):  # the call is (tool, arguments, caller)
                n = pydantic_core.from_json(docket.codec.open(raw))["a"][1]["n"]
            orphans_of[n] += 1
            report.details.append(f"orphan {key} (n={n}): {state.status}")
            if not state.terminal:
                report.orphans_not_terminal += 1
    # Each errored tools/call may have made one task; more orphans of an n than its errored
    # calls (or an orphan whose n cannot be read) means one call made more than one task.
    errors_of = {job.n: job.create_errors for job in jobs}
    report.orphans_beyond_errors = sum(
        max(count - errors_of.get(n, 0), 0) if n is not None else count
        for n, count in orphans_of.items()
    )
    report.redeliveries = sum(max(a - 1, 0) for a in attempts.values())
    report.double_finish_events = sum(1 for count in finish_events.values() if count > 1)
    for key, count in finish_events.items():
        if count > 1 and len(report.details) < 40:
            report.details.append(f"{key}: announced terminal {count} times")
    # 3. The journal: every execution, and why a task ran more than once.
    report.executions = sum(len(runs) for runs in journal.values())
    for key, runs in journal.items():
        if len(runs) < 2:
            continue
        report.duplicates += len(runs) - 1
        live = [r for r in runs if r[1] not in fleet.killed_pids]
        killed = len(runs) - len(live)
        # Every run but one must have died with its worker; the one left may be live.
        explained = min(killed, len(runs) - 1)
        report.duplicates_explained += explained
        report.duplicates_unexplained += len(runs) - 1 - explained
        if len(live) > 1 and len(report.details) < 40:
            report.details.append(f"{key}: run by live workers {[(r[0], r[1]) for r in live]}")


def parse() -> argparse.Namespace:
    defaults = Settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=type(value), default=value)
    parser.add_argument("--json", action="store_true", help="print the report as JSON too")
    parser.add_argument("--keep", action="store_true", help="keep the logs and journal")
    return parser.parse_args()


async def _interruptible(run: Any) -> Report:
    """SIGTERM cancels the run, so its clean-up (killing every process) still happens."""
    task = asyncio.ensure_future(run)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    result: Report = await task
    return result


HOW = """
How errors were handled: a read (tasks/get, tasks/result, subscriptions/listen) that failed was
retried and counted; a tools/call that failed was counted and made again as a new call (its
first try may have made a task whose answer was lost: such orphans are searched for among the
docket's tasks by their argument n, and must have ended too); a client whose connection broke
was replaced by a new one with the same bearer token (the same principal, so it reads the same
tasks). Lost, duplicates and terminal checks compare the clients' reads with a final tasks/get
of every task, the engine's own records and events, and the tool's journal of every run."""


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="  [chaos driver] %(name)s: %(message)s")
    args = parse()
    settings = Settings(**{k: getattr(args, k) for k in asdict(Settings())})
    folder = Path(tempfile.mkdtemp(prefix="mcp-tasks-chaos-"))
    print(
        f"chaos: {settings.tasks:,} tasks, {settings.workers} workers (c={settings.concurrency}),"
        f" {settings.servers} servers, {settings.clients} clients, SIGKILL every "
        f"~{settings.kill_every:g}s, redelivery {settings.redelivery:g}s, Redis "
        f"{settings.topology} with min_replicas {settings.min_replicas}; files in {folder}",
        file=sys.stderr,
    )
    try:
        report = asyncio.run(_interruptible(chaos(settings, folder, progress=True)))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(report.table())
    print(HOW)
    if report.error_kinds:
        print("\nerrors the clients saw (each counted and retried), by kind:")
        kinds = sorted(report.error_kinds.items(), key=lambda kv: -kv[1])
        print("\n".join(f"- {count}x {kind}" for kind, count in kinds[:20]))
    if report.details:
        print("\ndetails:")
        print("\n".join(f"- {d}" for d in report.details[:40]))
    if report.log_problems:
        print("\nerror lines in the worker/server logs:")
        print("\n".join(f"- {p}" for p in report.log_problems))
    if args.json:
        print(json.dumps(asdict(report)))
    print(f"\nverdict: {'OK' if report.ok else 'PROBLEMS FOUND'}")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
