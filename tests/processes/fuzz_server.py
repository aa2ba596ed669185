"""The server the wire fuzzer drives (``fastmcp run tests/processes/fuzz_server.py``, HTTP
or stdio).

Task tools that finish at once (``quick``, ``echo``), one that waits (``gated``, 30 s unless
told), one that asks for input (``confirm``), one that raises (``broken``), a task-only one
(``only_task``) and a plain one (``plain``). The docket comes from ``MCP_TASKS_URL`` and
``MCP_TASKS_NAME``. With ``FUZZ_AUTH=1`` callers need a bearer token: ``alice-token`` or
``bob-token`` (two principals of two client apps).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from fastmcp import Context, FastMCP
from fastmcp.utilities.tasks import TaskConfig

from mcp_tasks import Tasks

TOKENS = {
    "alice-token": {"client_id": "app-one", "sub": "alice", "scopes": []},
    "bob-token": {"client_id": "app-two", "sub": "bob", "scopes": []},
}

auth: Any = None
if os.environ.get("FUZZ_AUTH") == "1":
    from fastmcp.server.auth import StaticTokenVerifier

    auth = StaticTokenVerifier(TOKENS)

mcp = FastMCP("fuzz", auth=auth)
# Slow and waiting tasks pile up while fuzzing: enough worker slots that a quick task never
# queues behind them.
mcp.add_extension(Tasks(concurrency=500))


@mcp.tool(task=True)
async def quick() -> str:
    return "done"


@mcp.tool(task=True)
async def echo(value: Any = None) -> str:
    """Finishes at once; says how deep and how long what it got was."""
    depth = 0
    while isinstance(value, dict | list) and value:
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
        depth += 1
    return f"depth {depth}, {len(value) if isinstance(value, str) else 0} chars"


@mcp.tool(task=True)
async def gated(ctx: Context, seconds: float = 30) -> str:
    await ctx.report_progress(0, 1, "waiting")
    await asyncio.sleep(min(max(seconds, 0), 3600))
    return "through"


@mcp.tool(task=True)
async def confirm(path: str, ctx: Context) -> str:
    answer = await ctx.elicit(f"Delete {path}?", bool)
    return f"deleted {path}" if answer.action == "accept" and answer.data else f"kept {path}"


@mcp.tool(task=True)
async def broken() -> str:
    raise ValueError("it broke")


@mcp.tool(task=TaskConfig(mode="required"))
async def only_task() -> str:
    return "task"


@mcp.tool
def plain() -> str:
    return "plain"


if __name__ == "__main__":
    mcp.run()
