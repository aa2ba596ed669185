"""Unit tests of the wire shapes (``mcp_tasks.protocol``): no server, no Redis.

What each dialect makes of one dialect-independent task, checked against the official
schemas of its era, plus the tasks/list cursor and the request params.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from mcp_tasks.protocol import RELATED_TASK_META, TASK_VERSIONS, legacy, modern
from mcp_tasks.protocol.requests import GetTaskRequest, TaskIdParams, UpdateParams
from mcp_tasks.protocol.view import TaskView, iso
from tests.helpers.mcp import legacy_conforms, modern_conforms

CREATED = datetime(2026, 12, 2, 6, 0, 0, 123000, tzinfo=UTC)
ERROR_RESULT = {"content": [{"type": "text", "text": "boom"}], "isError": True}


def view(status: Any = "completed", **fields: Any) -> TaskView:
    values: dict[str, Any] = {
        "task_id": "f" * 32,
        "status": status,
        "status_message": None,
        "created_at": CREATED,
        "last_updated_at": CREATED,
        "ttl_ms": 60_000,
        "poll_interval_ms": 1000,
        "result": {"content": [{"type": "text", "text": "7"}], "structuredContent": {"r": 7}},
        "error": None,
        "owner": None,
        "tool": "count",
    }
    values.update(fields)
    return TaskView(**values)


def test_times_are_iso_utc_with_z() -> None:
    assert iso(CREATED) == "2026-12-02T06:00:00.123000Z"


def test_a_tool_error_fails_the_task_in_2025_and_completes_it_in_2026() -> None:
    errored = view(result=ERROR_RESULT, status_message="boom")
    old = legacy.task_fields(errored)
    legacy_conforms("GetTaskResult", old)
    assert old["status"] == "failed"
    new = modern.detailed(errored).wire()
    modern_conforms("GetTaskResult", {**new, "resultType": "complete"})
    assert new["status"] == "completed"
    assert new["result"] == {"resultType": "complete", **ERROR_RESULT}


def test_each_state_carries_exactly_its_own_detail_in_2026() -> None:
    failed = modern.detailed(view("failed", error={"code": -32603, "message": "x"})).wire()
    assert "result" not in failed and failed["error"]["code"] == -32603
    asking = modern.detailed(view("input_required", input_requests={"q": {}})).wire()
    assert asking["inputRequests"] == {"q": {}} and "result" not in asking
    working = modern.detailed(view("working")).wire()
    assert not {"result", "error", "inputRequests"} & set(working)
    assert working["ttlMs"] == 60_000


def test_create_results_have_each_dialects_shape() -> None:
    started = view("working", result=None)
    nested = legacy.create_result(started)
    legacy_conforms("CreateTaskResult", nested)
    assert nested["task"]["taskId"] == started.task_id
    flat = modern.create_result(started).wire()
    modern_conforms("CreateTaskResult", flat)
    assert flat["resultType"] == "task"


def test_tasks_result_is_the_call_result_with_related_task_meta() -> None:
    payload = legacy.payload(view(result={"content": [], "resultType": "complete"}))
    legacy_conforms("CallToolResult", payload)
    assert "resultType" not in payload
    assert payload["_meta"][RELATED_TASK_META] == {"taskId": "f" * 32}


@pytest.mark.parametrize("key", ["f" * 32, "k:with:colons", "x" * 256])
def test_the_list_cursor_round_trips(key: str) -> None:
    assert legacy.decode_cursor(legacy.encode_cursor(1_764_655_200_123, key)) == (
        1_764_655_200_123,
        key,
    )


@pytest.mark.parametrize(
    "forged", ["", "!!!", "YTox", "Yjox", "YTotMTox", "YTox" * 50, "YToxMjM0NTY3ODkwMTIzNDU2Om"]
)
def test_a_forged_cursor_is_refused(forged: str) -> None:
    with pytest.raises(ValueError):
        legacy.decode_cursor(forged)


def test_request_params_read_the_wire_names() -> None:
    assert TaskIdParams.model_validate({"taskId": "a"}).task_id == "a"
    update = UpdateParams.model_validate({"taskId": "a", "inputResponses": {"q": 1}})
    assert update.input_responses == {"q": 1}
    with pytest.raises(ValidationError):
        TaskIdParams.model_validate({"taskId": 7})
    request = GetTaskRequest(params=TaskIdParams(taskId="a"))
    assert request.name_param == "taskId"  # mirrored as Mcp-Name for load balancers
    assert request.model_dump(by_alias=True)["params"]["taskId"] == "a"


def test_only_2025_11_25_and_later_have_tasks() -> None:
    assert "2025-11-25" in TASK_VERSIONS and "2026-07-28" in TASK_VERSIONS
    assert "2025-06-18" not in TASK_VERSIONS
