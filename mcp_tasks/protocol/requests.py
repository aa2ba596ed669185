"""The params of the tasks/* requests, as both ends read and write them.

The server validates incoming requests with these; the client half (``mcp_tasks.client``)
sends its 2026-07-28 requests in the envelopes below, which carry ``Mcp-Name`` (the task id)
for load balancers, as SEP-2663 asks.
"""

from __future__ import annotations

from typing import Any, Literal

import mcp_types
from pydantic import ConfigDict, Field


class TaskIdParams(mcp_types.RequestParams):
    """``tasks/get``, ``tasks/cancel``, ``tasks/result``: one task by id."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")
    task_id: str = Field(alias="taskId")


class UpdateParams(TaskIdParams):
    """``tasks/update`` (2026-07-28): answers to open input requests, by request id."""

    input_responses: dict[str, Any] = Field(default_factory=dict, alias="inputResponses")


class ListParams(mcp_types.RequestParams):
    """``tasks/list`` (2025-11-25)."""

    model_config = ConfigDict(extra="allow")
    cursor: str | None = None


class GetTaskRequest(mcp_types.Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskIdParams
    name_param = "taskId"


class CancelTaskRequest(mcp_types.Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: TaskIdParams
    name_param = "taskId"


class UpdateTaskRequest(mcp_types.Request[UpdateParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    params: UpdateParams
    name_param = "taskId"
