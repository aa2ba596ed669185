"""JSON-RPC errors of the task requests, and the one translation of engine errors into them.

A leaf module: every handler raises through these helpers, and :func:`translated` is the one
place an engine or store exception becomes a JSON-RPC error, so none reaches the wire as the
SDK's code 0 with an internal message (a Redis host and port, a key name).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS
from redis.exceptions import RedisError

from ..engine import ReplicasBehind, TaskNotFound
from ..engine.codec import CipherError
from ..protocol import EXTENSION_ID, MISSING_CAPABILITY

LIMIT_REACHED = -32000
"""JSON-RPC error for a task refused by a per-caller limit (an implementation-defined server
error; neither task dialect defines one). ``data`` says which limit and when to retry."""
STORE_UNAVAILABLE = "The task store is unavailable right now; try again shortly"
NOT_CONFIRMED = (
    "The task store's replicas did not confirm this change in time (min_replicas); "
    "try again shortly"
)
STORE_ERRORS: tuple[type[BaseException], ...] = (RedisError,)
"""What the docket raises when Redis is unreachable, loading or failing (redis-py wraps
socket errors in its own ConnectionError and TimeoutError)."""
log = logging.getLogger("mcp_tasks.server")


def shown(value: str, limit: int = 80) -> str:
    """A caller-supplied string as error messages quote it: shortened, so a 100 kB id does
    not come back as a 100 kB error, and repr'd, so control characters (and lone surrogates,
    which JSON could not encode) stay visible."""
    text = value if value.isprintable() else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unknown_task(task_id: str) -> MCPError:
    """-32602 for a task the caller may not see: the same for one that never existed, one
    that expired and another caller's."""
    return MCPError(code=INVALID_PARAMS, message=f"Unknown task: {shown(task_id)}")


def missing_capability(message: str) -> MCPError:
    """-32021: a 2026-07-28 caller that did not opt in to the tasks extension."""
    return MCPError(
        code=MISSING_CAPABILITY,
        message=message,
        data={"requiredCapabilities": {"extensions": {EXTENSION_ID: {}}}},
    )


@contextlib.contextmanager
def translated(method: str) -> Iterator[None]:
    """Run a task request, answering engine and store failures as JSON-RPC errors."""
    try:
        yield
    except STORE_ERRORS as exc:
        # Unhandled, the SDK would send the exception's text (Redis host and port
        # included) as error code 0, and log a traceback per request during an outage.
        log.warning("%s: the task store is unavailable (%s)", method, type(exc).__name__)
        raise MCPError(code=INTERNAL_ERROR, message=STORE_UNAVAILABLE) from None
    except ReplicasBehind as exc:
        # A new task was withdrawn; a cancel or answer stands on the primary, unconfirmed.
        log.warning("%s: %s", method, exc)
        raise MCPError(code=INTERNAL_ERROR, message=NOT_CONFIRMED) from None
    except CipherError as exc:
        raise MCPError(code=INTERNAL_ERROR, message=str(exc)) from None
    except TaskNotFound as exc:
        # A task that expired while its request was being handled answers like an
        # unknown one; an engine exception never reaches the wire as code 0.
        raise unknown_task(str(exc.args[0]) if exc.args else "") from None
