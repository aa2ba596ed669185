"""memory://'s scripts run compiled once, and answer exactly as stock fakeredis does.

``mcp_tasks/engine/fakeredis_lua.py`` reaches into fakeredis's private names to stop it
compiling every script anew (see its docstring). What a user relies on: memory:// is sped up
on the fakeredis versions we support (a release that moves those names fails here, not
silently), every script answers as it would on stock fakeredis (replies, errors, a global
caught), Lua's memory stays bounded without fakeredis's forced collection after each script,
``MCP_TASKS_MEMORY_LUA=stock`` turns it off, and the three savings (compile once, no forced
collection, globals listed only after a script made one) each stay in place. memory:// only:
there is no fakeredis on the other backends. scripts/test runs these on the oldest supported
fakeredis too.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import fakeredis
import pytest
import redis
from fakeredis.commands_mixins.scripting_mixin import ScriptingCommandsMixin

from mcp_tasks.engine import Docket, Worker
from mcp_tasks.engine.connection import MemoryStore, parse_url
from mcp_tasks.engine.fakeredis_lua import (
    SCRIPT_CACHE_SIZE,
    STOCK_SETTING,
    WARM_UP_SHA,
    CompilingRuntime,
    speed_up,
)
from tests.helpers.dockets import running

pytestmark = pytest.mark.anyio


async def double(n: int) -> int:
    return n * 2


def runtime_of(store: MemoryStore) -> CompilingRuntime:
    runtime = vars(store.server).get("_lua_runtime")
    assert isinstance(runtime, CompilingRuntime), "memory:// runs fakeredis's Lua stock"
    return runtime


async def test_a_memory_docket_compiles_each_script_once() -> None:
    url = f"memory://lua-{uuid.uuid4().hex[:8]}"
    store = parse_url(url).memory
    assert store is not None and store.fast_lua
    runtime = runtime_of(store)
    async with Docket(name="lua", url=url) as docket:
        docket.register(double)
        async with running(Worker(docket, concurrency=5)):
            first = [await docket.add(double)(n) for n in range(5)]
            assert [(await docket.wait(e.key, timeout=10)).result for e in first] == [
                0,
                2,
                4,
                6,
                8,
            ]
            compiled = runtime.compiles
            more = [await docket.add(double)(n) for n in range(40)]
            for execution in more:
                assert (await docket.wait(execution.key, timeout=10)).result is not None
    assert 0 < compiled <= 12, "a docket's scripts: enqueue, start, finish and a few more"
    assert runtime.compiles == compiled, "40 more tasks compiled nothing new"


SCRIPTS: list[tuple[str, list[str], list[str]]] = [
    ("return redis.call('SET', KEYS[1], ARGV[1])", ["k"], ["v"]),
    ("return {redis.call('GET', KEYS[1]), #ARGV, ARGV[2]}", ["k"], ["a", "b"]),
    (
        "redis.call('HSET', KEYS[1], 'f', 1, 'g', 'x'); return redis.call('HGETALL', KEYS[1])",
        ["h"],
        [],
    ),
    ("return redis.call('INCR', KEYS[1])", ["k"], []),  # an error reply from a command
    ("return redis.pcall('INCR', KEYS[1])", ["k"], []),  # caught as an error table
    ("return redis.call('NOSUCHCOMMAND')", [], []),
    ("return redis.error_reply('mine')", [], []),
    ("return redis.status_reply('FINE')", [], []),
    ("return cjson.encode({a = 1})", [], []),
    ("leaked = 1; return redis.call('SET', KEYS[1], 'after')", ["g"], []),  # a global
    ("return redis.call('GET', KEYS[1])", ["g"], []),
    ("return redis.call('SET', KEYS[1], 'later')", ["w"], []),  # a later script's write
    ("return redis.pcall('SET', KEYS[1], 'later')", ["p"], []),
    ("return 1 +", [], []),  # a syntax error
    ("return tostring(leaked)", [], []),  # the global did not survive
    ("return 3.9", [], []),
]


def answers(server: fakeredis.FakeServer) -> list[Any]:
    """Each script's reply (or error), run twice, then what the store holds afterwards."""
    client = fakeredis.FakeRedis(server=server)
    out: list[Any] = [client.script_exists(WARM_UP_SHA)]
    for source, keys, args in SCRIPTS:
        for _ in range(2):  # twice: the second run takes the compiled function
            try:
                out.append(client.eval(source, len(keys), *keys, *args))
            except Exception as exc:
                out.append((type(exc).__name__, str(exc).split(" script: ")[0]))
    held = {key: client.dump(key) for key in sorted(client.keys())}
    return [*out, held]


def test_every_script_answers_as_on_stock_fakeredis() -> None:
    fast, stock = fakeredis.FakeServer(), fakeredis.FakeServer()
    assert speed_up(fast)
    expected = answers(stock)
    assert answers(fast) == expected
    assert expected[0] == [False], "a fresh store has no script loaded"
    assert expected[19] == ("ResponseError", "Script attempted to set global variables: leaked")
    assert expected[27][0] == "ResponseError" and "error loading code" in expected[27][1]
    assert set(expected[-1]) >= {b"k", b"h"}


def test_lua_memory_stays_bounded_without_a_collection_per_script() -> None:
    server = fakeredis.FakeServer()
    assert speed_up(server)
    client = fakeredis.FakeRedis(server=server)
    script = client.register_script(
        "local t = {} for i = 1, 50 do t[i] = ARGV[1] .. i end "
        "redis.call('SET', KEYS[1], t[50]) return collectgarbage('count')"
    )
    big = "x" * 2000
    early = [script(keys=[f"k{i}"], args=[big]) for i in range(200)]
    late = [script(keys=[f"k{i}"], args=[big]) for i in range(5000)]
    # Kilobytes of Lua heap: each run allocates ~100 KB of strings, 5,000 runs ~500 MB.
    assert max(late) < max(max(early) * 4, 8 * 1024), (max(early), max(late))


def test_stock_is_an_escape_hatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STOCK_SETTING, "stock")
    store = MemoryStore()
    assert not store.fast_lua
    assert not isinstance(vars(store.server).get("_lua_runtime"), CompilingRuntime)
    assert fakeredis.FakeRedis(server=store.server).eval("return 7", 0) == 7


class StubRuntime:
    """Records what reaches the real runtime through :class:`CompilingRuntime`."""

    def __init__(self) -> None:
        self.compiled: list[str] = []
        self.executed: list[str] = []

    def compile(self, source: str) -> Any:
        self.compiled.append(source)
        return lambda: f"ran {source}"

    def execute(self, source: str, *args: Any) -> Any:
        self.executed.append(source)
        return None


def test_the_runtime_compiles_once_and_skips_the_forced_collection() -> None:
    stub = StubRuntime()
    runtime = CompilingRuntime(stub)
    assert [runtime.execute("return 1") for _ in range(3)] == ["ran return 1"] * 3
    assert runtime.execute("collectgarbage()") is None
    assert stub.compiled == ["return 1"] and stub.executed == []
    for n in range(SCRIPT_CACHE_SIZE + 1):  # one more than it keeps: the oldest goes
        runtime.execute(f"return {n + 2}")
    runtime.execute("return 1")
    assert stub.compiled.count("return 1") == 2 and len(runtime.compiled) == SCRIPT_CACHE_SIZE


def test_globals_are_listed_only_once_a_script_made_one(monkeypatch: pytest.MonkeyPatch) -> None:
    server = fakeredis.FakeServer()
    assert speed_up(server)
    listed: list[bool] = []
    original = ScriptingCommandsMixin._lua_redis_call

    def spy(self: Any, lua_runtime: Any, expected: Any, op: bytes, *args: Any) -> Any:
        listed.append(bool(expected))  # the real check gets fakeredis's expected globals
        return original(self, lua_runtime, expected, op, *args)

    monkeypatch.setattr(ScriptingCommandsMixin, "_lua_redis_call", spy)
    client = fakeredis.FakeRedis(server=server)
    client.eval("redis.call('SET', 'a', 1) return redis.call('GET', 'a')", 0)
    assert listed == [False, False]
    with pytest.raises(redis.ResponseError, match="global"):
        client.eval("made = 1 return redis.call('GET', 'a')", 0)
    assert listed[2:] == [True]
    # fakeredis 2.41 clears a refused global (back to the fast path); 2.40 leaves it, so
    # every later call is checked, and refused, as on stock 2.40.
    left = b"made" in set(vars(server)["_lua_runtime"].globals().keys())
    with contextlib.suppress(redis.ResponseError):
        client.eval("return redis.call('GET', 'a')", 0)
    assert listed[3:] == [left]
