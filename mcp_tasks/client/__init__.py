"""A small task client on fastmcp's ``Client``: call a tool as a task and follow it.

It speaks the 2026-07-28 extension ``io.modelcontextprotocol/tasks`` (SEP-2663) to any server
that serves it, ours or another's::

    from fastmcp import Client
    from mcp_tasks.client import TasksClient

    tasks = TasksClient()
    async with Client(url, extensions=[tasks]) as client:
        task = await tasks.call_tool(client, "sleep", {"seconds": 5})
        async for state in task.follow():        # pushed (subscriptions/listen), else polled
            print(state.status, state.status_message)
        print(state.result)

``TasksClient`` opts the connection in, so a plain ``client.call_tool`` of a task tool also
works: the server answers with a task, which the extension resolves by polling to the tool's
ordinary result. ``tasks.call_tool`` returns the handle at once instead; ``tasks.handle(client,
task_id)`` makes one later from a task id, on another connection too (detach and resume).
The same calls work on a 2025-11-25 connection (SEP-1686): the task is created with
``params.task`` and a ``progressToken``; ``follow()`` waits on ``tasks/result`` (answered when
the task ends) while the server pushes ``notifications/tasks/status`` on each status change
and ``notifications/progress`` on the token; input is asked through the client's
``elicitation_handler`` while ``tasks/result`` waits. Progress notifications are core messages
that reach only a client's ``message_handler``: make the client with ``tasks.connect(target)``
(or pass ``message_handler=tasks.message_handler()``) to see the numbers as they move; without
it, the status changes are still pushed. ``state.progress`` gives the numbers in both dialects.
"""

from ..protocol.modern import ProgressNumbers, TaskState
from .raw import raw_request
from .task_handle import DEFAULT_POLL_SECONDS, ListenRefused, TaskHandle
from .tasks_client import TasksClient

__all__ = [
    "DEFAULT_POLL_SECONDS",
    "ListenRefused",
    "ProgressNumbers",
    "TaskHandle",
    "TaskState",
    "TasksClient",
    "raw_request",
]
