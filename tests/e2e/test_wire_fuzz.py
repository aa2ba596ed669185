"""Property-based fuzzing of real server processes, in raw bytes, in both task dialects.

``fastmcp run tests/processes/fuzz_server.py`` serves every configuration here as its own
process:

- streamable HTTP without auth, on memory:// (2026-07-28 requests, a 2025-11-25 session, a
  2025-06-18 session);
- streamable HTTP with bearer-token auth (two principals, alice and bob), on the real Redis
  under a docket name of its own (its keys are deleted afterwards);
- stdio, one process per protocol version: 2026-07-28 (no handshake: fastmcp's stdio server
  takes 2026-07-28 requests without ``initialize``), 2025-11-25 and 2025-06-18.

Hypothesis writes each request body itself, as bytes: every tasks/* method of each dialect
(and the other dialect's), task-augmented tools/call, subscriptions/listen; lone surrogates
as ``\\ud800`` escapes, control characters, strings up to 100k, non-BMP text; nesting 100-400
levels deep in arguments, params, ``_meta`` and request ids; a wrong JSON type at every field;
forged tasks/list cursors; odd request ids, sent once, twice in a row or twice at once; odd
headers and tokens; task ids of the caller's own tasks (done, running, waiting for input),
of no task, and (with auth) of the other principal's.

Invariants, per response:

- never JSON-RPC code 0, never -32603 (except what tasks/result answers for a task that was
  cancelled or failed: the task's outcome, not a fault; the store-outage -32603 must not
  happen here at all), codes within JSON-RPC's reserved range;
- never HTTP 5xx; JSON bodies are JSON; every request the SDK's parser accepts is answered
  within 20 s (over stdio the SDK drops, unanswered, what it cannot parse: lone surrogates,
  nesting past ~200 levels, ids that are not strings or integers; that is the SDK's
  behaviour, not judged here);
- the server process never dies, and after every example it still serves the caller's own
  tasks (tasks/get of a running and of a waiting one);
- with auth: the other principal's task id answers byte for byte like a random unknown id of
  the same length, alice's tasks stay as they were, and bob's answers never contain alice's
  task ids;
- a connection that negotiated 2025-06-18 (before tasks) gets no tasks: no
  ``capabilities.tasks``, tasks/* and subscriptions/listen are -32601, a tools/call is never
  a task and a task-only tool cannot be called;
- a task call and the plain call of the same tool with the same arguments agree;
- a task whose (2025-11-25) ttl of a few ms runs out while it is asked about answers -32602;
- after the whole run every server still runs a task to completion in each dialect.

One thing is not judged: two requests with the same id in flight at once on one 2025-11-25
HTTP session. The SDK's transport routes answers by id within a session and may never answer
one of them (mcp 2.3, any method, ping included; JSON-RPC forbids the client to do it). They
are still sent; one answer is required, the other is waited for a second only.

Derandomized, no example database: CI sends the same requests on every run. For debugging,
``WIRE_FUZZ_LOG=<file>`` appends every request (with its headers) and answer to a file, and
``WIRE_FUZZ_WITHIN=<seconds>`` changes the 20 s an answer may take.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import secrets
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import mcp_types
import pytest
import redis
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from tests.helpers.dockets import REDIS_URL, purge
from tests.helpers.servers import BIN, ROOT, http_server

MODERN, LEGACY, PRE = "2026-07-28", "2025-11-25", "2025-06-18"
EXTENSION = "io.modelcontextprotocol/tasks"
SERVER_FILE = "tests/processes/fuzz_server.py"
STORE_UNAVAILABLE = "The task store is unavailable right now; try again shortly"
TOKENS = {"alice": "alice-token", "bob": "bob-token"}
ANSWER_WITHIN = float(os.environ.get("WIRE_FUZZ_WITHIN", 20))
TERMINAL = {"completed", "failed", "cancelled"}
SESSION_DUPLICATE_WAIT = 1.0

FUZZ = settings(
    deadline=None,
    derandomize=True,  # the same requests on every run
    database=None,  # and nothing written into the work tree
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)


# -- request bodies as text -----------------------------------------------------------------

MISSING = "\x00missing\x00"
"""A field (or the id, or params) left out altogether."""
AUTO = "\x00auto\x00"
"""The caller's next request id."""
REF = re.compile("\x00ref:(\\w+)\x00")
"""Stands for a task id (or key) known only when the example runs: the caller's own task
(done, running or waiting for input), the other principal's, a fresh unknown one..."""


def ref(kind: str) -> str:
    return f"\x00ref:{kind}\x00"


def dump(value: str, ascii_only: bool = False) -> str:
    """A JSON string. Lone surrogates stay in the str and become ``\\udXXX`` escapes when the
    body is encoded (``backslashreplace`` writes exactly JSON's escape)."""
    return json.dumps(value, ensure_ascii=ascii_only)


def encode(text: str) -> bytes:
    return text.encode("utf-8", "backslashreplace")


def obj(pairs: list[tuple[str, str]]) -> str:
    """A JSON object from (key, JSON text) pairs; MISSING values are left out."""
    return "{" + ", ".join(f"{dump(k)}: {v}" for k, v in pairs if v != MISSING) + "}"


def array(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def deep(levels: int, opener: str, leaf: str = "1") -> str:
    if opener == "{":
        return '{"a": ' * levels + leaf + "}" * levels
    return "[" * levels + leaf + "]" * levels


def body(id_text: str, method: str, params: str) -> bytes:
    parts = ['"jsonrpc": "2.0"']
    if id_text != MISSING:
        parts.append(f'"id": {id_text}')
    parts.append(f'"method": {dump(method)}')
    if params != MISSING:
        parts.append(f'"params": {params}')
    return encode("{" + ", ".join(parts) + "}")


def meta_text(version: str = MODERN, opt_in: bool = True) -> str:
    capabilities: dict[str, Any] = {"extensions": {EXTENSION: {}}} if opt_in else {}
    return json.dumps(
        {
            "io.modelcontextprotocol/protocolVersion": version,
            "io.modelcontextprotocol/clientInfo": {"name": "wire-fuzz", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": capabilities,
        }
    )


OPT_IN, NO_OPT_IN = meta_text(), meta_text(opt_in=False)
_HEADER_SAFE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def header_value(value: str) -> str | None:
    """``Mcp-Name`` as the 2026 clients write it (base64 sentinel for anything unsafe); None
    when the value cannot be UTF-8 at all."""
    if _HEADER_SAFE.fullmatch(value) and not value.startswith("=?base64?"):
        return value
    try:
        return f"=?base64?{base64.b64encode(value.encode()).decode()}?="
    except UnicodeEncodeError:
        return None


# -- strategies -----------------------------------------------------------------------------

SURROGATES = "\ud800\udbff\udc00\udfff"
controls = st.characters(max_codepoint=0x1F) | st.sampled_from("\x7f\x85\u2028\u2029\ufeff\u202e")
with_surrogates = st.tuples(
    st.text(max_size=4), st.sampled_from(SURROGATES), st.text(max_size=4)
).map("".join)
hostile_strings = st.one_of(
    st.text(max_size=12),
    with_surrogates,
    st.text(alphabet=controls, min_size=1, max_size=8),
    st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1, max_size=12),
    st.integers(min_value=257, max_value=100_000).map(lambda n: "x" * n),
    st.integers(min_value=2, max_value=20_000).map(lambda n: "\udfff" * n),
    st.sampled_from(
        ["", " ", "*", "?", "[", "}", "{mcp-tasks}", "../../x", "%s%n", "\\", "\x00", "0" * 32]
    ),
)
strings = st.builds(dump, hostile_strings, st.booleans())
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.sampled_from(["1e999", "-1e999", "1" * 400, "-0", "0.0", "1E+2", "2.0"]),
)
scalars = st.one_of(st.sampled_from(["null", "true", "false"]), numbers, strings)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3).map(array)
        | st.lists(st.tuples(hostile_strings, inner), max_size=3).map(obj)
    ),
    max_leaves=6,
)
deeps = st.builds(deep, st.integers(min_value=100, max_value=400), st.sampled_from("{["))
any_values = st.one_of(values, deeps)
non_strings = any_values.filter(lambda text: not text.startswith('"'))
non_objects = any_values.filter(lambda text: not text.startswith("{"))

OWN_KINDS = ["own_done", "own_running", "own_waiting"]
task_id_refs = st.sampled_from([*OWN_KINDS, "unknown", "foreign"]).map(ref)
task_ids = st.one_of(task_id_refs, with_surrogates.map(dump), strings, non_strings)
maybe = st.just(MISSING)
TOOLS = ["quick", "echo", "gated", "confirm", "broken", "only_task", "plain"]
names = st.one_of(st.sampled_from(TOOLS).map(dump), strings, non_strings, maybe)
arguments = st.one_of(
    st.just("{}"),
    any_values.map(lambda v: obj([("value", v)])),
    strings.map(lambda s: obj([("path", s)])),
    st.integers(min_value=1000, max_value=100_000).map(lambda n: obj([("value", dump("x" * n))])),
    non_objects,
    maybe,
)
ttls = st.one_of(st.integers(min_value=1, max_value=50).map(str), any_values)
legacy_tasks = st.one_of(
    st.just("{}"),
    ttls.map(lambda t: obj([("ttl", t)])),
    st.lists(st.tuples(hostile_strings, any_values), max_size=2).map(obj),
)
answers = st.one_of(
    st.sampled_from(['{"action": "accept", "content": {"value": true}}', '{"action": "decline"}']),
    any_values,
)
input_responses = st.one_of(
    st.just("{}"),
    st.lists(st.tuples(hostile_strings, answers), max_size=3).map(obj),
    answers.map(lambda a: "{" + f"{ref('question')}: {a}" + "}"),
    non_objects,
    maybe,
)
notifications = st.one_of(
    st.lists(task_ids, max_size=4).map(lambda ids: obj([("taskIds", array(ids))])),
    any_values.map(lambda v: obj([("taskIds", v)])),
    st.just("{}"),
    non_objects,
    maybe,
)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


numberish = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.integers(min_value=2**63 - 2, max_value=10**40).map(str),
    st.from_regex(r"[1-9][0-9]{15,300}", fullmatch=True),
    st.sampled_from(["", " 1", "1 ", "+1", "-0", "1_0", "0x10", "1e3", "1.5", "nan", "\u0661"]),
)
cursor_keys = st.one_of(
    st.binary(min_size=16, max_size=16).map(bytes.hex), hostile_strings, st.just("a\nb")
)
cursors = st.one_of(
    st.builds(
        lambda n, k: dump(b64(f"a:{n}:{k}".encode("utf-8", "surrogatepass"))),
        numberish,
        cursor_keys,
    ),
    st.binary(max_size=40).map(lambda raw: dump(b64(raw))),
    st.sampled_from(["a", "o", "p", "", "a:1", "o:1"]).map(lambda p: dump(b64(f"{p}:1".encode()))),
    st.just(ref("foreign_cursor")),  # a well-formed cursor at the other principal's task
    strings,
    non_strings,
    maybe,
)

PARAMS: dict[str, Any] = {
    "tools/call": {"name": names, "arguments": arguments},
    "tasks/get": {"taskId": task_ids | maybe},
    "tasks/cancel": {"taskId": task_ids | maybe},
    "tasks/result": {"taskId": task_ids | maybe},
    "tasks/update": {"taskId": task_ids | maybe, "inputResponses": input_responses},
    "tasks/list": {"cursor": cursors},
    "subscriptions/listen": {"notifications": notifications},
}
METHODS = {
    MODERN: ["tasks/get", "tools/call", "tasks/cancel", "tasks/update", "subscriptions/listen"],
    LEGACY: ["tasks/get", "tools/call", "tasks/result", "tasks/list", "tasks/cancel"],
}
OTHER_DIALECT = ["tasks/result", "tasks/list", "tasks/update", "subscriptions/listen"]

ascii_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40
).map(str.strip)  # what a header value can be at all (h11 refuses edge whitespace)
header_overrides = st.fixed_dictionaries(
    {},
    optional={
        "mcp-method": st.one_of(st.none(), st.sampled_from(sorted(PARAMS)), ascii_text),
        "mcp-name": st.one_of(st.none(), ascii_text, st.just("=?base64?!!?=")),
        "mcp-protocol-version": st.one_of(
            st.none(), st.sampled_from([MODERN, LEGACY, PRE, "2099-01-01"]), ascii_text
        ),
        "mcp-session-id": st.one_of(st.none(), ascii_text),
        "authorization": st.one_of(
            st.none(),
            st.just("Bearer nope"),
            ascii_text.map(lambda text: f"Bearer {text}".strip()),
            ascii_text,
        ),
        "content-type": st.sampled_from(["text/plain", "application/json; charset=latin-1"]),
        "accept": st.sampled_from(["text/event-stream", "application/json", "*/*"]),
    },
)
request_ids = st.one_of(
    st.just(AUTO),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    strings,
    st.sampled_from(["null", "1.0", "true", "[]", "{}", "1e400", MISSING]),
    deeps,
)
modern_metas = st.one_of(
    st.just(OPT_IN),
    st.just(NO_OPT_IN),
    maybe,
    non_objects,
    st.builds(
        lambda version, caps: obj(
            [
                ("io.modelcontextprotocol/protocolVersion", version),
                ("io.modelcontextprotocol/clientInfo", '{"name": "x", "version": "0"}'),
                ("io.modelcontextprotocol/clientCapabilities", caps),
            ]
        ),
        st.one_of(st.just(dump(MODERN)), any_values, maybe),
        st.one_of(
            any_values.map(lambda v: obj([("extensions", v)])),
            any_values.map(lambda v: obj([("extensions", obj([(EXTENSION, v)]))])),
            any_values,
        ),
    ),
)
legacy_metas = st.one_of(maybe, st.just(OPT_IN), any_values)


@st.composite
def fields_of(draw: st.DrawFn, method: str, legacy_call: bool = False) -> list[tuple[str, str]]:
    spec = dict(PARAMS[method])
    if legacy_call:
        spec["task"] = st.one_of(legacy_tasks, any_values, maybe)
    fields = [(key, draw(strategy)) for key, strategy in spec.items()]
    fields += draw(st.lists(st.tuples(hostile_strings, any_values), max_size=1))  # junk
    return fields


@dataclass
class Req:
    method: str
    fields: list[tuple[str, str]] | str
    """The params' fields, or the whole params as JSON text (not an object, or MISSING)."""
    meta: str = MISSING
    id: str = AUTO
    headers: dict[str, str | None] = field(default_factory=dict)
    repeat: str = "once"
    """once, twice (in a row) or concurrent (the same id twice at once)."""


@st.composite
def requests(draw: st.DrawFn, dialect: str) -> Req:
    """One request a caller of ``dialect`` may send, hostile anywhere."""
    version = LEGACY if dialect == PRE else dialect
    method = draw(st.sampled_from(METHODS[version]) | st.sampled_from(OTHER_DIALECT))
    fields = draw(fields_of(method, legacy_call=version == LEGACY and method == "tools/call"))
    whole = draw(st.one_of(st.just(None), non_objects, maybe))
    return Req(
        method=method,
        fields=fields if whole is None else whole,
        meta=draw(modern_metas if version == MODERN else legacy_metas),
        id=draw(request_ids),
        headers=draw(header_overrides),
        repeat=draw(st.sampled_from(["once", "once", "once", "twice", "concurrent"])),
    )


# -- replies --------------------------------------------------------------------------------

NOT_JSON = object()


def loads(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:
        return NOT_JSON


@dataclass
class Reply:
    request: bytes
    method: str
    task_id: str | None
    status: int | None  # HTTP only
    content_type: str
    messages: list[tuple[bytes, Any]]

    @property
    def answer(self) -> dict[str, Any] | None:
        for _, message in reversed(self.messages):
            is_answer = isinstance(message, dict) and "method" not in message
            if is_answer and ("result" in message or "error" in message):
                return message
        return None

    @property
    def result(self) -> Any:
        return (self.answer or {}).get("result")

    @property
    def error(self) -> dict[str, Any] | None:
        error = (self.answer or {}).get("error")
        return error if isinstance(error, dict) else None

    def raw(self) -> list[bytes]:
        return [raw for raw, _ in self.messages]

    def __str__(self) -> str:
        request = self.request
        if len(request) > 1500:
            request = request[:1000] + b" ... " + request[-300:] + b" (%d bytes)" % len(request)
        answers = b"\n  ".join(raw[:1500] for raw, _ in self.messages) or b"(no answer)"
        status = f"HTTP {self.status} " if self.status is not None else ""
        return f"request: {request!r}\n{status}answer:\n  {answers.decode(errors='replace')}"


def parse_http(response: httpx.Response, content: bytes) -> list[tuple[bytes, Any]]:
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("text/event-stream"):
        chunks = [line[5:].strip() for line in content.split(b"\n") if line.startswith(b"data:")]
    else:
        chunks = [content.strip()]
    return [(chunk, loads(chunk)) for chunk in chunks if chunk]


# -- transports -----------------------------------------------------------------------------


class HttpWire:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(timeout=httpx.Timeout(ANSWER_WITHIN, connect=5.0))
        self.pool = ThreadPoolExecutor(2)

    def post(
        self, payload: bytes, headers: dict[str, str], within: float | None = None
    ) -> tuple[httpx.Response, bytes] | None:
        """The response and its whole body, complete within ANSWER_WITHIN (an event stream
        that only sends keep-alives would never time out a read). With ``within``: None when
        no answer came in that time (for what the SDK is known to leave unanswered)."""
        wait = within or ANSWER_WITHIN
        deadline = time.monotonic() + wait
        content = b""
        timeout = httpx.Timeout(wait, connect=5.0)
        try:
            with self.http.stream(
                "POST", self.url, content=payload, headers=headers, timeout=timeout
            ) as response:
                for chunk in response.iter_raw():
                    content += chunk
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("only part of an answer", request=response.request)
        except httpx.TimeoutException:
            if within is not None:
                return None
            pytest.fail(f"no answer within {wait} s to {payload[:3000]!r}")
        except httpx.TransportError as exc:
            pytest.fail(f"no HTTP answer (did the server die?): {exc!r}\n{payload[:3000]!r}")
        return response, content

    def close(self) -> None:
        self.http.close()
        self.pool.shutdown()


class StdioServer:
    """``fastmcp run tests/processes/fuzz_server.py`` over stdio: newline-delimited JSON both ways,
    answers matched to requests by id."""

    def __init__(self, env: dict[str, str]) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - open while the server runs
        self.process = subprocess.Popen(
            [str(BIN / "fastmcp"), "run", SERVER_FILE, "--no-banner"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        self.changed = threading.Condition()
        self.answers: dict[str, list[tuple[bytes, Any]]] = {}
        self.lines: list[tuple[bytes, Any]] = []
        self.checked = 0
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            message = loads(raw)
            with self.changed:
                self.lines.append((raw, message))
                if isinstance(message, dict) and "method" not in message and "id" in message:
                    self.answers.setdefault(key_of(message["id"]), []).append((raw, message))
                self.changed.notify_all()
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    def alive(self) -> None:
        code = self.process.poll()
        if code is not None or self.closed:
            self.log.seek(0)
            tail = self.log.read()[-3000:].decode(errors="replace")
            pytest.fail(f"the stdio server exited ({code}); its stderr ends:\n{tail}")

    def write(self, payload: bytes) -> None:
        self.alive()
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(payload + b"\n")
            self.process.stdin.flush()
        except OSError:
            self.alive()
            raise

    def count(self, key: str) -> int:
        with self.changed:
            return len(self.answers.get(key, []))

    def wait(self, key: str, count: int) -> list[tuple[bytes, Any]]:
        with self.changed:
            self.changed.wait_for(
                lambda: len(self.answers.get(key, [])) >= count or self.closed, ANSWER_WITHIN
            )
            return list(self.answers.get(key, []))

    def unchecked(self) -> list[tuple[bytes, Any]]:
        """Every line written since the last call: answers to requests whose ids repeat, and
        notifications, are judged here too."""
        with self.changed:
            lines, self.checked = self.lines[self.checked :], len(self.lines)
        return lines

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(15)
        self.log.close()


def key_of(request_id: Any) -> str:
    return json.dumps(request_id, sort_keys=True)


def sdk_request_id(payload: bytes) -> tuple[bool, Any]:
    """Whether the SDK's stdio transport parses these bytes as a request (it drops anything
    it cannot parse, and notifications get no answer), and the id it reads."""
    try:
        message = mcp_types.jsonrpc_message_adapter.validate_json(
            payload.decode("utf-8", "replace"), by_name=False
        )
    except Exception:
        return False, None
    if isinstance(message, mcp_types.JSONRPCRequest):
        return True, message.id
    return False, None


# -- callers --------------------------------------------------------------------------------


class Caller:
    """One client connection speaking one protocol version, as one principal (or none)."""

    def __init__(self, version: str, token: str | None = None) -> None:
        self.version = version
        self.token = token
        self.numbers = itertools.count(1_000_000_000)
        self.own: dict[str, str] = {}
        self.question = "q"
        self.foreign: list[str] = []
        """The other principal's task ids: never in an answer to this caller."""
        self.initialized: dict[str, Any] = {}

    # transport specifics
    def transmit(self, req: Req, payload: bytes, headers: dict[str, str]) -> list[Reply]:
        raise NotImplementedError

    def alive(self) -> None:
        raise NotImplementedError

    def stray_lines(self) -> list[tuple[bytes, Any]]:
        return []

    @property
    def dialect(self) -> str:
        return self.version

    def open(self) -> None:
        if self.version == MODERN:
            return
        init = {
            "protocolVersion": self.version,
            "capabilities": {},
            "clientInfo": {"name": "wire-fuzz", "version": "0"},
        }
        reply = self.send(Req("initialize", json.dumps(init)))
        assert isinstance(reply.result, dict), f"{reply}"
        self.initialized = reply.result
        self.after_initialize(reply)
        self.notify("notifications/initialized")

    def after_initialize(self, reply: Reply) -> None:
        pass

    def notify(self, method: str) -> None:
        raise NotImplementedError

    def headers(self, method: str, name: str | None) -> dict[str, str]:
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
        }
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        if self.version == MODERN:
            headers["mcp-protocol-version"] = MODERN
            headers["mcp-method"] = method
            value = header_value(name) if name is not None else None
            if value is not None:
                headers["mcp-name"] = value
        return headers

    def resolve(self, text: str, method: str) -> str:
        """Task ids the example could only name (``ref(...)``) become real ones."""

        def one(match: re.Match[str]) -> str:
            kind = match[1]
            blocking = kind in ("own_running", "own_waiting") and (
                method == "tasks/result" or method == "subscriptions/listen"
            )
            if blocking:
                kind = "own_done"  # it would be held open until the task ends (minutes)
            if kind in self.own:
                return dump(self.own[kind])
            if kind == "foreign" and self.foreign:
                return dump(self.foreign[len(text) % len(self.foreign)])
            if kind == "foreign_cursor" and self.foreign:
                position = f"a:{int(time.time() * 1000)}:{self.foreign[0]}"
                return dump(b64(position.encode()))
            if kind == "question":
                return dump(self.question)
            return dump(secrets.token_hex(16))

        return REF.sub(one, text)

    def send(self, req: Req) -> Reply:
        replies = self.send_all(req)
        return replies[-1]

    def send_all(self, req: Req) -> list[Reply]:
        resolved: dict[str, str] = {}
        if isinstance(req.fields, str):
            params = req.fields
        else:
            pairs = [(key, self.resolve(value, req.method)) for key, value in req.fields]
            resolved = dict(pairs)
            if req.meta != MISSING:
                pairs.insert(0, ("_meta", req.meta))
            params = obj(pairs)
        name = string_in(resolved.get("name" if req.method == "tools/call" else "taskId"))
        id_text = str(next(self.numbers)) if req.id == AUTO else req.id
        payload = body(id_text, req.method, params)
        headers = self.headers(req.method, name)
        for header, value in req.headers.items():
            if value is None:
                headers.pop(header, None)
            else:
                headers[header] = value
        with contextlib.suppress(InvalidArgument):  # outside an example: nothing to note
            note(f"{self.version} request: {payload[:3000]!r}")
        if os.environ.get("WIRE_FUZZ_LOG"):
            with open(os.environ["WIRE_FUZZ_LOG"], "a") as log:
                log.write(f"--> {payload[:3000]!r} {headers}\n")
        replies = self.transmit(req, payload, headers)
        if os.environ.get("WIRE_FUZZ_LOG"):
            with open(os.environ["WIRE_FUZZ_LOG"], "a") as log:
                for reply in replies:
                    log.write(f"=== {self.version} {req.method}\n{reply}\n")
        strays = self.stray_lines()  # taken now: a failure below must not leave them behind
        for reply in replies:
            reply.method, reply.task_id = req.method, string_in(resolved.get("taskId"))
            self.check(reply)
        for raw, message in strays:
            check_error(message, f"a line the server wrote: {raw[:2000]!r}")
        return replies

    def call(self, method: str, fields: list[tuple[str, str]], **kw: Any) -> Reply:
        """A well-formed request of this caller's dialect."""
        meta = OPT_IN if self.version == MODERN else MISSING
        return self.send(Req(method, fields, meta=kw.pop("meta", meta), **kw))

    # invariants
    def check(self, reply: Reply) -> None:
        where = str(reply)
        if reply.status is not None:
            assert reply.status < 500, f"HTTP {reply.status}\n{where}"
            if reply.content_type.startswith(("application/json", "text/event-stream")):
                for _, message in reply.messages:
                    assert message is not NOT_JSON, f"an answer that is not JSON\n{where}"
        for raw, message in reply.messages:
            if check_error(message, where) == -32603 and not self.task_outcome(reply):
                internal_error(reply)
            for foreign in self.foreign:
                if foreign.encode() in raw:
                    assert foreign.encode() in reply.request, f"{foreign} leaked\n{where}"

    def task_outcome(self, reply: Reply) -> bool:
        """tasks/result answers a cancelled or failed task's outcome as its error (2025-11-25:
        the error the request would have had); that is not a fault of the server."""
        task_id, error = reply.task_id, reply.error or {}
        if reply.method != "tasks/result" or self.version != LEGACY or task_id is None:
            return False
        if error.get("message") == f"Task {task_id} was cancelled":
            return True
        got = self.call("tasks/get", [("taskId", dump(task_id))])
        return isinstance(got.result, dict) and got.result.get("status") in ("failed", "cancelled")

    # tasks
    def create(self, tool: str, arguments: str = "{}", task: str = "{}") -> Reply:
        fields = [("name", dump(tool)), ("arguments", arguments)]
        if self.version == LEGACY:
            fields.append(("task", task))
        return self.call("tools/call", fields)

    def task_id_of(self, created: Reply) -> str | None:
        result = created.result
        if not isinstance(result, dict):
            return None
        if self.version == MODERN:
            task_id = result.get("taskId") if result.get("resultType") == "task" else None
        else:
            task_id = (result.get("task") or {}).get("taskId")
        return task_id if isinstance(task_id, str) else None

    def new_task(self, tool: str, arguments: str = "{}", task: str = "{}") -> str:
        created = self.create(tool, arguments, task)
        task_id = self.task_id_of(created)
        assert task_id is not None, f"no task for a {tool} call\n{created}"
        return task_id

    def get(self, task_id: str) -> dict[str, Any]:
        got = self.call("tasks/get", [("taskId", dump(task_id))])
        assert isinstance(got.result, dict), f"{got}"
        return got.result

    def until(self, task_id: str, *statuses: str) -> dict[str, Any]:
        deadline = time.monotonic() + ANSWER_WITHIN
        while True:
            got = self.get(task_id)
            if got["status"] in statuses:
                return got
            assert time.monotonic() < deadline, f"task {task_id} is still {got}"
            time.sleep(0.02)

    def final(self, task_id: str) -> dict[str, Any]:
        """The task's end: status, and its result (a CallToolResult) or error."""
        got = self.until(task_id, *TERMINAL)
        if self.version == MODERN:
            return {k: got.get(k) for k in ("status", "result", "error")}
        answer = self.call("tasks/result", [("taskId", dump(task_id))])
        return {"status": got["status"], "result": answer.result, "error": answer.error}

    def prepare(self) -> None:
        """The caller's own tasks the fuzzing refers to: one done, one running for ten
        minutes, one waiting for input."""
        self.own["own_done"] = self.new_task("quick")
        assert self.final(self.own["own_done"])["status"] == "completed"
        self.refresh()

    def refresh(self) -> None:
        """The server is up, and the caller's running and waiting tasks are still running and
        waiting (new ones when the fuzzing cancelled or answered them)."""
        self.alive()
        if self.version == PRE:
            ping = self.send(Req("ping", "{}"))
            assert ping.result is not None, f"{ping}"
            return
        if "own_running" not in self.own or self.get(self.own["own_running"])["status"] != (
            "working"
        ):
            self.own["own_running"] = self.new_task("gated", '{"seconds": 600}')
        waiting = self.own.get("own_waiting")
        got = self.get(waiting) if waiting else {}
        if got.get("status") != "input_required":
            self.own["own_waiting"] = waiting = self.new_task("confirm", '{"path": "/p"}')
            got = self.until(waiting, "input_required")
        if self.version == MODERN:
            (self.question,) = got["inputRequests"]


LONE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def internal_error(reply: Reply) -> None:
    """Fail for a -32603, from one line per kind of request, so that hypothesis tells the
    kinds apart: it reports (and shrinks) each failing line on its own."""
    if LONE_SURROGATE.search(reply.request):
        raise AssertionError(f"-32603 for a request with a lone surrogate\n{reply}")
    if nesting(reply.request) > 100:
        raise AssertionError(f"-32603 for a deeply nested request\n{reply}")
    raise AssertionError(f"-32603 for a request\n{reply}")


def nesting(text: bytes) -> int:
    """How deep the JSON text nests (outside strings)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


def must(answered: Any) -> Any:
    assert answered is not None  # without ``within``, a missing answer has failed already
    return answered


def string_in(text: str | None) -> str | None:
    """The str a JSON text fragment holds, if it is a JSON string."""
    if text is None or text == MISSING:
        return None
    value = loads(encode(text))
    return value if isinstance(value, str) else None


def check_error(message: Any, where: str) -> int | None:
    """The invariants of any JSON-RPC error; returns its code."""
    if not isinstance(message, dict) or "error" not in message or "jsonrpc" not in message:
        return None
    error = message["error"]
    assert isinstance(error, dict), f"error is not an object\n{where}"
    code = error.get("code")
    assert isinstance(code, int) and not isinstance(code, bool), f"code {code!r}\n{where}"
    assert code != 0, f"error code 0\n{where}"
    assert error.get("message") != STORE_UNAVAILABLE, f"a store outage?\n{where}"
    assert -32768 <= code <= -32000, f"error code {code} outside JSON-RPC's range\n{where}"
    return code


class HttpCaller(Caller):
    def __init__(self, wire: HttpWire, version: str, token: str | None = None) -> None:
        super().__init__(version, token)
        self.wire = wire
        self.session: str | None = None

    def alive(self) -> None:
        pass  # a dead server is a failed request (no answer)

    def headers(self, method: str, name: str | None) -> dict[str, str]:
        headers = super().headers(method, name)
        if self.session:
            headers["mcp-protocol-version"] = self.version
            headers["mcp-session-id"] = self.session
        return headers

    def after_initialize(self, reply: Reply) -> None:
        assert self.session, f"{reply}"

    def post(
        self, req: Req, payload: bytes, headers: dict[str, str], within: float | None = None
    ) -> Reply | None:
        answered = self.wire.post(payload, headers, within)
        if answered is None:
            return None
        response, content = answered
        if req.method == "initialize":
            self.session = response.headers.get("mcp-session-id")
        return Reply(
            payload,
            req.method,
            None,
            response.status_code,
            response.headers.get("content-type", ""),
            parse_http(response, content),
        )

    def transmit(self, req: Req, payload: bytes, headers: dict[str, str]) -> list[Reply]:
        if req.repeat == "once":
            return [must(self.post(req, payload, headers))]
        if req.repeat == "twice":
            return [must(self.post(req, payload, headers)), must(self.post(req, payload, headers))]
        # The SDK's streamable HTTP routes answers by request id within a session: of two
        # requests in flight at once with the same id, one may never be answered (mcp 2.3,
        # any method, ping included). JSON-RPC and MCP forbid a client to reuse an id that
        # way; the fuzzer still sends them (they must not harm the server or others), but
        # does not wait long for that lost answer.
        within = SESSION_DUPLICATE_WAIT if headers.get("mcp-session-id") else None
        both = [self.wire.pool.submit(self.post, req, payload, headers, within) for _ in "ab"]
        replies = [reply for future in both if (reply := future.result()) is not None]
        assert replies, f"neither of two requests with the same id was answered: {payload!r}"
        return replies

    def notify(self, method: str) -> None:
        headers = self.headers(method, None)
        payload = encode(f'{{"jsonrpc": "2.0", "method": "{method}"}}')
        response, _ = must(self.wire.post(payload, headers))
        assert response.status_code < 300, response


class StdioCaller(Caller):
    """The one connection of a stdio server process."""

    def __init__(self, server: StdioServer, version: str) -> None:
        super().__init__(version)
        self.server = server

    def alive(self) -> None:
        self.server.alive()

    def stray_lines(self) -> list[tuple[bytes, Any]]:
        return self.server.unchecked()

    def transmit(self, req: Req, payload: bytes, headers: dict[str, str]) -> list[Reply]:
        answered, request_id = sdk_request_id(payload)
        times = 1 if req.repeat == "once" else 2
        if not answered:  # dropped by the transport, or a notification: nothing comes back
            for _ in range(times):
                self.server.write(payload)
            self.sync()
            return [Reply(payload, req.method, None, None, "", [])]
        key = key_of(request_id)
        before = self.server.count(key)
        if req.repeat == "twice":
            self.server.write(payload)
            self.server.wait(key, before + 1)
            self.server.write(payload)
        else:
            for _ in range(times):
                self.server.write(payload)
        got = self.server.wait(key, before + times)[before:]
        if len(got) < times:
            self.alive()
            pytest.fail(f"no answer within {ANSWER_WITHIN} s over stdio to {payload[:2000]!r}")
        return [Reply(payload, req.method, None, None, "", [answer]) for answer in got]

    def sync(self) -> None:
        """A ping, answered: the server has read everything written before it."""
        number = next(self.numbers)
        self.server.write(encode(f'{{"jsonrpc": "2.0", "id": {number}, "method": "ping"}}'))
        if not self.server.wait(key_of(number), 1):
            self.alive()
            pytest.fail(f"the stdio server did not answer a ping within {ANSWER_WITHIN} s")

    def notify(self, method: str) -> None:
        self.server.write(encode(f'{{"jsonrpc": "2.0", "method": "{method}"}}'))


# -- the servers ----------------------------------------------------------------------------

WHERE = ["http", "auth", "stdio"]
"""HTTP without auth (memory://), HTTP with bearer auth (Redis), stdio (memory://)."""
CONFIGS = [f"{where}-{dialect}" for where in WHERE for dialect in ("modern", "legacy")]
VERSIONS = {"modern": MODERN, "legacy": LEGACY, "pre": PRE}


class World:
    """Every server process of the module, started once, and the callers on them."""

    def __init__(self) -> None:
        if not (BIN / "fastmcp").exists():
            pytest.fail(f"no fastmcp executable next to {BIN / 'python'}")
        if not (ROOT / SERVER_FILE).exists():
            pytest.fail(f"{SERVER_FILE} is missing")
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            pytest.fail(f"the wire fuzzer needs the Redis at {REDIS_URL}: {exc}")
        self.docket_name = f"wire-fuzz-{uuid.uuid4().hex[:10]}"
        memory = {"MCP_TASKS_URL": "memory://", "FUZZ_AUTH": "0"}
        on_redis = {
            "MCP_TASKS_URL": REDIS_URL,
            "MCP_TASKS_NAME": self.docket_name,
            "FUZZ_AUTH": "1",
        }
        self.stack = contextlib.ExitStack()
        self.stdio = {dialect: StdioServer(memory) for dialect in VERSIONS}
        for server in self.stdio.values():
            self.stack.callback(server.stop)
        contexts = {
            "http": http_server(SERVER_FILE, memory),
            "auth": http_server(SERVER_FILE, on_redis),
        }
        with ThreadPoolExecutor(2) as pool:  # start both while the stdio servers start too
            futures = {where: pool.submit(context.__enter__) for where, context in contexts.items()}
        self.wires: dict[str, HttpWire] = {}
        for where, future in futures.items():
            if future.exception() is None:
                self.stack.push(contexts[where].__exit__)
                self.wires[where] = HttpWire(future.result())
                self.stack.callback(self.wires[where].close)
        for future in futures.values():
            future.result()  # raises the failure of a server that did not start
        self.callers: dict[str, Caller] = {}
        self.alices: list[str] = []

    def caller(self, name: str) -> Caller:
        """``<where>-<dialect>`` (bob's, with auth), or ``alice-<dialect>``."""
        if name not in self.callers:
            where, dialect = name.split("-")
            version = VERSIONS[dialect]
            caller: Caller
            if where == "stdio":
                caller = StdioCaller(self.stdio[dialect], version)
            else:
                token = {"http": None, "auth": TOKENS["bob"], "alice": TOKENS["alice"]}[where]
                caller = HttpCaller(
                    self.wires["http" if where == "http" else "auth"], version, token
                )
            caller.open()
            if version != PRE:
                caller.prepare()
            if where == "auth":
                caller.foreign = self.alice_tasks()
            self.callers[name] = caller
        return self.callers[name]

    def alice_tasks(self) -> list[str]:
        """Alice's tasks of every kind, from both dialects: running, waiting for input,
        completed, failed-as-tool-error, cancelled."""
        if self.alices:
            return self.alices
        modern, legacy = self.caller("alice-modern"), self.caller("alice-legacy")
        cancelled = modern.new_task("gated", '{"seconds": 600}')
        modern.call("tasks/cancel", [("taskId", dump(cancelled))])
        broken = modern.new_task("broken")
        modern.final(broken)
        self.alices = [*modern.own.values(), *legacy.own.values(), cancelled, broken]
        return self.alices

    def close(self) -> None:
        try:
            self.stack.close()
        finally:
            asyncio.run(purge(REDIS_URL, self.docket_name))


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    started = World()
    try:
        yield started
    finally:
        started.close()


# -- the properties -------------------------------------------------------------------------


def not_blocking(req: Req, version: str) -> Req:
    """A plain (not task) call of the slow or the eliciting tool would hold the request open
    for 30 s or forever: call the quick one instead, unless it surely becomes a task."""
    if req.method != "tools/call" or isinstance(req.fields, str):
        return req
    fields = dict(req.fields)
    if fields.get("name") not in (dump("gated"), dump("confirm")):
        return req
    if version == MODERN:
        as_task = req.meta == OPT_IN and "mcp-protocol-version" not in req.headers
    else:
        as_task = fields.get("task", MISSING).startswith("{") and req.meta == MISSING
        as_task = as_task and "mcp-protocol-version" not in req.headers
    if as_task:
        return req
    renamed = [(k, dump("quick") if k == "name" else v) for k, v in req.fields]
    return Req(req.method, renamed, req.meta, req.id, req.headers, req.repeat)


@pytest.mark.parametrize("config", CONFIGS)
def test_any_single_request(world: World, config: str) -> None:
    """Any request of the dialect (and the other dialect's methods), any field hostile."""
    caller = world.caller(config)

    @fuzz(150)
    @given(req=requests(caller.dialect))
    def run(req: Req) -> None:
        caller.send_all(not_blocking(req, caller.dialect))
        caller.refresh()

    run()


OPS = {
    MODERN: ["get", "cancel", "update", "answer", "listen"],
    LEGACY: ["get", "cancel", "result", "list"],
}


@st.composite
def lifecycles(draw: st.DrawFn, version: str) -> dict[str, Any]:
    return {
        "tool": draw(
            st.sampled_from(["gated", "confirm", "quick", "echo", "broken", "only_task", "plain"])
        ),
        "arguments": draw(arguments),
        "task": draw(
            st.integers(min_value=1, max_value=2).map(lambda n: f'{{"ttl": {n}}}') | legacy_tasks
        ),
        "ops": draw(
            st.lists(
                st.tuples(st.sampled_from(OPS[version]), st.sampled_from([0, 0.003, 0.03])),
                min_size=1,
                max_size=4,
            )
        ),
        "answer": draw(answers),
        "cursor": draw(cursors),
    }


@pytest.mark.parametrize("config", CONFIGS)
def test_task_lifecycles(world: World, config: str) -> None:
    """A task of any tool, with any arguments (and any ttl, 2025-11-25), then requests about
    it in any order, at any pace: its id stays answered per the rules above even as it
    ends, is cancelled, is answered or expires."""
    caller = world.caller(config)
    version = caller.version

    @fuzz(60)
    @given(case=lifecycles(version))
    def run(case: dict[str, Any]) -> None:
        tool = case["tool"]
        if tool in ("gated", "confirm"):  # arguments they run with: no early failure
            case["arguments"] = '{"seconds": 600}' if tool == "gated" else '{"path": "/p"}'
        created = caller.create(tool, case["arguments"], case["task"])
        task_id = caller.task_id_of(created) or secrets.token_hex(16)
        blocking = tool in ("gated", "confirm")
        for op, pause in case["ops"]:
            time.sleep(pause)
            which = [("taskId", dump(task_id))]
            if op in ("result", "listen") and blocking:
                op = "get"  # held open until the task ends: minutes
            if op == "cancel":
                blocking = False
            if op == "list":
                caller.call("tasks/list", [("cursor", case["cursor"])])
                caller.call("tasks/list", [])
            elif op == "update":
                caller.call("tasks/update", [*which, ("inputResponses", "{}")])
            elif op == "answer":
                got = caller.call("tasks/get", which).result or {}
                keys = list(got.get("inputRequests") or ["q"])
                answer = obj([(keys[0], case["answer"])])
                caller.call("tasks/update", [*which, ("inputResponses", answer)])
                blocking = blocking and tool != "confirm"
            elif op == "listen":
                caller.call(
                    "subscriptions/listen",
                    [("notifications", obj([("taskIds", array([dump(task_id)]))]))],
                )
            else:
                caller.call(f"tasks/{op}", which)
        caller.refresh()

    run()


@pytest.mark.parametrize("config", [c for c in CONFIGS if c.endswith("legacy")])
def test_tasks_that_expire_while_asked_about(world: World, config: str) -> None:
    """2025-11-25 lets the caller choose a task's ttl: with one of a few ms the task's record
    vanishes while requests about it are being handled. Each answer is the task, or -32602
    (an unknown task), or tasks/result's outcome of a cancelled task; never code 0."""
    caller = world.caller(config)

    @fuzz(30)
    @given(
        tool=st.sampled_from(["gated", "quick", "confirm"]),
        ttl=st.integers(min_value=1, max_value=5),
        ops=st.lists(
            st.tuples(
                st.sampled_from(["cancel", "result", "get"]), st.sampled_from([0, 0.001, 0.005])
            ),
            min_size=1,
            max_size=3,
        ),
    )
    def run(tool: str, ttl: int, ops: list[tuple[str, float]]) -> None:
        arguments = {"gated": '{"seconds": 600}', "confirm": '{"path": "/p"}'}.get(tool, "{}")
        task_id = caller.new_task(tool, arguments, task=f'{{"ttl": {ttl}}}')
        blocking = tool != "quick"
        for op, pause in ops:
            time.sleep(pause)
            if op == "result" and blocking:
                op = "get"  # held open until the task ends: minutes
            blocking = blocking and op != "cancel"
            reply = caller.call(f"tasks/{op}", [("taskId", dump(task_id))])
            if reply.error is not None:
                assert reply.error["code"] in (-32602, -32603), f"{reply}"  # -32603: outcome only

    run()


@pytest.mark.parametrize("config", CONFIGS)
def test_a_task_call_runs_like_the_plain_call(world: World, config: str) -> None:
    """The same tool and arguments, once as a task and once plainly, end alike: the same
    result, or the same error code (over stdio: both unanswered, or both answered)."""
    caller = world.caller(config)
    version = caller.version

    @fuzz(50)
    @given(value=any_values | strings, tool=st.sampled_from(["echo", "quick"]))
    def run(value: str, tool: str) -> None:
        args = obj([("value", value)]) if tool == "echo" else "{}"
        fields = [("name", dump(tool)), ("arguments", args)]
        plain = caller.call("tools/call", fields, meta=NO_OPT_IN if version == MODERN else MISSING)
        created = caller.create(tool, args)
        task_id = caller.task_id_of(created)
        if plain.answer is None:
            assert created.answer is None, f"{created}\nthe plain call: {plain}"
            return
        if plain.error is not None:
            assert created.error is not None, f"{created}\nthe plain call: {plain}"
            assert created.error["code"] == plain.error["code"], f"{created}\nplain: {plain}"
            return
        assert task_id is not None, f"no task, though the plain call ran\n{created}\n{plain}"
        end = caller.final(task_id)
        assert end["status"] == "completed", f"{end}\nthe plain call: {plain}"
        as_task, as_plain = end["result"] or {}, plain.result
        for key in ("content", "structuredContent", "isError"):
            assert as_task.get(key) == as_plain.get(key), f"{key}: {as_task} != {as_plain}"

    run()


@pytest.mark.parametrize("where", ["http", "stdio"])
def test_a_connection_before_tasks_is_offered_none(world: World, where: str) -> None:
    caller = world.caller(f"{where}-pre")
    assert caller.initialized.get("protocolVersion") == PRE, caller.initialized
    assert "tasks" not in (caller.initialized.get("capabilities") or {}), caller.initialized


REFUSED_BEFORE_DISPATCH = (-32700, -32600)
"""Unparseable, or not a request at all: refused before any method is looked at."""


@pytest.mark.parametrize("where", ["http", "stdio"])
def test_a_connection_before_tasks_has_no_task_methods(world: World, where: str) -> None:
    """2025-06-18 has no tasks: whatever a request carries (the 2026 opt-in included), every
    tasks/* method and subscriptions/listen is -32601."""
    caller = world.caller(f"{where}-pre")

    @fuzz(40)
    @given(
        method=st.sampled_from(sorted(set(PARAMS) - {"tools/call"})),
        data=st.data(),
        meta=st.sampled_from([MISSING, OPT_IN, NO_OPT_IN]),
    )
    def run(method: str, data: st.DataObject, meta: str) -> None:
        # Well-formed params (hostile ones are the other tests' business): what reaches the
        # dispatch gate.
        task_id = data.draw(st.one_of(task_id_refs, st.text(max_size=10).map(dump)))
        fields = {
            "tasks/update": [("taskId", task_id), ("inputResponses", "{}")],
            "tasks/list": [("cursor", data.draw(st.sampled_from([MISSING, '"YTox"'])))],
            "subscriptions/listen": [("notifications", obj([("taskIds", array([task_id]))]))],
        }.get(method, [("taskId", task_id)])
        reply = caller.send(Req(method, fields, meta=meta))
        if reply.answer is None and reply.status is None:
            return  # over stdio, what the SDK could not parse
        code = reply.error["code"] if reply.error is not None else None
        if meta == OPT_IN:
            assert code in (-32601, *REFUSED_BEFORE_DISPATCH), f"served, opted in:\n{reply}"
        else:
            assert code in (-32601, *REFUSED_BEFORE_DISPATCH), f"served:\n{reply}"
        caller.refresh()

    run()


@pytest.mark.parametrize("where", ["http", "stdio"])
def test_a_connection_before_tasks_never_makes_a_task(world: World, where: str) -> None:
    """2025-06-18 has no tasks: a tools/call (with ``task``, the 2026 opt-in, anything) is
    never a task, and a tool that runs only as a task cannot be called."""
    caller = world.caller(f"{where}-pre")

    @fuzz(30)
    @given(
        tool=st.sampled_from(["only_task", "quick", "echo", "broken"]),
        data=st.data(),
        meta=st.sampled_from([MISSING, OPT_IN, NO_OPT_IN]),
    )
    def run(tool: str, data: st.DataObject, meta: str) -> None:
        fields = data.draw(fields_of("tools/call", legacy_call=True))
        fields = [("name", dump(tool)), *[(k, v) for k, v in fields if k != "name"]]
        reply = caller.send(Req("tools/call", fields, meta=meta))
        result = reply.result
        if isinstance(result, dict):
            assert "task" not in result, f"a task:\n{reply}"
            assert result.get("resultType") != "task", f"a task, 2026-style:\n{reply}"
        if tool == "only_task" and (reply.answer is not None or reply.status is not None):
            assert reply.error is not None, f"a task-only tool ran\n{reply}"
            allowed = (-32601, -32602, *REFUSED_BEFORE_DISPATCH)
            assert reply.error["code"] in allowed, f"{reply}"
        caller.refresh()

    run()


@pytest.mark.parametrize("dialect", ["modern", "legacy"])
def test_another_principals_task_is_an_unknown_id(world: World, dialect: str) -> None:
    """Bob, naming one of alice's tasks in any request, gets exactly the bytes he gets for a
    random id of the same length (but that id), and alice's tasks stay as they were."""
    bob = world.caller(f"auth-{dialect}")
    alice = world.caller("alice-modern")
    version = bob.version
    methods = {
        MODERN: ["tasks/get", "tasks/cancel", "tasks/update", "subscriptions/listen"],
        LEGACY: ["tasks/get", "tasks/cancel", "tasks/result"],
    }[version]

    @fuzz(80)
    @given(
        method=st.sampled_from(methods),
        which=st.integers(min_value=0, max_value=len(bob.foreign) - 1),
        responses=input_responses,
        meta=st.one_of(st.just(OPT_IN), modern_metas) if version == MODERN else legacy_metas,
        headers=st.fixed_dictionaries(
            {}, optional={"mcp-name": st.one_of(st.none(), ascii_text, st.just("<id>"))}
        ),
    )
    def run(method: str, which: int, responses: str, meta: str, headers: dict[str, Any]) -> None:
        theirs, unknown = bob.foreign[which], secrets.token_hex(16)
        # bob answers alice's real question (ref("question")), should it ever reach her task
        bob.question = next(iter(alice.get(alice.own["own_waiting"])["inputRequests"]))
        answers: list[Reply] = []
        number = str(next(bob.numbers))
        for task_id in (theirs, unknown):
            if method == "subscriptions/listen":
                fields = [("notifications", obj([("taskIds", array([dump(task_id)]))]))]
            else:
                fields = [("taskId", dump(task_id))]
            if method == "tasks/update":
                fields.append(("inputResponses", responses))
            named = {k: (task_id if v == "<id>" else v) for k, v in headers.items()}
            answers.append(bob.send(Req(method, fields, meta=meta, id=number, headers=named)))
        mine, other = answers
        assert mine.status == other.status, f"{mine}\n---- an unknown id:\n{other}"
        assert [raw.replace(theirs.encode(), unknown.encode()) for raw in mine.raw()] == (
            other.raw()
        ), f"{mine}\n---- an unknown id:\n{other}"
        assert alice.get(alice.own["own_running"])["status"] == "working"
        assert alice.get(alice.own["own_waiting"])["status"] == "input_required"
        assert alice.get(alice.own["own_done"])["status"] == "completed"

    run()


def test_another_principal_lists_none_of_alices_tasks(world: World) -> None:
    """tasks/list (2025-11-25) with any cursor, the forged ones pointing into alice's tasks
    included: bob sees his own tasks only (the leak check runs on every answer)."""
    bob = world.caller("auth-legacy")

    @fuzz(30)
    @given(cursor=cursors)
    def run(cursor: str) -> None:
        reply = bob.call("tasks/list", [("cursor", cursor)])
        if isinstance(reply.result, dict):
            for task in reply.result.get("tasks", []):
                assert task["taskId"] not in bob.foreign, f"{reply}"

    run()


@pytest.mark.parametrize("config", [*CONFIGS, "alice-modern", "alice-legacy"])
def test_zz_every_server_still_runs_a_task_to_completion(world: World, config: str) -> None:
    """Last: after all of the above, each server runs a task to its end in each dialect."""
    caller = world.caller(config)
    caller.alive()
    task_id = caller.new_task("echo", '{"value": "after the fuzzing"}')
    end = caller.final(task_id)
    assert end["status"] == "completed", end
    assert end["result"]["content"][0]["text"] == "depth 0, 17 chars", end
