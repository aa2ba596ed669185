"""Values that are valid JSON but awkward for Python: answered per spec in both dialects.

- Strings holding a lone UTF-16 surrogate (``"\\ud800"`` is valid JSON; Python decodes it to a
  ``str`` that cannot be encoded as UTF-8). As a 2026-07-28 task id: -32602, exactly like any
  unknown id. Anywhere in a task's arguments: the task runs, as the same call without a task
  does. (On a 2025-11-25 HTTP session the SDK's own JSON parser refuses such a message with
  -32700 before any handler sees it, a task call and a plain call alike.)
- Deeply nested arguments: a task call and a plain call of the same tool agree.

The requests go out as raw bytes over streamable HTTP (a Python client could not even encode
them), to a server on each backend.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastmcp import FastMCP

from mcp_tasks import Tasks
from tests.helpers.dockets import purge
from tests.helpers.raw_http import LEGACY, MODERN, Raw, message
from tests.helpers.servers import serving_in_process

pytestmark = pytest.mark.anyio

SURROGATE = "\\ud800"  # as it appears inside JSON text: a lone high surrogate


def deep(levels: int) -> str:
    """JSON text of ``{"a": {"a": ... 1 ...}}`` nested ``levels`` deep."""
    return '{"a":' * levels + "1" + "}" * levels


def build(url: str, name: str) -> tuple[FastMCP, Tasks]:
    mcp = FastMCP("hostile")
    tasks = Tasks(url=url, name=name)
    mcp.add_extension(tasks)

    @mcp.tool(task=True)
    async def measure(value: Any) -> str:
        depth = 0
        while isinstance(value, dict) and "a" in value:
            value, depth = value["a"], depth + 1
        text = value if isinstance(value, str) else ""
        return f"depth {depth}, {len(text)} chars"

    return mcp, tasks


@pytest.fixture
async def raw_server(url: str, docket_name: str) -> AsyncIterator[tuple[Tasks, str]]:
    mcp, tasks = build(url, docket_name)
    async with serving_in_process(mcp.http_app()) as address:
        yield tasks, address
    await purge(url, docket_name)


def _text(answer: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for part in answer["content"])


async def _task_result(raw: Raw, tasks: Tasks, arguments: str) -> dict[str, Any]:
    """Create a ``measure`` task in the raw client's dialect and return its final result."""
    call = f'{{"name": "measure", "arguments": {arguments}'
    if raw.version == LEGACY:
        created = await raw.send("tools/call", call + ', "task": {}}')
        assert "result" in created, created
        task_id = created["result"]["task"]["taskId"]
    else:
        created = await raw.send("tools/call", call + "}", name="measure")
        assert "result" in created, created
        task_id = created["result"]["taskId"]
    final = await tasks.docket.wait(task_id, timeout=20)
    assert final.result is not None, final
    return final.result  # type: ignore[no-any-return]


@pytest.mark.parametrize("version", [MODERN, LEGACY])
async def test_a_task_id_with_a_lone_surrogate_is_an_unknown_task(
    raw_server: tuple[Tasks, str], version: str
) -> None:
    _, address = raw_server
    async with httpx.AsyncClient(timeout=20) as http:
        raw = Raw(http, address, version)
        await raw.open()
        methods = ["tasks/get", "tasks/cancel"] + (
            ["tasks/update"] if version == MODERN else ["tasks/result"]
        )
        for method in methods:
            extra = ', "inputResponses": {}' if method == "tasks/update" else ""
            answer = await raw.send(method, f'{{"taskId": "x{SURROGATE}y"{extra}}}')
            expected = -32602 if version == MODERN else -32700
            assert answer.get("error", {}).get("code") == expected, (method, answer)
            unknown = await raw.send(method, f'{{"taskId": "{"0" * 32}"{extra}}}')
            assert unknown["error"]["code"] == -32602, (method, unknown)
        if version == MODERN:
            listen = await raw.send(
                "subscriptions/listen", f'{{"notifications": {{"taskIds": ["{SURROGATE}"]}}}}'
            )
            assert "result" in listen, listen  # nothing to follow: acknowledged, then ended


@pytest.mark.parametrize("version", [MODERN, LEGACY])
async def test_task_and_plain_calls_agree_on_surrogates_and_deep_nesting(
    raw_server: tuple[Tasks, str], version: str
) -> None:
    tasks, address = raw_server
    async with httpx.AsyncClient(timeout=30) as http:
        raw = Raw(http, address, version)
        await raw.open()
        for arguments in (
            f'{{"value": "a{SURROGATE}b"}}',
            f'{{"value": {{"a": {{"a": "{SURROGATE}"}}}}}}',
            f'{{"value": {deep(200)}}}',
            f'{{"value": {deep(300)}}}',
        ):
            plain_call = f'{{"name": "measure", "arguments": {arguments}}}'
            # Inline: 2025-11-25 without params.task; 2026-07-28 without the opt-in.
            if version == MODERN:
                plain = await _plain_modern(raw, plain_call)
            else:
                plain = await raw.send("tools/call", plain_call)
            if "error" in plain:  # refused before any handler: the task call must be too
                assert version == LEGACY and plain["error"]["code"] == -32700, plain
                call = f'{{"name": "measure", "arguments": {arguments}, "task": {{}}}}'
                assert (await raw.send("tools/call", call))["error"] == plain["error"]
                continue
            as_task = await _task_result(raw, tasks, arguments)
            assert as_task.get("isError") is not True, as_task
            assert _text(as_task) == _text(plain["result"]), (arguments[:60], as_task, plain)


async def _plain_modern(raw: Raw, params: str) -> dict[str, Any]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = (
        f'{{"jsonrpc": "2.0", "id": {next(raw.ids)}, "method": "tools/call", '
        f'"params": {{"_meta": {json.dumps(meta)}, {params[1:]}}}'
    )
    headers = raw.headers("tools/call") | {"mcp-name": "measure"}
    return message(await raw.http.post(raw.url, headers=headers, content=body.encode()))
