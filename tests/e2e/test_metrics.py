"""Prometheus /metrics over HTTP: the counts of tasks that completed, failed and were
cancelled, and on Redis the very same figures from a replica that ran none of them."""

from __future__ import annotations

import httpx
import pytest
from fastmcp import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.mcp import legacy

pytestmark = pytest.mark.anyio


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "docket"))
            found[(sample.name, labels)] = sample.value
    return found


async def test_metrics_count_what_the_tasks_did(http_replicas: list[str]) -> None:
    async with Client(http_replicas[0], mode="legacy") as client:

        async def run(tool: str, arguments: dict[str, object]) -> dict[str, object]:
            created = await legacy(
                client, "tools/call", {"name": tool, "arguments": arguments, "task": {}}
            )
            return await legacy(client, "tasks/result", {"taskId": created["task"]["taskId"]})

        for n in (1, 2, 3):
            assert (await run("count", {"to": n}))["isError"] is False
        assert (await run("count", {"to": -1}))["isError"] is True  # an isError result
        slow = await legacy(
            client, "tools/call", {"name": "sleep", "arguments": {"seconds": 60}, "task": {}}
        )
        cancelled = await legacy(client, "tasks/cancel", {"taskId": slow["task"]["taskId"]})
        assert cancelled["status"] == "cancelled"

    texts = []
    async with httpx.AsyncClient() as http:
        for mcp in http_replicas:
            response = await http.get(mcp.removesuffix("/mcp") + "/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            texts.append(response.text)
    assert all(text == texts[0] for text in texts)  # every replica: the same figures
    got = samples(texts[0])
    count, sleep = (("tool", "count"),), (("tool", "sleep"),)
    assert got[("mcp_tasks_created_total", count)] == 4
    assert got[("mcp_tasks_created_total", sleep)] == 1
    assert got[("mcp_tasks_completed_total", count)] == 3
    assert got[("mcp_tasks_failed_total", count)] == 1
    assert got[("mcp_tasks_cancelled_total", sleep)] == 1
    assert ("mcp_tasks_completed_total", sleep) not in got
    assert got[("mcp_tasks_run_seconds_count", count)] == 4
    assert got[("mcp_tasks_run_seconds_bucket", (("le", "+Inf"), ("tool", "count")))] == 4
    assert got[("mcp_tasks_run_seconds_bucket", (("le", "60.0"), ("tool", "count")))] == 4
    assert 0 <= got[("mcp_tasks_run_seconds_sum", count)] < 60
    for state in ("queued", "running", "scheduled"):
        assert got[("mcp_tasks_queue_depth", (("state", state),))] == 0
