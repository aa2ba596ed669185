"""A task as both dialects see it: the dialect-independent fields every wire shape is made of.

The server derives it from the docket's state (``server/service.py``, ``view_of``); the
dialect modules render it. Nothing here knows where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

PROGRESS_META = "io.github.mcp-tasks/progress"
"""The ``_meta`` key of a task's progress numbers in ``tasks/get`` and the status
notifications of both dialects (``mcp_tasks.client`` reads it as ``TaskState.progress``)."""

TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]


@dataclass(frozen=True)
class TaskView:
    task_id: str
    status: TaskStatus
    status_message: str | None
    created_at: datetime
    last_updated_at: datetime
    ttl_ms: int | None
    poll_interval_ms: int | None
    result: dict[str, Any] | None
    """The CallToolResult (wire dict) of a completed task, ``isError`` results included."""
    error: dict[str, Any] | None
    """A JSON-RPC error object, for a task whose run failed outside the tool itself."""
    owner: str | None
    tool: str
    input_requests: dict[str, Any] | None = None
    """Open input requests (e.g. ``elicitation/create``) of an ``input_required`` task."""
    progress: float | None = None
    """How far the work got (``progress_total`` at the end of a completed task that knew its
    total), as the tool last reported it; None before its first report."""
    progress_total: float | None = None

    def progress_meta(self) -> dict[str, Any] | None:
        """The ``_meta`` entry both dialects carry the numbers in (neither task shape has a
        field for them): the ``progress``/``total`` of ``notifications/progress``."""
        if self.progress is None:
            return None
        numbers: dict[str, Any] = {"progress": self.progress}
        if self.progress_total is not None:
            numbers["total"] = self.progress_total
        return {PROGRESS_META: numbers}

    @property
    def is_tool_error(self) -> bool:
        return bool(self.result and self.result.get("isError"))


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
