"""Run one tool as a task and watch it to the end: protocol 2025-11-25 (SEP-1686).

    python examples/legacy_client.py                            # spawns server.py over stdio
    python examples/legacy_client.py --url http://127.0.0.1:8000/mcp
    python examples/legacy_client.py sleep '{"seconds": 10}'

A ``tools/call`` with ``task: {ttl}`` answers at once with the task. The server then pushes
``notifications/progress`` on the call's ``progressToken`` (the counting bar) and
``notifications/tasks/status`` on each status change, while ``tasks/result`` blocks until the
task has ended and returns what the call would have returned. Ctrl-C sends ``tasks/cancel``,
whose answer is the cancelled task. The bar and notes go to stderr, the result to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mcp_types
from fastmcp import Client
from fastmcp.client.messages import MessageHandler
from fastmcp.client.transports import StdioTransport
from mcp.client.extension import ClientExtension, NotificationBinding
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from mcp_tasks.client import raw_request

SERVER = Path(__file__).resolve().parents[1] / "server.py"
console = Console(stderr=True)


class LegacyTasks:
    """The 2025-11-25 task requests, on an open session."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def call(self, tool: str, arguments: dict[str, Any], token: str) -> mcp_types.Task:
        """A task-augmented ``tools/call``. mcp 2.3's ``ClientSession`` checks every
        ``tools/call`` answer against ``CallToolResult``, so this one goes out raw."""
        params = {"name": tool, "arguments": arguments, "task": {"ttl": 600_000}}
        params["_meta"] = {"progressToken": token}  # progress for the task's whole life
        created = await raw_request(self.session, "tools/call", params)
        return mcp_types.CreateTaskResult.model_validate(created).task

    async def result(self, task_id: str) -> mcp_types.CallToolResult:
        """``tasks/result``: waits for the end, then answers as the call would have."""
        params = mcp_types.GetTaskPayloadRequestParams(task_id=task_id)
        ask = mcp_types.GetTaskPayloadRequest(params=params)
        return await self.session.send_request(ask, mcp_types.CallToolResult)

    async def cancel(self, task_id: str) -> mcp_types.CancelTaskResult:
        request = mcp_types.CancelTaskRequest(
            params=mcp_types.CancelTaskRequestParams(task_id=task_id)
        )
        return await self.session.send_request(request, mcp_types.CancelTaskResult)

    async def get(self, task_id: str) -> mcp_types.GetTaskResult:
        request = mcp_types.GetTaskRequest(params=mcp_types.GetTaskRequestParams(task_id=task_id))
        return await self.session.send_request(request, mcp_types.GetTaskResult)


class Display(MessageHandler, ClientExtension):
    """Shows what the server pushes: progress moves the bar, a status change prints a line.
    ``notifications/tasks/status`` is not among mcp 2.3's core notifications, so it comes in
    through a client extension's notification binding."""

    identifier = "example.mcp-tasks/task-status"

    def __init__(self, bar: Progress, tool: str) -> None:
        super().__init__()
        self.bar, self.tool, self.progress, self.statuses = bar, tool, 0, 0
        self.row = bar.add_task(f"{tool}: working", total=None)

    async def on_progress(self, message: mcp_types.ProgressNotification) -> None:
        p = message.params
        self.progress += 1
        text = f"{self.tool}: {p.message or ''}"
        self.bar.update(self.row, completed=p.progress, total=p.total, description=text)

    def notifications(self) -> Sequence[NotificationBinding[Any]]:
        params = mcp_types.TaskStatusNotificationParams
        method = "notifications/tasks/status"
        return [NotificationBinding(method=method, params_type=params, handler=self.on_status)]

    async def on_status(self, task: mcp_types.TaskStatusNotificationParams) -> None:
        self.statuses += 1
        note = f" - {task.status_message}" if task.status_message else ""
        self.bar.console.print(f"status: {task.status}{note}")


def server_over_stdio() -> StdioTransport:
    """``python server.py``: stdio, in-process worker; MCP_TASKS_* settings are passed on."""
    env = {k: v for k, v in os.environ.items() if k.startswith("MCP_TASKS_")}
    quiet = {"FASTMCP_SHOW_SERVER_BANNER": "false", "FASTMCP_LOG_LEVEL": "WARNING"}
    return StdioTransport(
        sys.executable, [str(SERVER)], env={**quiet, **env}, cwd=str(SERVER.parent)
    )


async def main(tool: str, arguments: dict[str, Any], url: str | None) -> int:
    interrupted = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, interrupted.set)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        show = Display(bar, tool)
        target = url or server_over_stdio()
        async with Client(target, mode="legacy", message_handler=show, extensions=[show]) as client:
            tasks = LegacyTasks(client.session)
            task = await tasks.call(tool, arguments, token=uuid.uuid4().hex)
            bar.console.print(
                f"task {task.task_id} created ({client.protocol_version}); Ctrl-C cancels it"
            )
            result = asyncio.create_task(tasks.result(task.task_id))
            waiting = asyncio.create_task(interrupted.wait())
            await asyncio.wait([result, waiting], return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            if interrupted.is_set() and not result.done():
                cancelled = await tasks.cancel(task.task_id)
                bar.console.print(
                    f"tasks/cancel answered: task {cancelled.task_id} {cancelled.status}"
                )
            try:
                outcome: mcp_types.CallToolResult | MCPError = await result
            except MCPError as error:  # tasks/result of a cancelled task is an error
                outcome = error
            final = await tasks.get(task.task_id)
    pushed = f"{show.progress} progress and {show.statuses} status notifications"
    console.print(f"task {final.task_id} {final.status} ({pushed})")
    if isinstance(outcome, MCPError):
        console.print(f"tasks/result: error {outcome.code}: {outcome.message}")
    else:
        content = outcome.model_dump(mode="json", by_alias=True)["content"]
        print(json.dumps(outcome.structured_content or content))
    return {"completed": 0, "cancelled": 130}.get(final.status, 1)


def cli() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("tool", nargs="?", default="count_primes")
    parser.add_argument("arguments", nargs="?", default='{"below": 3000000}', help="JSON object")
    parser.add_argument("--url", help="streamable HTTP endpoint (default: spawn server.py)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.tool, json.loads(args.arguments), args.url)))


if __name__ == "__main__":
    cli()
