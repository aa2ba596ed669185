"""Hostile input in both task dialects: wrong types, missing fields, odd ids, bad ttls and
cursors, oversize arguments, floods of creations.

Each answer must be the JSON-RPC error the specs call for (-32602 bad params or unknown id,
-32601 a method the dialect does not serve, -32021 a 2026 caller that did not opt in) and
never an internal error; the server must keep serving, and a bystander's tasks, created
before the fuzzing on connections of their own, must come through untouched.

Hypothesis drives one long-lived in-process server per test: anyio's pytest plugin runs
every example on the fixture's event loop, so the fixtures (the server, the clients, the
bystanders) live across all examples. Examples are derandomized and capped so CI sees the
same few hundred requests every run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx2
import jsonschema
import pydantic_core
import pytest
from fastmcp import Client
from fastmcp.utilities.tests import asgi_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError

from mcp_tasks.protocol import EXTENSION_ID
from mcp_tasks.protocol.legacy import encode_cursor
from mcp_tasks.server.errors import shown
from tests.helpers.dockets import purge
from tests.helpers.mcp import Harness, _schema, legacy, modern

pytestmark = pytest.mark.anyio

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI is repeatable
    database=None,  # and nothing is written into the work tree
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # on purpose: one server for every example
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

MODERN, LEGACY = "2026-07-28", "2025-11-25"
DIALECTS = [MODERN, LEGACY]
SERVED: dict[str, set[str]] = {
    "tasks/get": {MODERN, LEGACY},
    "tasks/cancel": {MODERN, LEGACY},
    "tasks/update": {MODERN},
    "tasks/result": {LEGACY},
    "tasks/list": {LEGACY},
}
TASK_TOOLS = {"crunch", "quick_poll", "only_as_task", "broken"}  # finish at once
INVALID_PARAMS, METHOD_NOT_FOUND, MISSING_CAPABILITY = -32602, -32601, -32021
MISSING = object()
"""A field left out of the request altogether."""


@cache
def _validator(file: str, definition: str) -> Any:
    """One compiled validator per definition: jsonschema.validate would re-check the whole
    official schema on every call (a fifth of a second each)."""
    defs = _schema(file)["$defs"]
    schema = {"$ref": f"#/$defs/{definition}", "$defs": defs}
    return jsonschema.validators.validator_for(schema)(schema)


def legacy_conforms(definition: str, instance: Any) -> None:
    _validator("mcp-2025-11-25.schema.json", definition).validate(instance)


def modern_conforms(definition: str, instance: Any) -> None:
    _validator("ext-tasks-draft.schema.json", definition).validate(instance)


# -- strategies -----------------------------------------------------------------------------

controls = st.characters(min_codepoint=0, max_codepoint=0x1F) | st.sampled_from(
    "\x7f\u2028\u2029\ufeff\u202e\u200b"
)
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=controls, min_size=1, max_size=12),
    st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1, max_size=20),
    st.integers(min_value=257, max_value=100_000).map(lambda n: "x" * n),  # past any key limit
    st.sampled_from(
        ["", " ", "*", "?", "[", "}", "{mcp-tasks}", "../../etc/passwd", "%s%n", "\\", "0" * 32]
    ),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
non_strings = json_values.filter(lambda value: not isinstance(value, str))
task_ids = st.one_of(hostile_text, non_strings, st.just(MISSING))
tool_names = st.one_of(st.sampled_from(sorted(TASK_TOOLS | {"plain"})), hostile_text, non_strings)
arguments = st.one_of(
    st.fixed_dictionaries({"n": st.integers(min_value=-(2**40), max_value=2**40)}),
    st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    json_values,
    st.integers(min_value=4070, max_value=4100).map(lambda n: {"pad": "x" * n}),  # the limit
    st.just(MISSING),
)
ttls = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0, -1, 1, 2**63, 10**30, 2.0, 1e300, 1.5, "10", " 5", "1e3", True, False]),
    json_values,
    st.just(MISSING),
)


def _cursor_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


numberish = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.integers(min_value=2**63 - 2, max_value=10**40).map(str),  # past what Redis takes
    st.from_regex(r"[1-9][0-9]{15,300}", fullmatch=True),
    st.sampled_from(["", " 1", "1 ", "+1", "-0", "1_0", "0x10", "1e3", "1.5", "nan", "\u0661"]),
)
cursors = st.one_of(
    hostile_text,
    non_strings.filter(lambda value: value is not None),
    st.binary(max_size=40).map(_cursor_of),
    numberish.map(lambda n: _cursor_of(f"a:{n}:k".encode())),
    st.tuples(st.integers(0, 10**15), hostile_text).map(
        lambda p: _cursor_of(f"a:{p[0]}:{p[1]}".encode(errors="surrogatepass"))
    ),
    st.sampled_from(["a", "o", "p", "a:1", "o:1"]).map(lambda p: _cursor_of(f"{p}:1".encode())),
)


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    """The fuzzing is about the server: memory:// and the real Redis (odd keys reach it);
    the cluster would only add minutes here."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"memory://fuzz-{uuid.uuid4().hex[:8]}"


# -- the arena: one server, the fuzzers' clients, and the bystanders ------------------------


@dataclass
class Arena:
    harness: Harness
    new: Client[Any]
    old: Client[Any]
    bystanders: list[tuple[Client[Any], str, str]]
    """(the creating client, its dialect, the task id): gated tasks that must survive."""

    async def call(self, dialect: str, method: str, params: dict[str, Any], **kw: Any) -> Any:
        """The answer (a dict) or the MCPError; a hang or an internal error fails the test."""
        try:
            async with asyncio.timeout(15):
                if dialect == MODERN:
                    return await modern(self.new, method, dict(params), **kw)
                return await legacy(self.old, method, dict(params))
        except MCPError as error:
            assert error.code not in (-32603, 0), (method, params, error.code, error.error.message)
            assert -32768 <= error.code <= -32000, (method, params, error.code)
            return error

    async def error(self, dialect: str, method: str, params: dict[str, Any], **kw: Any) -> MCPError:
        answer = await self.call(dialect, method, params, **kw)
        assert isinstance(answer, MCPError), (method, params, answer)
        return answer

    async def unharmed(self) -> None:
        """The server answers a normal call in each dialect, and every bystander's task is
        still there, still running, for its creator."""
        plain = await modern(self.new, "tools/call", {"name": "plain", "arguments": {}})
        assert plain["structuredContent"] == {"result": "plain"}
        plain = await legacy(self.old, "tools/call", {"name": "plain", "arguments": {}})
        assert plain["structuredContent"] == {"result": "plain"}
        for client, dialect, task_id in self.bystanders:
            if dialect == MODERN:
                got = await modern(client, "tasks/get", {"taskId": task_id})
            else:
                got = await legacy(client, "tasks/get", {"taskId": task_id})
            assert got["status"] == "working", got


def unset(params: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    if value is not MISSING:
        params[key] = value
    return params


@pytest.fixture
async def arena(url: str, docket_name: str) -> AsyncIterator[Arena]:
    harness = Harness(url, docket_name, max_argument_bytes=4096)
    async with (
        Client(harness.mcp) as new,
        Client(harness.mcp, mode="legacy") as old,
        Client(harness.mcp) as bystander_new,
        Client(harness.mcp, mode="legacy") as bystander_old,
    ):
        gated = {"name": "gated", "arguments": {}}
        made_new = await modern(bystander_new, "tools/call", dict(gated))  # it adds _meta
        made_old = await legacy(bystander_old, "tools/call", {**gated, "task": {}})
        bystanders = [
            (bystander_new, MODERN, made_new["taskId"]),
            (bystander_old, LEGACY, made_old["task"]["taskId"]),
        ]
        arena = Arena(harness, new, old, bystanders)
        await arena.unharmed()
        yield arena
        # After all the fuzzing, the bystanders' tasks run to the end with their results.
        await arena.unharmed()
        harness.release.set()
        await harness.finished(made_new["taskId"])
        got = await modern(bystander_new, "tasks/get", {"taskId": made_new["taskId"]})
        assert got["status"] == "completed"
        assert got["result"]["structuredContent"] == {"result": "through"}
        result = await legacy(bystander_old, "tasks/result", {"taskId": made_old["task"]["taskId"]})
        assert result["structuredContent"] == {"result": "through"}
    await purge(url, docket_name)


# -- tasks/* --------------------------------------------------------------------------------


@FUZZ
@given(
    dialect=st.sampled_from(DIALECTS),
    method=st.sampled_from(["tasks/get", "tasks/cancel", "tasks/update", "tasks/result"]),
    task_id=task_ids,
    responses=st.one_of(
        st.just(MISSING), st.dictionaries(st.text(max_size=5), json_values), json_values
    ),
    junk=st.dictionaries(
        st.text(max_size=8).filter(lambda k: k not in ("taskId", "inputResponses", "_meta")),
        json_values,
        max_size=2,
    ),
)
async def test_hostile_task_ids(
    arena: Arena, dialect: str, method: str, task_id: Any, responses: Any, junk: dict[str, Any]
) -> None:
    """Any id that is not a task of the caller's, of any type or none at all, is -32602 (for
    a string, the very "Unknown task" answer); a method of the other dialect is -32601."""
    params = unset(unset(dict(junk), "taskId", task_id), "inputResponses", responses)
    error = await arena.error(dialect, method, params)
    if dialect not in SERVED[method]:
        assert error.code == METHOD_NOT_FOUND, (method, params)
    else:
        assert error.code == INVALID_PARAMS, (method, params)
        well_formed = (
            method != "tasks/update" or responses is MISSING or isinstance(responses, dict)
        )
        if isinstance(task_id, str) and well_formed:
            assert error.error.message == f"Unknown task: {shown(task_id)}"  # as any unknown id
            assert len(error.error.message) < 100  # a huge id is not echoed back whole
    await arena.unharmed()


@FUZZ
@given(
    method=st.sampled_from(sorted(SERVED)),
    params=st.dictionaries(
        st.sampled_from(["taskId", "cursor", "inputResponses", "x"]), json_values
    ),
)
async def test_modern_tasks_methods_need_the_opt_in(
    arena: Arena, method: str, params: dict[str, Any]
) -> None:
    """Whatever the params: -32021 saying which capability, or -32601 for a removed method."""
    error = await arena.error(MODERN, method, params, opt_in=False)
    if MODERN in SERVED[method]:
        assert error.code == MISSING_CAPABILITY, (method, params, error.error.message)
        assert error.error.data == {"requiredCapabilities": {"extensions": {EXTENSION_ID: {}}}}
    else:
        assert error.code == METHOD_NOT_FOUND, (method, params)
    await arena.unharmed()


@FUZZ
@given(cursor=cursors)
async def test_hostile_list_cursors(arena: Arena, cursor: Any) -> None:
    """tasks/list: a page of the caller's own tasks, or -32602; -32601 in 2026."""
    call = {"name": "crunch", "arguments": {"n": 1}, "task": {}}
    own = (await legacy(arena.old, "tools/call", call))["task"]["taskId"]
    answer = await arena.call(LEGACY, "tasks/list", {"cursor": cursor})
    if isinstance(answer, MCPError):
        assert answer.code == INVALID_PARAMS, cursor
    else:
        assert isinstance(cursor, str), cursor  # only a string can be a cursor
        legacy_conforms("ListTasksResult", answer)
        first_page = await legacy(arena.old, "tasks/list", {})  # under 50: all of them
        listed = {t["taskId"] for t in answer["tasks"]}
        assert listed <= {t["taskId"] for t in first_page["tasks"]} | {own}
        assert not listed & {task_id for _, _, task_id in arena.bystanders}
    removed = await arena.error(MODERN, "tasks/list", {"cursor": cursor})
    assert removed.code == METHOD_NOT_FOUND
    await arena.unharmed()


async def test_valid_cursors_page_and_huge_ones_are_refused(arena: Arena) -> None:
    for ms in (0, 1, 10**6, 10**12):
        for key in ("a", "x" * 200, "ünï:cödé"):
            cursor = encode_cursor(ms, key)
            page = await arena.call(LEGACY, "tasks/list", {"cursor": cursor})
            assert not isinstance(page, MCPError), (ms, key)
            legacy_conforms("ListTasksResult", page)
    for ms, key in [(10**18, "a"), (2**63, "a"), (10**4000, "a"), (1, ""), (1, "a\nb")]:
        cursor = encode_cursor(ms, key)
        error = await arena.error(LEGACY, "tasks/list", {"cursor": cursor})
        assert error.code == INVALID_PARAMS
    await arena.unharmed()


# -- task-augmented tools/call --------------------------------------------------------------


def _arguments_ok(args: Any) -> bool:
    return args is MISSING or args is None or isinstance(args, dict)


def _size(args: Any) -> int:
    """The size the limit is about: the arguments JSON-encoded (UTF-8, compact)."""
    return len(pydantic_core.to_json(args if isinstance(args, dict) else {}))


@FUZZ
@given(
    name=st.one_of(st.sampled_from(sorted(TASK_TOOLS)), tool_names),
    args=arguments,
    ttl=ttls,
    task=st.one_of(st.just({}), json_values),
)
async def test_hostile_legacy_task_calls(
    arena: Arena, name: Any, args: Any, ttl: Any, task: Any
) -> None:
    """2025-11-25: every fault is one of the errors its spec names; no fault, a task."""
    if isinstance(task, dict):
        task = unset(dict(task), "ttl", ttl)
    params = unset({"name": name, "task": task}, "arguments", args)
    faults: set[int] = set()
    if not isinstance(name, str) or not isinstance(task, dict) or not _arguments_ok(args):
        faults.add(INVALID_PARAMS)
    if isinstance(task, dict) and not _integral(task.get("ttl")):
        faults.add(INVALID_PARAMS)
    if isinstance(name, str) and name not in TASK_TOOLS:
        faults.add(METHOD_NOT_FOUND if name == "plain" else INVALID_PARAMS)
    if _size(args) > arena.harness.tasks.config.max_argument_bytes:
        faults.add(INVALID_PARAMS)
    if task is None:
        return  # not task-augmented: the ordinary tools/call, not ours to judge
    answer = await arena.call(LEGACY, "tools/call", params)
    if faults:
        assert isinstance(answer, MCPError), (params, answer)
        assert answer.code in faults, (params, answer.code, answer.error.message)
    else:
        assert not isinstance(answer, MCPError), (params, answer)
        legacy_conforms("CreateTaskResult", answer)
        expected_ttl = arena.harness.tasks.config.actual_ttl_ms(_integral_value(task.get("ttl")))
        assert answer["task"]["ttl"] == expected_ttl, (task, answer)
    await arena.unharmed()


@FUZZ
@given(ttl=ttls, task_junk=st.dictionaries(st.text(max_size=6), json_values, max_size=2))
async def test_hostile_legacy_ttls(arena: Arena, ttl: Any, task_junk: dict[str, Any]) -> None:
    """An integer ttl (ms) is honoured up to the maximum (the default for one below 1);
    anything but an integer is -32602, as the schema says."""
    task = unset({k: v for k, v in task_junk.items() if k != "ttl"}, "ttl", ttl)
    call = {"name": "crunch", "arguments": {"n": 1}, "task": task}
    answer = await arena.call(LEGACY, "tools/call", call)
    if _integral(task.get("ttl")):
        assert not isinstance(answer, MCPError), (task, answer)
        legacy_conforms("CreateTaskResult", answer)
        expected = arena.harness.tasks.config.actual_ttl_ms(_integral_value(task.get("ttl")))
        assert answer["task"]["ttl"] == expected
    else:
        assert isinstance(answer, MCPError) and answer.code == INVALID_PARAMS, (task, answer)
    await arena.unharmed()


def _integral(ttl: Any) -> bool:
    """The schema's ``integer`` (or absent): never true, "5", 5.5 or even 5.0."""
    return ttl is None or (isinstance(ttl, int) and not isinstance(ttl, bool))


def _integral_value(ttl: Any) -> int | None:
    return None if ttl is None else int(ttl)


@FUZZ
@given(name=tool_names, args=arguments)
async def test_hostile_modern_task_calls(arena: Arena, name: Any, args: Any) -> None:
    """2026-07-28 (opted in): a task tool becomes a task, anything else is answered as a plain
    call would be, and malformed params are -32602."""
    params = unset({"name": name}, "arguments", args)
    answer = await arena.call(MODERN, "tools/call", params)
    if not isinstance(name, str) or not _arguments_ok(args):
        assert isinstance(answer, MCPError) and answer.code == INVALID_PARAMS, (params, answer)
    elif name in TASK_TOOLS and _size(args) > arena.harness.tasks.config.max_argument_bytes:
        assert isinstance(answer, MCPError) and answer.code == INVALID_PARAMS, (params, answer)
        assert "too large" in answer.error.message
    elif name in TASK_TOOLS:
        assert not isinstance(answer, MCPError), (params, answer)
        modern_conforms("CreateTaskResult", answer)
    else:  # no such task tool: what fastmcp answers a plain call (isError for an unknown one)
        assert not isinstance(answer, MCPError), (params, answer)
        assert answer.get("resultType") != "task"
        has_args = isinstance(args, dict) and bool(args)
        assert answer.get("isError") is (name != "plain" or has_args), (params, answer)
    await arena.unharmed()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_oversize_arguments_are_refused(arena: Arena, dialect: str) -> None:
    limit = arena.harness.tasks.config.max_argument_bytes
    padding = "x" * (limit - len('{"n":1,"pad":""}'))  # exactly the limit, JSON-encoded
    call: dict[str, Any] = {"name": "crunch", "arguments": {"n": 1, "pad": padding}}
    if dialect == LEGACY:
        call["task"] = {}
    fits = await arena.call(dialect, "tools/call", call)
    assert not isinstance(fits, MCPError), fits
    for extra in ("x", "é" * 10, "x" * 10**6):
        call["arguments"] = {"n": 1, "pad": padding + extra}
        error = await arena.error(dialect, "tools/call", call)
        assert error.code == INVALID_PARAMS
        assert "too large" in error.error.message
    await arena.unharmed()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_flood_of_task_creations(arena: Arena, dialect: str) -> None:
    """Hundreds of concurrent creations: every one is a task, and every task finishes."""
    call: dict[str, Any] = {"name": "crunch", "arguments": {"n": 3}}
    if dialect == LEGACY:
        call["task"] = {"ttl": 60_000}
    answers = await asyncio.gather(*(arena.call(dialect, "tools/call", call) for _ in range(300)))
    errors = [a for a in answers if isinstance(a, MCPError)]
    assert not errors, errors[:3]
    ids = [a["taskId"] if dialect == MODERN else a["task"]["taskId"] for a in answers]
    assert len(set(ids)) == len(ids)
    async with asyncio.timeout(60):
        finals = await asyncio.gather(*(arena.harness.tasks.docket.wait(i) for i in ids))
    assert {f.status.value for f in finals} == {"completed"}
    await arena.unharmed()


@settings(FUZZ, max_examples=20)
@given(answer=json_values, key=st.one_of(st.just(None), hostile_text))
async def test_hostile_answers_to_an_input_request(arena: Arena, answer: Any, key: Any) -> None:
    """tasks/update on the caller's own waiting task: an answer to another key is ignored
    (the request stays open), and any answer to the open key ends the task with a tool
    result, an ``isError`` one when the answer does not fit, never a failed task."""
    call = {"name": "confirm", "arguments": {"path": "/p"}}
    task_id = (await arena.call(MODERN, "tools/call", call))["taskId"]
    async for state in arena.harness.tasks.docket.watch(task_id):
        if state.questions:
            break
    (open_key,) = state.questions
    if key is not None and key != open_key:
        ack = await arena.call(
            MODERN, "tasks/update", {"taskId": task_id, "inputResponses": {key: answer}}
        )
        assert not isinstance(ack, MCPError) and ack["resultType"] == "complete", ack
        got = await arena.call(MODERN, "tasks/get", {"taskId": task_id})
        assert got["status"] == "input_required" and open_key in got["inputRequests"]
        answer = {"action": "decline"}
    await arena.call(
        MODERN, "tasks/update", {"taskId": task_id, "inputResponses": {open_key: answer}}
    )
    await arena.harness.finished(task_id)
    got = await arena.call(MODERN, "tasks/get", {"taskId": task_id})
    assert got["status"] == "completed", got
    if got["result"].get("isError"):
        assert "confirm" in got["result"]["content"][0]["text"]
    else:
        assert got["result"]["structuredContent"]["result"] in ("kept /p", "deleted /p")
    await arena.unharmed()


# -- subscriptions/listen -------------------------------------------------------------------


@FUZZ
@given(
    task_ids=st.one_of(st.lists(hostile_text, max_size=6), json_values),
    opt_in=st.booleans(),
)
async def test_hostile_listen_filters(arena: Arena, task_ids: Any, opt_in: bool) -> None:
    """Unknown ids are never subscribed (and the stream ends at once); a filter that is not
    a list of strings is -32602; without the opt-in, -32021; not a 2025-11-25 method."""
    params = {"notifications": {"taskIds": task_ids}}
    answer = await arena.call(MODERN, "subscriptions/listen", params, opt_in=opt_in)
    if not opt_in:
        assert isinstance(answer, MCPError) and answer.code == MISSING_CAPABILITY, answer
    elif isinstance(task_ids, list) and all(isinstance(t, str) for t in task_ids):
        assert not isinstance(answer, MCPError), answer
    else:
        assert isinstance(answer, MCPError) and answer.code == INVALID_PARAMS, answer
    old = await arena.call(LEGACY, "subscriptions/listen", params)
    assert isinstance(old, MCPError) and old.code == METHOD_NOT_FOUND
    await arena.unharmed()


# -- malformed envelopes over HTTP ----------------------------------------------------------


async def test_malformed_envelopes_over_http(arena: Arena) -> None:
    """What no client library would send: non-object params and ``_meta``, bad JSON. Each is a
    JSON-RPC error (never a 5xx), in both dialects, and the server serves on."""
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {EXTENSION_ID: {}}},
    }
    async with asgi_server(arena.harness.mcp) as server, server.http_client() as http:
        init = await http.post(
            server.url,
            headers=headers,
            json={
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": LEGACY,
                    "capabilities": {},
                    "clientInfo": {"name": "fuzz", "version": "1"},
                },
            },
        )
        session = {"mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": LEGACY}
        await http.post(
            server.url,
            headers={**headers, **session},
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        )
        old = {**headers, **session}
        new = {**headers, "mcp-protocol-version": MODERN}
        bad_caps = {**meta, "io.modelcontextprotocol/clientCapabilities": 5}
        bodies: list[tuple[dict[str, str], Any]] = [
            (old, {"method": "tools/call", "params": [1, 2]}),
            (old, {"method": "tasks/get", "params": "x"}),
            (old, {"method": "tasks/list", "params": {"cursor": 5, "_meta": "x"}}),
            (old, {"method": "tools/call", "params": {"name": "crunch", "task": {}, "_meta": 5}}),
            (old, {"method": "tasks/result", "params": {"taskId": {"$gt": ""}}}),
            (old, b"{not json"),
            (old, b"[]"),
            ({**new, "mcp-method": "tasks/get"}, {"method": "tasks/get", "params": [1]}),
            (
                {**new, "mcp-method": "tasks/get", "mcp-name": "x"},
                {"method": "tasks/get", "params": {"taskId": "x", "_meta": bad_caps}},
            ),
            (
                {**new, "mcp-method": "tools/call", "mcp-name": "crunch"},
                {"method": "tools/call", "params": {"name": "crunch", "_meta": 5}},
            ),
            (new, b"\xff\xfe"),
        ]
        for number, (head, body) in enumerate(bodies, start=1):
            if isinstance(body, bytes):
                response = await http.post(server.url, headers=head, content=body)
            else:
                response = await http.post(
                    server.url, headers=head, json={"jsonrpc": "2.0", "id": number, **body}
                )
            assert response.status_code < 500, (body, response.status_code, response.text)
            error = _error_of(response)
            assert error is not None, (body, response.text)
            assert error["code"] in (-32700, -32600, -32602, -32021), (body, error)
    await arena.unharmed()


def _error_of(response: httpx2.Response) -> dict[str, Any] | None:
    text = response.text
    lines = [line[5:] for line in text.splitlines() if line.startswith("data:")] or [text]
    for line in lines:
        message = json.loads(line)
        if isinstance(message, dict) and "error" in message:
            return message["error"]  # type: ignore[no-any-return]
    return None
