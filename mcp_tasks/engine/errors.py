"""Errors the docket raises to its callers."""

from typing import Any


class DocketError(Exception):
    """Base class of the docket's own errors."""


class DocketClosed(DocketError, RuntimeError):
    """The docket is not open (never opened, or closed): use ``async with Docket(...)``."""


class SerializationError(DocketError, TypeError):
    """Arguments or a result could not be encoded as JSON."""


class UnknownFunction(DocketError, KeyError):
    """A task names a function that is not registered on this docket."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown function"


class TaskNotFound(DocketError, KeyError):
    """No task with that key exists (it never did, or its state expired)."""

    def __str__(self) -> str:
        return f"no task with key {self.args[0]!r}" if self.args else "task not found"


class QuotaExceeded(DocketError):
    """A task was refused because its quota (:class:`~.functions.Quota`) is used up.

    ``reason`` is ``"unfinished"`` (too many of the tag's tasks have not finished yet) or
    ``"rate"`` (too many were added in the current window; ``retry_after`` says when the
    window ends, in seconds).
    """

    def __init__(self, tag: str, reason: str, limit: int, retry_after: float | None) -> None:
        self.tag, self.reason, self.limit, self.retry_after = tag, reason, limit, retry_after
        if reason == "rate":
            wait = f"; try again in {retry_after:.1f}s" if retry_after is not None else ""
            text = f"at most {limit} tasks may be created per window{wait}"
        else:
            text = f"at most {limit} unfinished tasks are allowed at a time"
        super().__init__(text)


class ReplicasBehind(DocketError):
    """A state change was not confirmed by enough replicas in time (``min_replicas``).

    The change is on the primary, which may still fail before any replica has it; the
    docket never hands out a task it could not confirm (see :class:`~.docket.Docket`).
    """

    def __init__(self, wanted: int, confirmed: int, timeout: float, answer: Any = None) -> None:
        self.wanted, self.confirmed, self.timeout = wanted, confirmed, timeout
        self.answer = answer
        """What the script answered on the primary."""
        super().__init__(
            f"only {confirmed} of the {wanted} Redis replica(s) required confirmed the change "
            f"within {timeout:g}s"
        )
