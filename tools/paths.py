"""Every path a tool touches is resolved inside one root directory, and checked."""

from __future__ import annotations

import os
from pathlib import Path

from fastmcp.exceptions import ToolError

ROOT_ENV = "MCP_TASKS_ROOT"


def root() -> Path:
    """The directory the file tools may read: ``MCP_TASKS_ROOT``, else the current one."""
    return Path(os.environ.get(ROOT_ENV) or os.getcwd()).resolve()


def inside_root(path: str) -> Path:
    """Resolve ``path`` (relative to the root, or absolute) and refuse anything outside it,
    symbolic links included."""
    base = root()
    candidate = (base / path).resolve()
    if candidate != base and base not in candidate.parents:
        raise ToolError(f"{path!r} is outside the allowed root {str(base)!r}")
    if not candidate.exists():
        raise ToolError(f"{path!r} does not exist")
    return candidate
