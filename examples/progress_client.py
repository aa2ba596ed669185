"""Run one tool as a task and watch its progress to the end, in either task dialect.

    python examples/progress_client.py                          # spawns server.py over stdio
    python examples/progress_client.py --url http://127.0.0.1:8000/mcp
    python examples/progress_client.py sleep '{"seconds": 10}' --poll
    python examples/progress_client.py --legacy                 # protocol 2025-11-25

The task is created with ``mcp_tasks.client`` (``TasksClient.call_tool``: a task handle back
at once). Its changes are then *pushed*: on 2026-07-28 ``subscriptions/listen`` makes the
server send ``notifications/tasks`` on every change, from whichever replica or worker sees
it; on 2025-11-25 (``--legacy``) ``notifications/progress`` and ``notifications/tasks/status``
come while ``tasks/result`` waits for the end. ``--poll`` asks ``tasks/get`` at the server's
``pollInterval`` instead. The same code runs in both dialects, and the bar means the same in
each: the tool's own numbers, full when the task completes. Ctrl-C sends ``tasks/cancel`` and
waits until the task reports how it ended. The bar and notes go to stderr, the result to
stdout. Needs only mcp-tasks (``pip install -e .``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from fastmcp.client.transports import StdioTransport
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from mcp_tasks.client import TaskHandle, TasksClient, TaskState

SERVER = Path(__file__).resolve().parents[1] / "server.py"
console = Console(stderr=True)


class Display:
    """The progress bar: the tool's numbers (pulsing until it reports a total), the status,
    the latest message and the time."""

    def __init__(self, bar: Progress, tool: str) -> None:
        self.bar, self.tool, self.updates = bar, tool, 0
        self.row = bar.add_task(f"{tool}: working", total=None)  # no total: a pulsing bar

    def show(self, state: TaskState) -> None:
        self.updates += 1
        note = f" - {state.status_message}" if state.status_message else ""
        self.bar.update(self.row, description=f"{self.tool}: {state.status}{note}")
        if state.progress is not None:
            done, total = state.progress
            self.bar.update(self.row, completed=done, total=total)


async def follow(task: TaskHandle, display: Display, poll: bool) -> TaskState:
    """Show each change (pushed, or polled at the server's interval) until the task ends."""
    final: TaskState | None = None
    async for state in task.follow(push=not poll):
        display.show(state)
        final = state
    assert final is not None
    return final


def server_over_stdio() -> StdioTransport:
    """``python server.py``: stdio, in-process worker; MCP_TASKS_* settings are passed on."""
    env = {k: v for k, v in os.environ.items() if k.startswith("MCP_TASKS_")}
    quiet = {"FASTMCP_SHOW_SERVER_BANNER": "false", "FASTMCP_LOG_LEVEL": "WARNING"}
    return StdioTransport(
        sys.executable, [str(SERVER)], env={**quiet, **env}, cwd=str(SERVER.parent)
    )


async def main(
    tool: str, arguments: dict[str, Any], url: str | None, poll: bool, legacy: bool
) -> int:
    interrupted = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, interrupted.set)
    tasks = TasksClient()
    mode = "legacy" if legacy else "auto"
    async with tasks.connect(url or server_over_stdio(), mode=mode) as client:
        task = await tasks.call_tool(client, tool, arguments)
        console.print(f"task {task.task_id} created ({client.protocol_version}); Ctrl-C cancels it")
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as bar:
            display = Display(bar, tool)
            following = asyncio.create_task(follow(task, display, poll))
            waiting = asyncio.create_task(interrupted.wait())
            await asyncio.wait([following, waiting], return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            if interrupted.is_set() and not following.done():
                bar.console.print("cancelling: tasks/cancel")
                await task.cancel()  # only an ack: the task's own status tells how it ended
            final = await following
    how = "polled" if poll else "pushed"
    numbers = (
        f", progress {final.progress.progress:.0f}/{final.progress.total:.0f}"
        if (final.progress and final.progress.total)
        else ""
    )
    console.print(f"task {final.task_id} {final.status} ({display.updates} updates {how}{numbers})")
    if final.status == "completed" and final.result is not None:
        print(json.dumps(final.result.get("structuredContent", final.result.get("content"))))
        return 1 if final.result.get("isError") else 0
    if final.status == "failed":
        console.print(f"error: {final.error or final.status_message}")
    return 130 if final.status == "cancelled" else 1


def cli() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("tool", nargs="?", default="count_primes")
    parser.add_argument("arguments", nargs="?", default='{"below": 3000000}', help="JSON object")
    parser.add_argument("--url", help="streamable HTTP endpoint (default: spawn server.py)")
    parser.add_argument("--poll", action="store_true", help="poll tasks/get instead of listening")
    parser.add_argument("--legacy", action="store_true", help="speak protocol 2025-11-25")
    args = parser.parse_args()
    arguments = json.loads(args.arguments)
    sys.exit(asyncio.run(main(args.tool, arguments, args.url, args.poll, args.legacy)))


if __name__ == "__main__":
    cli()
