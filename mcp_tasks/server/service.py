"""The task service: what both dialects do with tasks, on top of the docket.

Create a task for a tool call (size cap, quota, ttl, owner, list), load a caller's task
(visibility), and derive the dialect-independent :class:`TaskView` of a docket state. The
handlers, the push paths and the request gate all go through it; it knows nothing of
requests or dialects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import BaseModel, ValidationError

from ..engine import Docket, ExecutionState, QuotaExceeded, Status
from ..engine.serialization import to_json_text
from ..protocol.view import TaskStatus, TaskView
from .config import PollPlan, TasksConfig
from .errors import LIMIT_REACHED, unknown_task
from .runner import TOOL_FUNCTION, caller_snapshot


class TaskMeta(BaseModel):
    """What a task of this extension carries in the docket's meta besides its call."""

    tool: str = ""
    owner: str | None = None
    ttl: int | None = None
    poll: int | None = None
    """The fixed ``pollInterval``, or with ``adapt`` the cap of the adaptive one."""
    adapt: bool = False


class TaskService:
    def __init__(self, docket: Docket, config: TasksConfig) -> None:
        self.docket = docket
        self.config = config

    async def create(
        self,
        tool: str,
        arguments: dict[str, Any],
        *,
        ttl_ms: int,
        owner: str | None,
        listing: str | None = None,
        poll: PollPlan | None = None,
    ) -> TaskView:
        """Put a tool call on the docket; when this returns, tasks/get finds the task."""
        poll = poll or PollPlan(self.config.poll_interval_ms, adaptive=True)
        size = len(to_json_text(arguments).encode())
        if size > self.config.max_argument_bytes:
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"Task arguments are too large: {size} bytes "
                f"(the maximum is {self.config.max_argument_bytes})",
            )
        meta = TaskMeta(tool=tool, owner=owner, ttl=ttl_ms, poll=poll.ms, adapt=poll.adaptive)
        try:
            execution = await self.docket.add(
                TOOL_FUNCTION,
                ttl=ttl_ms / 1000,
                index=listing,
                meta=meta.model_dump(),
                quota=self.config.quota_for(owner or listing),
                label=tool,
            )(tool, arguments, caller_snapshot())
        except QuotaExceeded as exc:
            data: dict[str, Any] = {"reason": exc.reason, "limit": exc.limit}
            if exc.retry_after is not None:
                data["retryAfterSeconds"] = exc.retry_after
            message = f"Task limit reached: {exc}"
            raise MCPError(code=LIMIT_REACHED, message=message, data=data) from None

        now = execution.added_at  # exactly the createdAt tasks/get will report
        return TaskView(
            task_id=execution.key,
            status="working",
            status_message=None,
            created_at=now,
            last_updated_at=now,
            ttl_ms=ttl_ms,
            poll_interval_ms=poll.suggested(0),
            result=None,
            error=None,
            owner=owner,
            tool=tool,
        )

    async def load(self, task_id: str, owner: str | None) -> TaskView:
        """The caller's task, or -32602 exactly as for an id that never existed."""
        state = await self.docket.get(task_id)
        view = view_of(state) if state is not None else None
        if view is None or not visible(view, owner):
            raise unknown_task(task_id)
        return view


def visible(view: TaskView, owner: str | None) -> bool:
    """A caller sees its own tasks only (and only tasks made by this extension)."""
    return bool(view.tool) and view.owner == owner


def view_of(state: ExecutionState) -> TaskView:
    """A docket state as an MCP task: status, status message, times and stored result."""
    try:
        meta = TaskMeta.model_validate(state.meta or {})
    except ValidationError:  # not a task of this extension (another docket function's)
        meta = TaskMeta()
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
    done, total = _progress(state)
    return TaskView(
        task_id=state.key,
        status=status,
        status_message=message,
        created_at=state.created_at,
        last_updated_at=state.updated_at,
        ttl_ms=meta.ttl,
        poll_interval_ms=_poll_ms(meta, state),
        result=result,
        error=error,
        owner=meta.owner,
        tool=meta.tool,
        input_requests=dict(state.questions) or None,
        progress=done,
        progress_total=total,
    )


def _progress(state: ExecutionState) -> tuple[float | None, float | None]:
    """The numbers last reported; a completed task's read its total (its last report, say 9
    of 10, was made before the last step), so a client's bar ends full."""
    if state.progress is None:
        return None, None
    total = state.progress.total
    if state.status is Status.COMPLETED and total is not None:
        return total, total
    return state.progress.current, total


def _poll_ms(meta: TaskMeta, state: ExecutionState) -> int | None:
    """The ``pollInterval`` to suggest now: fixed, or adapted to how long the task has run."""
    if meta.poll is None or not meta.adapt:
        return meta.poll
    age_ms = (datetime.now(UTC) - state.created_at).total_seconds() * 1000
    return PollPlan(meta.poll, adaptive=True).suggested(age_ms)


def _first_text(result: dict[str, Any]) -> str | None:
    for block in result.get("content") or []:
        if isinstance(block, dict) and block.get("type") == "text":
            return str(block.get("text", ""))
    return None
