"""Protocol 2025-11-25 (SEP-1686) task messages, made with the ``mcp_types`` models.

In this dialect a tool result with ``isError: true`` makes the task ``failed``.
"""

from __future__ import annotations

import base64
from typing import Any

import mcp_types

from . import RELATED_TASK_META
from .view import TaskView, iso

CAPABILITIES: dict[str, Any] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}


def task(view: TaskView) -> mcp_types.Task:
    status = view.status
    if status == "completed" and view.is_tool_error:
        status = "failed"
    return mcp_types.Task(
        task_id=view.task_id,
        status=status,
        status_message=view.status_message,
        created_at=iso(view.created_at),
        last_updated_at=iso(view.last_updated_at),
        ttl=view.ttl_ms,
        poll_interval=view.poll_interval_ms,
    )


def dump(model: mcp_types.Task | mcp_types.Result) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def task_fields(view: TaskView) -> dict[str, Any]:
    """The Task fields: the result of tasks/get and tasks/cancel, the params of
    notifications/tasks/status (with the progress numbers in ``_meta``)."""
    fields = dump(task(view))
    if (meta := view.progress_meta()) is not None:
        fields["_meta"] = meta
    return fields


def create_result(view: TaskView) -> dict[str, Any]:
    """The nested ``{"task": {...}}`` answer to a task-augmented tools/call."""
    return {"task": task_fields(view)}


def list_result(views: list[TaskView], next_cursor: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"tasks": [task_fields(v) for v in views]}
    if next_cursor:
        out["nextCursor"] = next_cursor
    return out


def payload(view: TaskView) -> dict[str, Any]:
    """What tasks/result answers for a completed task: exactly the CallToolResult, with the
    related-task meta added."""
    result = dict(view.result or {"content": []})
    result.pop("resultType", None)  # a 2026-07-28 field; not what a 2025 call returns
    meta = dict(result.get("_meta") or {})
    meta[RELATED_TASK_META] = {"taskId": view.task_id}
    result["_meta"] = meta
    return result


def encode_cursor(created_ms: int, key: str) -> str:
    """tasks/list's opaque cursor: where a page ended (the creation time and key of its last
    task)."""
    return base64.urlsafe_b64encode(f"a:{created_ms}:{key}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, str]:
    """A cursor made by :func:`encode_cursor` back to ``(created_ms, key)``; anything else
    (forged, truncated, another server's) is a ``ValueError``."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeError) as exc:
        raise ValueError("not a cursor of this server") from exc
    prefix, _, rest = text.partition(":")
    number, _, key = rest.partition(":")
    # Only what encode_cursor makes: plain ASCII digits, short enough for Redis (< 2**63).
    if prefix != "a" or not (number.isascii() and number.isdigit()) or len(number) > 15:
        raise ValueError("not a cursor of this server")
    if not key:
        raise ValueError("not a cursor of this server")
    return int(number), key
