"""A task as both dialects see it, derived from the docket's execution state.

Everything dialect-independent about mapping an engine execution to an MCP task lives here:
the status, the status message, the times and the stored tool result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..engine import ExecutionState, Status

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

    @classmethod
    def of(cls, state: ExecutionState) -> TaskView:
        meta = state.meta
        status: TaskStatus
        if state.status is Status.COMPLETED:
            status = "completed"
        elif state.status is Status.FAILED:
            status = "failed"
        elif state.status is Status.CANCELLED:
            status = "cancelled"
        elif state.questions:
            status = "input_required"
        else:
            status = "working"
        result = state.result if isinstance(state.result, dict) else None
        # Progress talks about the work in flight; once a task has ended it would be stale.
        message = state.progress.message if state.progress and not state.terminal else None
        error = None
        if state.status is Status.FAILED:
            reason = state.error.message if state.error else "the task failed"
            error = {"code": -32603, "message": reason}
            message = reason
        elif result is not None and result.get("isError"):
            message = _first_text(result) or "the tool reported an error"
        return cls(
            task_id=state.key,
            status=status,
            status_message=message,
            created_at=state.created_at,
            last_updated_at=state.updated_at,
            ttl_ms=meta.get("ttl"),
            poll_interval_ms=meta.get("poll"),
            result=result,
            error=error,
            owner=meta.get("owner"),
            tool=str(meta.get("tool", "")),
            input_requests=dict(state.questions) or None,
        )

    @property
    def is_tool_error(self) -> bool:
        return bool(self.result and self.result.get("isError"))


def _first_text(result: dict[str, Any]) -> str | None:
    for block in result.get("content") or []:
        if isinstance(block, dict) and block.get("type") == "text":
            return str(block.get("text", ""))
    return None


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
