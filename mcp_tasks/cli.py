"""The ``mcp-tasks`` command line.

``mcp-tasks worker server.py`` runs extra workers for a server: it loads the file the way
``fastmcp run`` does, and enters the server's lifespan with the ``Tasks`` extension forced to
run a worker — so the tools execute exactly as they would in the server process — but
serves no MCP transport.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import click

from .protocol import EXTENSION_ID


async def _load(server_spec: str) -> Any:
    from fastmcp.utilities.mcp_server_config.v1.sources.filesystem import FileSystemSource

    return await FileSystemSource(path=server_spec).load_server()


async def run_worker(
    server_spec: str, url: str | None, concurrency: int | None, ready: bool
) -> None:
    from .server import Tasks

    server = await _load(server_spec)
    tasks = server._extensions.get(EXTENSION_ID)
    if not isinstance(tasks, Tasks):
        raise click.ClickException(
            f"{server_spec} has no mcp_tasks.Tasks extension: add mcp.add_extension(Tasks())"
        )
    tasks.run_worker = True
    if url:
        tasks.url = url
    if concurrency:
        tasks.concurrency = concurrency
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server._lifespan_manager():
        logging.getLogger("mcp_tasks").info(
            "worker for %s on %s (docket %r)", server_spec, tasks.url, tasks.docket_name
        )
        if ready:
            click.echo("ready", nl=True)
        await stop.wait()


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
