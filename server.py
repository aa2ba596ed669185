"""The shipped mcp-tasks server: ``fastmcp run server.py``.

Every tool in ``tools/`` runs as a task: on memory:// with an in-process worker by default;
set ``MCP_TASKS_URL=redis://...`` to share tasks with other replicas and with
``mcp-tasks worker server.py`` processes. File tools stay inside ``MCP_TASKS_ROOT`` (default:
the directory the server starts in).

Over HTTP it validates ``Host`` and ``Origin`` (DNS rebinding; the 2025-11-25 transport spec's
MUST), which fastmcp ships off: a request from another origin is refused with 403. Allow a
deployment's own names with ``FASTMCP_HTTP_ALLOWED_HOSTS`` / ``FASTMCP_HTTP_ALLOWED_ORIGINS``
(JSON lists), or set ``FASTMCP_HTTP_HOST_ORIGIN_PROTECTION`` to choose fastmcp's own mode.
"""

from __future__ import annotations

import fastmcp
from fastmcp import FastMCP

import tools
from mcp_tasks import Tasks, __version__

if "http_host_origin_protection" not in fastmcp.settings.model_fields_set:  # env or .env
    fastmcp.settings.http_host_origin_protection = True  # every request, whatever the bind

mcp = FastMCP("mcp-tasks", version=__version__)  # serverInfo.version: ours, not fastmcp's
mcp.add_extension(Tasks())
tools.register(mcp)

if __name__ == "__main__":
    mcp.run()
