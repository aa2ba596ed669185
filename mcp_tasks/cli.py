"""The ``mcp-tasks`` command line.

``status``, ``get``, ``cancel`` and ``purge`` talk to a docket directly (``--url``, ``--name``,
or ``MCP_TASKS_URL`` / ``MCP_TASKS_NAME``); every read command takes ``--json``.

``mcp-tasks worker server.py`` runs extra workers for a server: it loads the file the way
``fastmcp run`` does, and enters the server's lifespan with the ``Tasks`` extension forced to
run a worker — so the tools execute exactly as they would in the server process — but
serves no MCP transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from .engine import Docket, ExecutionState, TaskNotFound
from .engine.codec import new_encryption_key
from .engine.connection import CONNECTION_ERRORS
from .engine.inspection import DocketSnapshot, purge, redact, snapshot
from .protocol import EXTENSION_ID


async def _load(server_spec: str) -> Any:
    from fastmcp.utilities.mcp_server_config.v1.sources.filesystem import FileSystemSource

    return await FileSystemSource(path=server_spec).load_server()


async def run_worker(
    server_spec: str, url: str | None, concurrency: int | None, ready: bool
) -> None:
    from . import sdk
    from .server import Tasks

    server = await _load(server_spec)
    tasks = sdk.registered_extension(server, EXTENSION_ID)
    if not isinstance(tasks, Tasks):
        raise click.ClickException(
            f"{server_spec} has no mcp_tasks.Tasks extension: add mcp.add_extension(Tasks())"
        )
    tasks.config.run_worker = True
    if url:
        tasks.config.url = url
    if concurrency:
        tasks.config.concurrency = concurrency
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        config = tasks.config
        await _enter_when_reachable(stack, server, config.url)
        where = f"{server_spec} on {redact(config.url)} (docket {config.docket_name!r})"
        click.echo(f"mcp-tasks worker ready: {where}, concurrency {config.concurrency}", err=True)
        if ready:
            click.echo("ready", nl=True)
        await stop.wait()
    click.echo(f"mcp-tasks worker stopped: {where}", err=True)


async def _enter_when_reachable(stack: contextlib.AsyncExitStack, server: Any, url: str) -> None:
    """Enter the server's lifespan, waiting (with backoff) while Redis is unreachable.

    A worker started during a Redis outage (a restart, a failover, a fleet coming up before
    its Redis) waits for it like a running worker does, instead of exiting with a traceback.
    A failed entry leaves nothing behind, so it is simply tried again.
    """
    from redis.exceptions import BusyLoadingError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from . import sdk

    # Not every OSError: a lifespan's missing file must still fail at once, not "wait".
    waitable = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, ConnectionError)
    delay, warned = 0.05, False
    while True:
        try:
            await stack.enter_async_context(sdk.server_lifespan(server))
        except waitable as exc:
            if not warned:
                logging.getLogger("mcp_tasks").warning(
                    "worker: Redis at %s unreachable (%s); waiting for it", url, exc
                )
                warned = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            continue
        if warned:
            logging.getLogger("mcp_tasks").warning("worker: Redis reachable; starting")
        return


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """mcp-tasks: run MCP tools as tasks on a Redis Streams docket."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
@click.argument("server")
@click.option("--url", envvar="MCP_TASKS_URL", help="Docket URL (default: the server's).")
@click.option("--concurrency", type=int, help="Tasks this worker runs at once.")
@click.option("--ready", is_flag=True, help="Print 'ready' once the worker claims tasks.")
def worker(server: str, url: str | None, concurrency: int | None, ready: bool) -> None:
    """Run workers for SERVER (a file like server.py, or server.py:mcp) until SIGTERM."""
    if url and url.startswith("memory://"):
        raise click.BadParameter(
            "a separate worker process needs a shared redis:// URL", param_hint="--url"
        )
    asyncio.run(run_worker(server, url, concurrency, ready))


T = TypeVar("T")

url_option = click.option(
    "--url", envvar="MCP_TASKS_URL", default="memory://", show_default=True, help="Docket URL."
)
name_option = click.option(
    "--name", envvar="MCP_TASKS_NAME", default="mcp-tasks", show_default=True, help="Docket name."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


MEMORY_NOTE = (
    "note: memory:// is this command's own, empty, in-process store; a server on memory:// "
    "keeps its tasks inside its own process. To inspect a server's tasks, run it and this "
    "command on one Redis: MCP_TASKS_URL=redis://127.0.0.1:6379/0"
)


def _with_docket(url: str, name: str, action: Callable[[Docket], Awaitable[T]]) -> T:
    if url.startswith("memory://"):
        click.echo(MEMORY_NOTE, err=True)

    async def run() -> T:
        try:
            async with Docket(name=name, url=url) as docket:
                return await action(docket)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        except CONNECTION_ERRORS as exc:
            raise click.ClickException(f"cannot reach {url}: {exc}") from None

    return asyncio.run(run())


@main.command()
@url_option
@name_option
@json_option
def status(url: str, name: str, as_json: bool) -> None:
    """Queue depth, scheduled and running tasks, workers, and tasks per tool."""
    snap = _with_docket(url, name, snapshot)
    if as_json:
        click.echo(snap.model_dump_json(indent=2))
        return
    _print_status(snap)


def _print_status(snap: DocketSnapshot) -> None:
    console = Console()
    console.print(
        f"[bold]{snap.name}[/] on {snap.url}: [cyan]{snap.queued}[/] queued, "
        f"[yellow]{snap.running}[/] running, [magenta]{snap.scheduled}[/] scheduled"
    )
    workers = Table("worker", "running", "idle", title="workers")
    for worker in snap.workers:
        workers.add_row(worker.name, str(worker.running), f"{worker.idle_ms / 1000:.1f}s")
    console.print(workers)
    tools = Table("tool / function", "queued", "running", "scheduled", title="active tasks")
    for label, counts in snap.by_function.items():
        tools.add_row(label, *(str(counts.get(s, 0)) for s in ("queued", "running", "scheduled")))
    console.print(tools)


@main.command()
@click.argument("task_id")
@url_option
@name_option
@json_option
def get(task_id: str, url: str, name: str, as_json: bool) -> None:
    """Show one task: status, attempt, worker, progress, result or error."""

    async def read(docket: Docket) -> ExecutionState | None:
        return await docket.get(task_id)

    state = _with_docket(url, name, read)
    if state is None:
        raise click.ClickException(f"no task {task_id!r} (never created, or expired)")
    if as_json:
        click.echo(state.model_dump_json(indent=2))
        return
    table = Table(show_header=False, title=f"task {task_id}")
    for field, value in state.model_dump(mode="json").items():
        if value not in (None, {}, ""):
            table.add_row(
                field, json.dumps(value) if isinstance(value, dict | list) else str(value)
            )
    Console().print(table)


@main.command()
@click.argument("task_id")
@url_option
@name_option
def cancel(task_id: str, url: str, name: str) -> None:
    """Cancel a task: scheduled or queued never runs; a running one is stopped."""

    async def stop(docket: Docket) -> bool:
        try:
            return await docket.cancel(task_id)
        except TaskNotFound:
            raise click.ClickException(f"no task {task_id!r}") from None

    if _with_docket(url, name, stop):
        click.echo(f"cancelled {task_id}")
    else:
        click.echo(f"{task_id} had already finished")


@main.command("purge")
@url_option
@name_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge_command(url: str, name: str, yes: bool) -> None:
    """Delete every task, result and schedule of the docket."""
    if not yes:
        click.confirm(f"Delete everything in docket {name!r} at {url}?", abort=True)
    deleted = _with_docket(url, name, purge)
    click.echo(f"deleted {deleted} keys")


@main.command()
def keygen() -> None:
    """Print a new key for MCP_TASKS_ENCRYPTION_KEY (encryption of task data at rest)."""
    click.echo(new_encryption_key())
