"""asyncio helpers the engine and the server share."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("mcp_tasks.engine")


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel a task and wait until it has ended, cancelling again if it has not.

    A single ``Task.cancel()`` can be lost: on Python 3.11 ``asyncio.wait_for`` drops a
    cancellation that races a completing future, and fakeredis (memory://) awaits that way on
    every command. Re-cancelling until the task is done makes stopping reliable.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.05)
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s ended with an error", task.get_name(), exc_info=task.exception())
