"""mcp-tasks: MCP tools that run as tasks on a Redis Streams docket.

``from mcp_tasks import Tasks`` is the fastmcp extension; the engine alone is
``mcp_tasks.engine`` and does not import fastmcp.
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .server import Tasks
    from .server.progress import Progress


def __getattr__(name: str) -> Any:
    if name == "Tasks":
        from .server import Tasks

        return Tasks
    if name == "Progress":
        from .server.progress import Progress

        return Progress
    raise AttributeError(name)


__all__ = ["Progress", "Tasks"]
