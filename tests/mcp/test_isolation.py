"""Tasks belong to the principal that made them, over real HTTP with bearer-token auth.

Another principal (another client app, or another user of the same app) can never see, read,
get the result of, list, cancel, update or subscribe to them, in either dialect: every try
answers exactly as an id that never existed would, and the owner's task runs on untouched.
A caller without a valid token is turned away (401) before any of that. The owner, on the
other hand, reaches its task from both dialects: a principal binds across them.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx2
import pytest
from fastmcp import Client
from fastmcp.server.auth import StaticTokenVerifier
from fastmcp.utilities.tests import run_server_async
from mcp.shared.exceptions import MCPError

from tests.helpers.dockets import purge
from tests.helpers.mcp import Harness, Recorder, legacy, modern

pytestmark = pytest.mark.anyio

MODERN, LEGACY = "2026-07-28", "2025-11-25"
DIALECTS = [MODERN, LEGACY]
TOKENS = {
    "alice-token": {"client_id": "app-one", "sub": "alice", "scopes": []},
    "bob-token": {"client_id": "app-two", "sub": "bob", "scopes": []},
    # The same client app as alice's, another user: a principal is (client, issuer, subject).
    "eve-token": {"client_id": "app-one", "sub": "eve", "scopes": []},
}


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    """Ownership is stored with the task: check it on memory:// and on the real Redis."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"memory://isolation-{uuid.uuid4().hex[:8]}"


class Served:
    def __init__(self, harness: Harness, endpoint: str) -> None:
        self.harness = harness
        self.endpoint = endpoint

    @asynccontextmanager
    async def client(self, token: str, dialect: str) -> AsyncIterator[Caller]:
        mode = "legacy" if dialect == LEGACY else "auto"
        recorder = Recorder()
        extension = recorder.binding("notifications/tasks")
        async with Client(
            self.endpoint, auth=token, mode=mode, message_handler=recorder, extensions=[extension]
        ) as client:
            yield Caller(client, dialect, recorder)


class Caller:
    """One principal's connection in one dialect, speaking raw JSON-RPC."""

    def __init__(self, client: Client[Any], dialect: str, recorder: Recorder) -> None:
        self.client = client
        self.dialect = dialect
        self.recorder = recorder

    async def __call__(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        async with asyncio.timeout(15):
            if self.dialect == MODERN:
                return await modern(self.client, method, dict(params))
            return await legacy(self.client, method, dict(params))

    async def create_gated(self) -> str:
        if self.dialect == MODERN:
            return str((await self("tools/call", {"name": "gated", "arguments": {}}))["taskId"])
        created = await self("tools/call", {"name": "gated", "arguments": {}, "task": {}})
        return str(created["task"]["taskId"])

    async def refusal(self, method: str, params: dict[str, Any]) -> tuple[int, str, Any]:
        with pytest.raises(MCPError) as caught:
            await self(method, params)
        return caught.value.code, caught.value.error.message, caught.value.error.data

    async def listed(self) -> list[str]:
        """Every task id on every page of this caller's tasks/list (2025-11-25)."""
        ids: list[str] = []
        params: dict[str, Any] = {}
        while True:
            page = await self("tasks/list", params)
            ids += [task["taskId"] for task in page["tasks"]]
            if "nextCursor" not in page:
                return ids
            params = {"cursor": page["nextCursor"]}

    async def subscribed(self, task_id: str) -> list[str]:
        """The task ids a subscriptions/listen for ``task_id`` was granted. The call ends at
        once when none is (a granted, running task would hold it open)."""
        before = len(self.recorder.acks)
        listening = asyncio.create_task(
            self("subscriptions/listen", {"notifications": {"taskIds": [task_id]}})
        )
        await self.recorder.until(lambda: len(self.recorder.acks) > before)
        granted = list((self.recorder.acks[-1].notifications.model_extra or {})["taskIds"])
        if granted:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
        else:
            await asyncio.wait_for(listening, 10)
        return granted


@pytest.fixture
async def served(url: str, docket_name: str) -> AsyncIterator[Served]:
    harness = Harness(url, docket_name)
    harness.mcp.auth = StaticTokenVerifier(TOKENS)
    async with run_server_async(harness.mcp) as endpoint:
        yield Served(harness, endpoint)
    await purge(url, docket_name)


@contextmanager
def same_answer(task_id: str, unknown_id: str) -> Iterator[list[tuple[Any, Any]]]:
    """Collect (their answer, the unknown id's answer) pairs; on exit each pair must be the
    same code, data and message, up to the id itself."""
    pairs: list[tuple[Any, Any]] = []
    yield pairs
    assert pairs
    for theirs, unknown in pairs:
        code, message, data = theirs
        assert code == unknown[0] == -32602, (theirs, unknown)
        assert data == unknown[2]
        assert message.replace(task_id, "<id>") == unknown[1].replace(unknown_id, "<id>")


@pytest.mark.parametrize("made_in", DIALECTS)
async def test_another_principal_cannot_reach_a_task(served: Served, made_in: str) -> None:
    unknown_id = secrets.token_hex(16)  # what a real id looks like
    async with served.client("alice-token", made_in) as alice:
        task_id = await alice.create_gated()
        for intruder in ("bob-token", "eve-token"):
            async with (
                served.client(intruder, MODERN) as new,
                served.client(intruder, LEGACY) as old,
            ):
                with same_answer(task_id, unknown_id) as pairs:
                    for caller, method, extra in [
                        (new, "tasks/get", {}),
                        (new, "tasks/update", {"inputResponses": {"q": {"action": "accept"}}}),
                        (new, "tasks/cancel", {}),
                        (old, "tasks/get", {}),
                        (old, "tasks/result", {}),
                        (old, "tasks/cancel", {}),
                    ]:
                        theirs = await caller.refusal(method, {"taskId": task_id, **extra})
                        unknown = await caller.refusal(method, {"taskId": unknown_id, **extra})
                        pairs.append((theirs, unknown))
                await old("tools/call", {"name": "crunch", "arguments": {"n": 1}, "task": {}})
                assert task_id not in await old.listed()
                assert len(await old.listed()) == 1  # their own task, and only that
                assert await new.subscribed(task_id) == []
                assert await new.subscribed(unknown_id) == []
        # The owner's task is untouched: still running, reachable, and it ends with its result.
        async with (
            served.client("alice-token", MODERN) as new,
            served.client("alice-token", LEGACY) as old,
        ):
            assert (await new("tasks/get", {"taskId": task_id}))["status"] == "working"
            assert (await old("tasks/get", {"taskId": task_id}))["status"] == "working"
            assert task_id in await old.listed()
            assert await new.subscribed(task_id) == [task_id]  # the owner may listen
            served.harness.release.set()
            result = await old("tasks/result", {"taskId": task_id})
            assert result["structuredContent"] == {"result": "through"}
            got = await new("tasks/get", {"taskId": task_id})
            assert got["status"] == "completed"
            assert got["result"]["structuredContent"] == {"result": "through"}


async def test_a_finished_task_stays_private(served: Served) -> None:
    """Not only running tasks: a finished task's result is as out of reach."""
    served.harness.release.set()
    async with served.client("alice-token", MODERN) as alice:
        created = await alice("tools/call", {"name": "crunch", "arguments": {"n": 21}})
        task_id = created["taskId"]
        await served.harness.finished(task_id)
        async with served.client("bob-token", LEGACY) as bob:
            unknown_id = secrets.token_hex(16)
            with same_answer(task_id, unknown_id) as pairs:
                for method in ("tasks/get", "tasks/result", "tasks/cancel"):
                    pairs.append(
                        (
                            await bob.refusal(method, {"taskId": task_id}),
                            await bob.refusal(method, {"taskId": unknown_id}),
                        )
                    )
        got = await alice("tasks/get", {"taskId": task_id})
        assert got["result"]["structuredContent"] == {"result": 42}


@pytest.mark.parametrize("token", [None, "forged-token"])
async def test_no_valid_token_no_entry(served: Served, token: str | None) -> None:
    """Without a valid bearer token every request is a 401, whatever it asks for."""
    async with served.client("alice-token", MODERN) as alice:
        task_id = await alice.create_gated()
        headers = {"accept": "application/json, text/event-stream"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        meta = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientInfo": {"name": "intruder", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {
                "extensions": {"io.modelcontextprotocol/tasks": {}}
            },
        }
        requests = [
            (
                {"mcp-protocol-version": MODERN, "mcp-method": method, "mcp-name": task_id},
                {"method": method, "params": {"taskId": task_id, "_meta": meta}},
            )
            for method in ("tasks/get", "tasks/cancel", "tasks/update")
        ]
        requests.append(
            (
                {},
                {
                    "method": "initialize",
                    "params": {
                        "protocolVersion": LEGACY,
                        "capabilities": {},
                        "clientInfo": {"name": "intruder", "version": "1"},
                    },
                },
            )
        )
        async with httpx2.AsyncClient(timeout=10) as http:
            for extra, body in requests:
                response = await http.post(
                    served.endpoint,
                    headers={**headers, **extra},
                    json={"jsonrpc": "2.0", "id": 1, **body},
                )
                assert response.status_code == 401, (body["method"], response.text)
        assert (await alice("tasks/get", {"taskId": task_id}))["status"] == "working"
        served.harness.release.set()
        await served.harness.finished(task_id)
        assert (await alice("tasks/get", {"taskId": task_id}))["status"] == "completed"


@pytest.mark.parametrize("made_in", DIALECTS)
async def test_a_principal_reaches_its_task_from_either_dialect(
    served: Served, made_in: str
) -> None:
    """Made in one dialect: read, listed, cancelled and listened to from the other."""
    other = LEGACY if made_in == MODERN else MODERN
    async with (
        served.client("alice-token", made_in) as maker,
        served.client("alice-token", other) as reader,
    ):
        if made_in == MODERN:
            done = (await maker("tools/call", {"name": "crunch", "arguments": {"n": 4}}))["taskId"]
        else:
            call = {"name": "crunch", "arguments": {"n": 4}, "task": {}}
            done = (await maker("tools/call", call))["task"]["taskId"]
        await served.harness.finished(done)
        if other == LEGACY:
            result = await reader("tasks/result", {"taskId": done})
            assert result["structuredContent"] == {"result": 8}
            assert done in await reader.listed()
        else:
            got = await reader("tasks/get", {"taskId": done})
            assert got["result"]["structuredContent"] == {"result": 8}
        running = await maker.create_gated()
        assert (await reader("tasks/get", {"taskId": running}))["status"] == "working"
        if other == MODERN:
            assert await reader.subscribed(running) == [running]
        await reader("tasks/cancel", {"taskId": running})
        await served.harness.finished(running)
        assert (await maker("tasks/get", {"taskId": running}))["status"] == "cancelled"
