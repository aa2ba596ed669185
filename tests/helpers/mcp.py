"""MCP in tests: a server with task tools, raw requests in each dialect, schema checks, and a
recorder of what a client is pushed."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastmcp import Client, Context, FastMCP
from fastmcp.client.messages import MessageHandler
from fastmcp.utilities.tasks import TaskConfig
from mcp.client.extension import ClientExtension, NotificationBinding
from pydantic import BaseModel, ConfigDict

from mcp_tasks import Tasks
from mcp_tasks.client import raw_request

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"  # the official schemas, vendored


@cache
def _schema(file: str) -> dict[str, Any]:
    path = SCHEMAS / file
    if not path.exists():
        pytest.fail(f"the vendored official schemas are missing from {SCHEMAS}")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def conforms(file: str, definition: str, instance: Any) -> None:
    _validator(file, definition).validate(instance)


@cache
def _validator(file: str, definition: str) -> Any:
    """One checked, compiled validator per schema definition (checking the whole official
    schema on every call made each validation take ~0.2 s)."""
    schema = {"$ref": f"#/$defs/{definition}", "$defs": _schema(file)["$defs"]}
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def legacy_conforms(definition: str, instance: Any) -> None:
    conforms("mcp-2025-11-25.schema.json", definition, instance)


def modern_conforms(definition: str, instance: Any) -> None:
    """Valid per the extension's schema, and a task's ``result`` is a CallToolResult of the
    2026-07-28 protocol (the extension's schema leaves it an open object)."""
    conforms("ext-tasks-draft.schema.json", definition, instance)
    if isinstance(instance, dict) and isinstance(instance.get("result"), dict):
        conforms("mcp-2026-07-28.schema.json", "CallToolResult", instance["result"])


class Harness:
    def __init__(self, url: str, name: str, **options: Any) -> None:
        self.tasks = Tasks(url=url, name=name, **options)
        self.release = asyncio.Event()
        mcp = FastMCP("test")
        mcp.add_extension(self.tasks)
        release = self.release

        @mcp.tool(task=True)
        async def crunch(n: int, ctx: Context) -> int:
            await ctx.report_progress(1, 2, "halfway")
            return n * 2

        @mcp.tool(task=True)
        async def gated(ctx: Context) -> str:
            await ctx.report_progress(0, 1, "waiting for the gate")
            await release.wait()
            return "through"

        @mcp.tool(task=TaskConfig(mode="optional", poll_interval=timedelta(milliseconds=250)))
        async def quick_poll() -> str:
            return "quick"

        @mcp.tool(task=TaskConfig(mode="required"))
        async def only_as_task() -> str:
            return "task"

        @mcp.tool
        def plain() -> str:
            return "plain"

        @mcp.tool(task=True)
        async def confirm(path: str, ctx: Context) -> str:
            answer = await ctx.elicit(f"Delete {path}?", bool)
            if answer.action == "accept" and answer.data:
                return f"deleted {path}"
            return f"kept {path}"

        @mcp.tool(task=True)
        async def broken() -> str:
            raise ValueError("it broke")

        self.mcp = mcp

    async def finished(self, task_id: str) -> None:
        await self.tasks.docket.wait(task_id, timeout=10)


async def modern(
    client: Client[Any],
    method: str,
    params: dict[str, Any],
    *,
    opt_in: bool = True,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Send a raw 2026-07-28 request, opting in to the tasks extension unless told not to."""
    return await raw_request(client, method, params, opt_in=opt_in or None, headers=headers)


async def legacy(client: Client[Any], method: str, params: dict[str, Any]) -> dict[str, Any]:
    return await raw_request(client, method, params)


class TaskParams(BaseModel):
    model_config = ConfigDict(extra="allow")
    taskId: str
    status: str


class Recorder(MessageHandler):
    """Collects what the server pushes; tests await the events instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[dict[str, Any]] = []
        self.progress: list[tuple[Any, float, str | None]] = []
        self.acks: list[Any] = []
        self.changed = asyncio.Event()

    def binding(self, method: str) -> ClientExtension:
        recorder = self

        class Binding(ClientExtension):
            identifier = "test.example/recorder"

            def notifications(self) -> list[NotificationBinding]:
                async def handle(params: TaskParams) -> None:
                    recorder.statuses.append(params.model_dump(by_alias=True))
                    recorder.changed.set()

                return [NotificationBinding(method=method, params_type=TaskParams, handler=handle)]

        return Binding()

    async def on_progress(self, message: Any) -> None:
        p = message.params
        self.progress.append((p.progress_token, p.progress, p.message))
        self.changed.set()

    async def on_notification(self, message: Any) -> None:
        if message.method == "notifications/subscriptions/acknowledged":
            self.acks.append(message.params)
            self.changed.set()

    async def until(self, condition: Any) -> None:
        async with asyncio.timeout(10):
            while not condition():
                self.changed.clear()
                await self.changed.wait()
