"""The shipped mcp-tasks server: ``fastmcp run server.py``.

Every tool in ``tools/`` runs as a task: on memory:// with an in-process worker by default;
set ``MCP_TASKS_URL=redis://...`` to share tasks with other replicas and with
``mcp-tasks worker server.py`` processes. File tools stay inside ``MCP_TASKS_ROOT`` (default:
the directory the server starts in).
"""

from __future__ import annotations

from fastmcp import FastMCP

import tools
from mcp_tasks import Tasks

mcp = FastMCP("mcp-tasks")
mcp.add_extension(Tasks())
tools.register(mcp)

if __name__ == "__main__":
    mcp.run()
