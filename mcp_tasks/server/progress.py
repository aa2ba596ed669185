"""fastmcp's ``Progress()`` dependency, made to report to the docket when run as a task.

fastmcp's own ``Progress`` dependency reaches Redis only through pydocket's execution
context; without pydocket a tool that runs as one of our tasks would count progress in
memory that nobody can see. ``mcp_tasks.Progress`` is a drop-in subclass: in a task it
stores every change on the docket (so ``tasks/get``, ``notifications/tasks`` and progress
notifications show it, from any replica); outside a task it behaves exactly like fastmcp's.
"""

from __future__ import annotations

from fastmcp.server.dependencies import Progress as FastMCPProgress

from .. import sdk
from ..engine import TaskContext
from ..engine.context import running


class DocketProgress:
    """fastmcp's ``ProgressLike`` interface over :meth:`TaskContext.report_progress`."""

    def __init__(self, task: TaskContext) -> None:
        self._task = task
        self._current: int | None = None
        self._total = 1
        self._message: str | None = None

    @property
    def current(self) -> int | None:
        return self._current

    @property
    def total(self) -> int:
        return self._total

    @property
    def message(self) -> str | None:
        return self._message

    async def set_total(self, total: int) -> None:
        if total < 1:
            raise ValueError("Total must be at least 1")
        self._total = total
        await self._report()

    async def increment(self, amount: int = 1) -> None:
        if amount < 1:
            raise ValueError("Amount must be at least 1")
        self._current = (self._current or 0) + amount
        await self._report()

    async def set_message(self, message: str | None) -> None:
        self._message = message
        await self._report()

    async def _report(self) -> None:
        await self._task.report_progress(self._current or 0, self._total, self._message)


class Progress(FastMCPProgress):
    """Use as ``progress: Progress = Progress()`` in a task tool's signature."""

    async def __aenter__(self) -> FastMCPProgress:
        task = running.get()
        if task is None:
            return await super().__aenter__()
        instance = Progress()
        sdk.set_progress_backend(instance, DocketProgress(task))
        return instance
