"""Protocol 2026-07-28, extension ``io.modelcontextprotocol/tasks`` (SEP-2663) messages.

In this dialect a tool result with ``isError: true`` completes the task with that result;
``failed`` is only for JSON-RPC errors. The models follow the extension's draft schema.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import mcp_types
from pydantic import BaseModel, ConfigDict, Field

from .view import PROGRESS_META, TaskStatus, TaskView, iso


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class Task(_Wire):
    task_id: str = Field(alias="taskId")
    status: TaskStatus
    status_message: str | None = Field(default=None, alias="statusMessage")
    created_at: str = Field(alias="createdAt")
    last_updated_at: str = Field(alias="lastUpdatedAt")
    ttl_ms: int | None = Field(alias="ttlMs")
    poll_interval_ms: int | None = Field(default=None, alias="pollIntervalMs")

    def wire(self) -> dict[str, Any]:
        out = super().wire()
        out.setdefault("ttlMs", None)  # required, and null means "unlimited"
        return out


class CreateTaskResult(Task):
    result_type: Literal["task"] = Field(default="task", alias="resultType")


class DetailedTask(Task):
    """tasks/get's answer and notifications/tasks' params."""

    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] | None = Field(default=None, alias="inputRequests")
    meta: dict[str, Any] | None = Field(default=None, alias="_meta")
    """The progress numbers (``PROGRESS_META``), which the extension has no field for."""


def _base(view: TaskView) -> dict[str, Any]:
    return {
        "task_id": view.task_id,
        "status": view.status,
        "status_message": view.status_message,
        "created_at": iso(view.created_at),
        "last_updated_at": iso(view.last_updated_at),
        "ttl_ms": view.ttl_ms,
        "poll_interval_ms": view.poll_interval_ms,
    }


def create_result(view: TaskView) -> CreateTaskResult:
    return CreateTaskResult(**_base(view))


def detailed(view: TaskView) -> DetailedTask:
    result = None
    if view.status == "completed" and view.result is not None:
        # A CallToolResult of this protocol requires resultType; records stored before it
        # was written lack it.
        result = {"resultType": "complete", **view.result}
    return DetailedTask(
        **_base(view),
        result=result,
        error=view.error if view.status == "failed" else None,
        inputRequests=view.input_requests if view.status == "input_required" else None,
        _meta=view.progress_meta(),
    )


class TasksNotification(mcp_types.Notification[dict[str, Any], Literal["notifications/tasks"]]):
    """``notifications/tasks``: a DetailedTask pushed to a ``subscriptions/listen`` stream."""

    method: Literal["notifications/tasks"] = "notifications/tasks"
    params: dict[str, Any]


TERMINAL = frozenset({"completed", "failed", "cancelled"})


class TaskState(mcp_types.Result):
    """A DetailedTask as a client reads it (``tasks/get``, ``notifications/tasks``)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    task_id: str = Field(alias="taskId")
    status: str
    status_message: str | None = Field(default=None, alias="statusMessage")
    poll_interval_ms: int | None = Field(default=None, alias="pollIntervalMs")
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] | None = Field(default=None, alias="inputRequests")

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def progress(self) -> ProgressNumbers | None:
        """How far the work got, if the tool reports numbers (mcp-tasks servers send them in
        ``_meta`` in both dialects; a completed task's reads its total)."""
        numbers = (self.meta or {}).get(PROGRESS_META)
        if not isinstance(numbers, dict) or not isinstance(numbers.get("progress"), int | float):
            return None
        total = numbers.get("total")
        known = total if isinstance(total, int | float) else None
        return ProgressNumbers(numbers["progress"], known)


class ProgressNumbers(NamedTuple):
    """``progress`` of ``total`` (None when the tool does not know it), as a progress bar
    takes them."""

    progress: float
    total: float | None


class CreatedTask(mcp_types.Result):
    """A ``tools/call`` answered with a task, as a client reads it (the claimed result)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    result_type: Literal["task"] = Field(default="task", alias="resultType")
    task_id: str = Field(alias="taskId")
    status: str
    poll_interval_ms: int | None = Field(default=None, alias="pollIntervalMs")


class Ack(mcp_types.Result):
    """The empty answer of ``tasks/cancel`` and ``tasks/update``."""

    model_config = ConfigDict(extra="allow")
