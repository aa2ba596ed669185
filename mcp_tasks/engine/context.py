"""The running task's view of itself, reachable from anywhere in its call stack."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .docket import Docket


@dataclass
class TaskContext:
    """Handed to a running task through :func:`current_task`.

    ``cancel_requested`` turns true as soon as a cancellation arrives; the worker also
    cancels the task's coroutine, so most tasks never need to look at it.
    """

    docket: Docket
    key: str
    attempt: int
    function: str
    cancel_requested: bool = field(default=False)
    errored: bool = field(default=False)
    """Set by :meth:`mark_errored`."""

    def mark_errored(self) -> None:
        """Say that the result this task returns reports an error (as MCP's ``isError``
        results do): it is stored and the task completes as usual, but the docket's
        statistics count the run as failed and its trace span is marked as an error."""
        self.errored = True

    async def report_progress(
        self, current: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Store progress and push it to everyone watching this task."""
        await self.docket.report_progress(self.key, current, total, message)

    async def ask(self, question: Any) -> Any:
        """Ask whoever follows this task a question (any JSON) and wait for the answer.

        The question shows in the task's state until :meth:`Docket.answer` answers it, from
        any process. Question ids are unique for the task's life (the attempt, then a
        counter kept on the task), and questions of an earlier attempt are not shown.
        """
        return await self.docket.ask(self.key, self.attempt, question)


running: ContextVar[TaskContext | None] = ContextVar("mcp_tasks_current_task", default=None)
"""The task running in this context, set by the worker around each run (None outside)."""


def current_task() -> TaskContext:
    """The task running in this context; a ``LookupError`` outside of a task."""
    ctx = running.get()
    if ctx is None:
        raise LookupError("current_task() is only available inside a running task")
    return ctx
