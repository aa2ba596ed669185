"""The server of the chaos run (``benchmarks/chaos.py``, ``tests/e2e/test_chaos.py``).

One task tool, ``work(n, sleep_ms)``: it journals that it started, sleeps, journals that it
ended and answers ``n * n + 1``. The journal is what lets the audit count every execution,
duplicates included, independently of the store under test: each worker process appends
lines to its own file in ``CHAOS_JOURNAL`` (a directory) with one ``write(2)`` per line on an
``O_APPEND`` descriptor. A line written before a ``SIGKILL`` is in the kernel and survives
the process; a Redis restart cannot touch it (a Redis list would lose the records of
executions whose writes failed during the outage, and would record "ran" only if Redis
answered, which is the thing being tested).

Line format: ``S|E <task id> <attempt> <pid> <n> <unix time>`` (start, end).

Clients authenticate with a bearer token (``StaticTokenVerifier``): see ``CLIENTS``.

Settings (environment): ``MCP_TASKS_URL`` / ``MCP_TASKS_NAME`` / ``MCP_TASKS_WORKER`` as for
any server, ``CHAOS_REDELIVERY`` (seconds before a dead worker's task runs elsewhere, 2 by
default) and ``CHAOS_JOURNAL``.
"""

from __future__ import annotations

import asyncio
import os
import time

from fastmcp import FastMCP
from fastmcp.server.auth import StaticTokenVerifier

from mcp_tasks import Tasks
from mcp_tasks.engine import current_task

CLIENTS = 64
"""Bearer tokens ``chaos-client-0`` ... accepted, one principal each: tasks bind to the
principal, so a client that reconnects (a new HTTP session) still reads its tasks."""

tokens = {
    f"chaos-client-{i}": {"client_id": "chaos", "sub": f"client-{i}", "scopes": []}
    for i in range(CLIENTS)
}
mcp = FastMCP("chaos", auth=StaticTokenVerifier(tokens))
mcp.add_extension(Tasks(redelivery_timeout=float(os.environ.get("CHAOS_REDELIVERY", "2"))))

_journal: int | None = None


def expected(n: int) -> int:
    """What ``work(n, ...)`` answers: the audit checks every result against it."""
    return n * n + 1


def journal(kind: str, n: int) -> None:
    """Append one line to this process's journal file (one unbuffered write)."""
    global _journal
    folder = os.environ.get("CHAOS_JOURNAL")
    if not folder:
        return
    if _journal is None:
        path = os.path.join(folder, f"worker-{os.getpid()}.log")
        _journal = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    task = current_task()
    line = f"{kind} {task.key} {task.attempt} {os.getpid()} {n} {time.time():.3f}\n"
    os.write(_journal, line.encode())


@mcp.tool(task=True)
async def work(n: int, sleep_ms: int) -> int:
    """Sleep ``sleep_ms`` milliseconds, journalling the start and the end; answer n*n + 1."""
    journal("S", n)
    await asyncio.sleep(sleep_ms / 1000)
    journal("E", n)
    return expected(n)
