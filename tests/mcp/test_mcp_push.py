"""Push in both dialects: status and progress notifications, and subscriptions/listen."""

from __future__ import annotations

import asyncio

import pytest
from fastmcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from tests.helpers.mcp import Harness, Recorder, legacy, legacy_conforms, modern, modern_conforms

pytestmark = pytest.mark.anyio


async def test_legacy_status_and_progress_notifications(harness: Harness) -> None:
    recorder = Recorder()
    extension = recorder.binding("notifications/tasks/status")
    async with Client(
        harness.mcp, mode="legacy", message_handler=recorder, extensions=[extension]
    ) as client:
        created = await legacy(
            client,
            "tools/call",
            {"name": "gated", "arguments": {}, "task": {}, "_meta": {"progressToken": "tok-1"}},
        )
        task_id = created["task"]["taskId"]
        await recorder.until(lambda: recorder.progress)
        assert recorder.progress[0] == ("tok-1", 0, "waiting for the gate")
        harness.release.set()
        await recorder.until(lambda: any(s["status"] == "completed" for s in recorder.statuses))
        # Done is 100 %: the bar does not stop at the last report (0 of 1, before the work).
        await recorder.until(lambda: recorder.progress[-1][1] == 1)
    final = next(s for s in recorder.statuses if s["status"] == "completed")
    legacy_conforms("TaskStatusNotificationParams", final)
    assert final["taskId"] == task_id


async def test_modern_listen_acks_then_pushes_every_change(harness: Harness) -> None:
    recorder = Recorder()
    extension = recorder.binding("notifications/tasks")
    async with Client(harness.mcp, message_handler=recorder, extensions=[extension]) as client:
        created = await modern(client, "tools/call", {"name": "gated", "arguments": {}})
        task_id = created["taskId"]
        listening = asyncio.create_task(
            modern(
                client,
                "subscriptions/listen",
                {"notifications": {"taskIds": [task_id, "f" * 32]}},
            )
        )
        await recorder.until(lambda: recorder.acks)
        honored = recorder.acks[0].notifications.model_extra
        assert honored == {"taskIds": [task_id]}  # an unknown id is not subscribed
        harness.release.set()
        await recorder.until(lambda: any(s["status"] == "completed" for s in recorder.statuses))
        result = await asyncio.wait_for(listening, 10)  # ends once every task has ended
    assert result.get("_meta") is not None
    final = next(s for s in recorder.statuses if s["status"] == "completed")
    final.pop("_meta", None)
    modern_conforms("DetailedTask", final)
    assert final["result"]["structuredContent"] == {"result": "through"}


async def test_a_listen_may_follow_at_most_a_thousand_tasks(harness: Harness) -> None:
    async with Client(harness.mcp) as client:
        too_many = {"notifications": {"taskIds": [f"{n:032x}" for n in range(1001)]}}
        with pytest.raises(MCPError) as error:
            await modern(client, "subscriptions/listen", too_many)
        assert error.value.error.code == INVALID_PARAMS
        assert "at most 1000 tasks" in error.value.error.message
