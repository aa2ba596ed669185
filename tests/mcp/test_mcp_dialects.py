"""Both task dialects end to end through the fastmcp Client, on memory:// and real Redis.

Raw JSON-RPC is sent where the client libraries do not speak a dialect natively (mcp 2.3's
client validates a legacy task-augmented tools/call as a CallToolResult). Every task
message is validated against the official schema of its era.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastmcp import Client
from mcp.shared.exceptions import MCPError

from mcp_tasks.protocol import EXTENSION_ID, RELATED_TASK_META
from mcp_tasks.server.config import MIN_POLL_MS
from tests.helpers.dockets import purge
from tests.helpers.mcp import Harness, legacy, legacy_conforms, modern, modern_conforms

pytestmark = pytest.mark.anyio
# -- 2026-07-28 ---------------------------------------------------------------------------


async def test_modern_task_create_and_get(harness: Harness) -> None:
    async with Client(harness.mcp) as client:
        assert client.protocol_version == "2026-07-28"
        assert EXTENSION_ID in (client.server_capabilities.extensions or {})
        created = await modern(client, "tools/call", {"name": "crunch", "arguments": {"n": 21}})
        modern_conforms("CreateTaskResult", created)
        assert created["resultType"] == "task" and created["status"] == "working"
        assert len(created["taskId"]) >= 32 and created["ttlMs"] > 0
        await harness.finished(created["taskId"])
        got = await modern(client, "tasks/get", {"taskId": created["taskId"]})
        modern_conforms("GetTaskResult", got)
        assert got["status"] == "completed" and "statusMessage" not in got
        assert got["result"]["structuredContent"] == {"result": 42}
        assert got["resultType"] == "complete"


async def test_modern_progress_shows_while_running_and_cancel_stops_it(harness: Harness) -> None:
    async with Client(harness.mcp) as client:
        created = await modern(client, "tools/call", {"name": "gated", "arguments": {}})
        task_id = created["taskId"]
        async for state in harness.tasks.docket.watch(task_id):
            if state.progress is not None:
                break
        got = await modern(client, "tasks/get", {"taskId": task_id})
        assert got["status"] == "working" and got["statusMessage"] == "waiting for the gate"
        ack = await modern(client, "tasks/cancel", {"taskId": task_id})
        modern_conforms("CancelTaskResult", ack)
        await harness.finished(task_id)
        got = await modern(client, "tasks/get", {"taskId": task_id})
        modern_conforms("GetTaskResult", got)
        assert got["status"] == "cancelled"


async def test_modern_tool_error_completes_with_an_error_result(harness: Harness) -> None:
    async with Client(harness.mcp) as client:
        created = await modern(client, "tools/call", {"name": "broken", "arguments": {}})
        await harness.finished(created["taskId"])
        got = await modern(client, "tasks/get", {"taskId": created["taskId"]})
        modern_conforms("GetTaskResult", got)
        assert got["status"] == "completed" and got["result"]["isError"] is True
        assert "it broke" in got["result"]["content"][0]["text"]


async def test_modern_without_opt_in(harness: Harness) -> None:
    async with Client(harness.mcp) as client:
        # An optional task tool simply runs inline.
        plain = await modern(
            client, "tools/call", {"name": "crunch", "arguments": {"n": 1}}, opt_in=False
        )
        assert plain["structuredContent"] == {"result": 2}
        # A task-only tool, and tasks/*, need the capability: -32021 saying which.
        for method, params in [
            ("tools/call", {"name": "only_as_task", "arguments": {}}),
            ("tasks/get", {"taskId": "whatever"}),
        ]:
            with pytest.raises(MCPError) as error:
                await modern(client, method, params, opt_in=False)
            assert error.value.code == -32021
            assert error.value.error.data == {
                "requiredCapabilities": {"extensions": {EXTENSION_ID: {}}}
            }


async def test_modern_unknown_task_and_removed_methods(harness: Harness) -> None:
    async with Client(harness.mcp) as client:
        with pytest.raises(MCPError) as error:
            await modern(client, "tasks/get", {"taskId": "0" * 32})
        assert error.value.code == -32602
        for method in ("tasks/result", "tasks/list"):
            with pytest.raises(MCPError) as error:
                await modern(client, method, {"taskId": "x"})
            assert error.value.code == -32601


# -- 2025-11-25 ---------------------------------------------------------------------------


async def test_legacy_capabilities_and_tool_support(harness: Harness) -> None:
    async with Client(harness.mcp, mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        caps = client.initialize_result.capabilities.model_dump(by_alias=True, exclude_none=True)
        assert caps["tasks"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
        tools = {t.name: t for t in await client.list_tools()}
        assert tools["crunch"].execution.task_support == "optional"  # type: ignore[union-attr]
        assert tools["only_as_task"].execution.task_support == "required"  # type: ignore[union-attr]


async def test_legacy_task_create_result_get(harness: Harness) -> None:
    async with Client(harness.mcp, mode="legacy") as client:
        created = await legacy(
            client, "tools/call", {"name": "crunch", "arguments": {"n": 4}, "task": {"ttl": 60000}}
        )
        legacy_conforms("CreateTaskResult", created)
        task = created["task"]
        assert task["status"] == "working" and task["ttl"] == 60000
        result = await legacy(client, "tasks/result", {"taskId": task["taskId"]})  # blocks
        legacy_conforms("CallToolResult", result)
        assert result["structuredContent"] == {"result": 8}
        assert result["_meta"][RELATED_TASK_META] == {"taskId": task["taskId"]}
        got = await legacy(client, "tasks/get", {"taskId": task["taskId"]})
        legacy_conforms("GetTaskResult", got)
        assert got["status"] == "completed"


async def test_legacy_ttl_is_capped_and_reported(harness: Harness) -> None:
    async with Client(harness.mcp, mode="legacy") as client:
        created = await legacy(
            client, "tools/call", {"name": "crunch", "arguments": {"n": 1}, "task": {"ttl": 10**12}}
        )
        assert created["task"]["ttl"] == harness.tasks.config.max_ttl_ms


async def test_legacy_tool_error_fails_the_task(harness: Harness) -> None:
    async with Client(harness.mcp, mode="legacy") as client:
        created = await legacy(
            client, "tools/call", {"name": "broken", "arguments": {}, "task": {}}
        )
        task_id = created["task"]["taskId"]
        result = await legacy(client, "tasks/result", {"taskId": task_id})
        assert result["isError"] is True
        got = await legacy(client, "tasks/get", {"taskId": task_id})
        assert got["status"] == "failed"


async def test_legacy_errors(harness: Harness) -> None:
    async with Client(harness.mcp, mode="legacy") as client:
        cases = [
            ("tools/call", {"name": "plain", "arguments": {}, "task": {}}, -32601),
            ("tools/call", {"name": "only_as_task", "arguments": {}}, -32601),
            ("tools/call", {"name": "nope", "arguments": {}, "task": {}}, -32602),
            ("tasks/get", {"taskId": "f" * 32}, -32602),
            ("tasks/result", {"taskId": "f" * 32}, -32602),
            ("tasks/cancel", {"taskId": "f" * 32}, -32602),
        ]
        for method, params, code in cases:
            with pytest.raises(MCPError) as error:
                await legacy(client, method, params)
            assert error.value.code == code, (method, params)
        huge = {"name": "n" * 100_000, "arguments": {}, "task": {}}
        with pytest.raises(MCPError, match="Unknown tool: nnn") as error:
            await legacy(client, "tools/call", huge)
        assert len(error.value.error.message) < 100  # a huge name is not echoed back whole


async def test_legacy_cancel(harness: Harness) -> None:
    async with Client(harness.mcp, mode="legacy") as client:
        created = await legacy(client, "tools/call", {"name": "gated", "arguments": {}, "task": {}})
        task_id = created["task"]["taskId"]
        cancelled = await legacy(client, "tasks/cancel", {"taskId": task_id})
        legacy_conforms("CancelTaskResult", cancelled)
        assert cancelled["status"] == "cancelled"
        with pytest.raises(MCPError) as error:  # cancelling a terminal task is an error
            await legacy(client, "tasks/cancel", {"taskId": task_id})
        assert error.value.code == -32602


# -- both ---------------------------------------------------------------------------------


async def test_a_legacy_task_is_readable_in_the_modern_dialect(harness: Harness) -> None:
    async with Client(harness.mcp, mode="legacy") as old, Client(harness.mcp) as new:
        created = await legacy(
            old, "tools/call", {"name": "crunch", "arguments": {"n": 5}, "task": {}}
        )
        task_id = created["task"]["taskId"]
        await harness.finished(task_id)
        got = await modern(new, "tasks/get", {"taskId": task_id})
        modern_conforms("GetTaskResult", got)
        assert got["status"] == "completed" and got["result"]["structuredContent"] == {"result": 10}


async def test_legacy_list_shows_only_the_callers_tasks_in_pages(harness: Harness) -> None:
    async with (
        Client(harness.mcp, mode="legacy") as mine,
        Client(harness.mcp, mode="legacy") as theirs,
    ):
        call = {"name": "crunch", "arguments": {"n": 1}, "task": {}}
        my_ids = [(await legacy(mine, "tools/call", call))["task"]["taskId"] for _ in range(53)]
        their_id = (await legacy(theirs, "tools/call", call))["task"]["taskId"]
        first = await legacy(mine, "tasks/list", {})
        legacy_conforms("ListTasksResult", first)
        assert len(first["tasks"]) == 50 and "nextCursor" in first
        second = await legacy(mine, "tasks/list", {"cursor": first["nextCursor"]})
        assert "nextCursor" not in second
        listed = [t["taskId"] for t in first["tasks"] + second["tasks"]]
        assert listed == my_ids and their_id not in listed
        theirs_listed = await legacy(theirs, "tasks/list", {})
        assert [t["taskId"] for t in theirs_listed["tasks"]] == [their_id]
        for garbage in ["not-a-cursor", "", "bzotMQ=="]:
            with pytest.raises(MCPError) as error:
                await legacy(mine, "tasks/list", {"cursor": garbage})
            assert error.value.code == -32602


async def test_modern_mcp_name_header_must_match_over_http(harness: Harness) -> None:
    from fastmcp.utilities.tests import asgi_server

    async with asgi_server(harness.mcp) as server, server.client() as client:
        created = await modern(client, "tools/call", {"name": "crunch", "arguments": {"n": 2}})
        task_id = created["taskId"]
        got = await modern(client, "tasks/get", {"taskId": task_id})  # the SDK names it right
        assert got["taskId"] == task_id
        with pytest.raises(MCPError) as error:
            await modern(
                client, "tasks/get", {"taskId": task_id}, headers={"Mcp-Name": "someone-else"}
            )
        assert error.value.code == -32020


async def test_modern_input_required_and_tasks_update(harness: Harness) -> None:
    async with Client(harness.mcp) as client:
        created = await modern(
            client, "tools/call", {"name": "confirm", "arguments": {"path": "/x"}}
        )
        task_id = created["taskId"]
        async for state in harness.tasks.docket.watch(task_id):
            if state.questions:
                break
        got = await modern(client, "tasks/get", {"taskId": task_id})
        modern_conforms("GetTaskResult", got)
        assert got["status"] == "input_required"
        ((key, request),) = got["inputRequests"].items()
        assert request["method"] == "elicitation/create"
        assert request["params"]["message"] == "Delete /x?"
        answer = {"action": "accept", "content": {"value": True}}
        ack = await modern(
            client, "tasks/update", {"taskId": task_id, "inputResponses": {key: answer}}
        )
        modern_conforms("UpdateTaskResult", ack)
        await harness.finished(task_id)
        got = await modern(client, "tasks/get", {"taskId": task_id})
        assert got["status"] == "completed"
        assert got["result"]["structuredContent"] == {"result": "deleted /x"}


async def test_legacy_input_required_elicits_over_tasks_result(harness: Harness) -> None:
    asked: list[str] = []
    related: list[Any] = []

    async def on_elicit(message: str, response_type: Any, params: Any, context: Any) -> Any:
        asked.append(message)
        meta = params.model_dump(by_alias=True).get("_meta") or {}
        related.append(meta.get(RELATED_TASK_META))
        return {"value": False}

    async with Client(harness.mcp, mode="legacy", elicitation_handler=on_elicit) as client:
        created = await legacy(
            client, "tools/call", {"name": "confirm", "arguments": {"path": "/y"}, "task": {}}
        )
        result = await legacy(client, "tasks/result", {"taskId": created["task"]["taskId"]})
    assert asked == ["Delete /y?"]
    assert related == [{"taskId": created["task"]["taskId"]}]
    assert result["structuredContent"] == {"result": "kept /y"}


async def test_poll_interval_adapts_to_the_task_unless_the_tool_sets_one(
    harness: Harness,
) -> None:
    async with Client(harness.mcp) as client, Client(harness.mcp, mode="legacy") as old:
        # A new task: poll soon, so a quick one is seen within ~100 ms.
        quick = await modern(client, "tools/call", {"name": "crunch", "arguments": {"n": 1}})
        assert quick["pollIntervalMs"] == MIN_POLL_MS == 100
        gated = await modern(client, "tools/call", {"name": "gated", "arguments": {}})
        began = asyncio.get_running_loop().time()
        try:
            async for state in harness.tasks.docket.watch(gated["taskId"]):
                if state.progress is not None:  # running; now let it age
                    break
            await asyncio.sleep(0.5)  # the age itself is what is measured
            later = await modern(client, "tasks/get", {"taskId": gated["taskId"]})
            aged_ms = (asyncio.get_running_loop().time() - began) * 1000
        finally:
            harness.release.set()
        # Poll again after about as long as it has run, at most the extension's cap.
        assert 500 <= later["pollIntervalMs"] <= aged_ms + 50, (later, aged_ms)
        assert harness.tasks.config.poll_interval_ms == 10_000
        own = await modern(client, "tools/call", {"name": "quick_poll", "arguments": {}})
        assert own["pollIntervalMs"] == 250
        legacy_own = await legacy(
            old, "tools/call", {"name": "quick_poll", "arguments": {}, "task": {}}
        )
        assert legacy_own["task"]["pollInterval"] == 250


async def test_a_task_is_gone_once_its_ttl_expires(url: str, docket_name: str) -> None:
    short = Harness(url, docket_name, default_ttl=0.3, max_ttl=0.3)
    async with Client(short.mcp, mode="legacy") as client:
        created = await legacy(
            client, "tools/call", {"name": "crunch", "arguments": {"n": 1}, "task": {"ttl": 10**6}}
        )
        task_id = created["task"]["taskId"]
        assert created["task"]["ttl"] == 300  # the actual retention is reported
        await short.finished(task_id)
        assert (await legacy(client, "tasks/get", {"taskId": task_id}))["status"] == "completed"
        deadline = asyncio.get_running_loop().time() + 5
        while True:  # expiry is Redis's own clock: nothing to await but time
            try:
                await legacy(client, "tasks/get", {"taskId": task_id})
            except MCPError as error:
                assert error.code == -32602
                break
            assert asyncio.get_running_loop().time() < deadline, "the task never expired"
            await asyncio.sleep(0.05)
    await purge(url, docket_name)


async def test_legacy_result_and_task_fields_match_a_plain_call(harness: Harness) -> None:
    """tasks/result returns exactly what the call would have; times and messages agree."""
    async with Client(harness.mcp, mode="legacy") as client:
        plain = await legacy(client, "tools/call", {"name": "crunch", "arguments": {"n": 3}})
        created = await legacy(
            client, "tools/call", {"name": "crunch", "arguments": {"n": 3}, "task": {}}
        )
        task = created["task"]
        result = await legacy(client, "tasks/result", {"taskId": task["taskId"]})
        result.pop("_meta")
        plain.pop("_meta", None)
        assert result == plain
        got = await legacy(client, "tasks/get", {"taskId": task["taskId"]})
        assert got["createdAt"] == task["createdAt"]
        assert "statusMessage" not in got  # progress was about the work, which has ended

        plain_error = await legacy(client, "tools/call", {"name": "broken", "arguments": {}})
        failed = await legacy(client, "tools/call", {"name": "broken", "arguments": {}, "task": {}})
        error_result = await legacy(client, "tasks/result", {"taskId": failed["task"]["taskId"]})
        assert error_result["content"] == plain_error["content"]
        got = await legacy(client, "tasks/get", {"taskId": failed["task"]["taskId"]})
        assert got["status"] == "failed"
        assert got["statusMessage"] == plain_error["content"][0]["text"]


async def test_a_fresh_task_polled_while_working_is_answered_when_it_changes(
    url: str, docket_name: str
) -> None:
    """tasks/get on a task in its first second waits up to ``settle`` for a status change,
    so a polling client's first poll of a quick task finds it done."""
    patient = Harness(url, docket_name, settle=30)
    impatient = Harness(url, docket_name + "-0", settle=0)
    try:
        async with Client(patient.mcp) as client, Client(impatient.mcp) as other:
            created = await modern(client, "tools/call", {"name": "gated", "arguments": {}})
            polled = asyncio.create_task(modern(client, "tasks/get", {"taskId": created["taskId"]}))
            await asyncio.sleep(0)
            assert not polled.done()
            patient.release.set()
            task = await asyncio.wait_for(polled, 10)
            assert task["status"] == "completed"
            assert task["result"]["structuredContent"] == {"result": "through"}
            # With settle=0, a working task is answered as it stands.
            created = await modern(other, "tools/call", {"name": "gated", "arguments": {}})
            task = await modern(other, "tasks/get", {"taskId": created["taskId"]})
            assert task["status"] == "working"
            impatient.release.set()
    finally:
        await purge(url, docket_name)
        await purge(url, docket_name + "-0")
