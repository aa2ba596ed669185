"""The docket engine: a task queue on Redis Streams and consumer groups.

It knows nothing of MCP. ``memory://`` runs the same code on an in-process fakeredis store.
"""

from .context import TaskContext, current_task
from .docket import Docket, Execution, IndexPosition, new_task_key
from .errors import (
    DocketClosed,
    DocketError,
    QuotaExceeded,
    ReplicasBehind,
    SerializationError,
    TaskNotFound,
    UnknownFunction,
)
from .functions import ConcurrencyLimit, Perpetual, Quota, Retry, TaskFunction
from .state import ExecutionState, Status, TaskError, TaskProgress
from .worker import Worker

__all__ = [
    "ConcurrencyLimit",
    "Docket",
    "DocketClosed",
    "DocketError",
    "Execution",
    "ExecutionState",
    "IndexPosition",
    "Perpetual",
    "Quota",
    "QuotaExceeded",
    "ReplicasBehind",
    "Retry",
    "SerializationError",
    "Status",
    "TaskContext",
    "TaskError",
    "TaskFunction",
    "TaskNotFound",
    "TaskProgress",
    "UnknownFunction",
    "Worker",
    "current_task",
    "new_task_key",
]
