"""Errors the docket raises to its callers."""


class DocketError(Exception):
    """Base class of the docket's own errors."""


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
