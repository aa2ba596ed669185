"""The engine's one reach into fakeredis's private names: the Lua runtime of a memory:// store.

Why it exists: ``memory://`` is the embedded default, so its speed is what a first user
meets, and every task is a few Lua scripts. fakeredis (2.40, 2.41) runs each EVAL/EVALSHA
by compiling the script's source anew (ours are 8 to 13 KB each with the shared preamble),
then forces a full Lua garbage collection, and before every ``redis.call`` inside a script
it lists every Lua global to catch a script that sets one. Measured with
``benchmarks/backends.py``, those three were half of a memory:// create and a third of a
memory:// drain. fakeredis has no public switch for any of them, so :func:`speed_up` wraps
one store's runtime:

- each distinct script source is compiled once and the compiled function is kept
  (a bounded cache: a docket has a dozen scripts);
- the full collection after every script is skipped: Lua's own incremental collector runs
  as the scripts allocate, so memory stays bounded (tested);
- ``redis.call`` / ``redis.pcall`` list the globals only after a script created one (a
  ``__newindex`` on Lua's globals table raises a flag): a script that creates a global is
  refused at the same point, with the same error, as on stock fakeredis.

Everything else (commands, errors, replies, KEYS/ARGV) is fakeredis's own code. Two
differences remain, both for scripts that tamper with Lua itself, which ours never do: a
script that removes the globals table's metatable (or ``rawset``s a global) is refused only
after its writes, and a ``setfenv`` of a script's chunk lasts into its next run (as on a real
Redis, which also keeps one compiled function per script). When the
installed fakeredis is not shaped as this expects, nothing is changed: memory:// runs at
stock speed with the same behaviour, and :func:`speed_up` says so by returning False —
``tests/engine/test_fakeredis_lua.py`` asserts it returns True, so a fakeredis release that
moves these names fails the tests instead of silently slowing memory:// down.
``MCP_TASKS_MEMORY_LUA=stock`` leaves fakeredis as it is (an escape hatch, and the
benchmark's comparison).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import fakeredis
from fakeredis.commands_mixins.scripting_mixin import ScriptingCommandsMixin

log = logging.getLogger(__name__)

SCRIPT_CACHE_SIZE = 256
"""Compiled scripts kept per store; more distinct sources than this (another program's
scripts on the same store) compile again, least recently used first."""

STOCK_SETTING = "MCP_TASKS_MEMORY_LUA"
WARM_UP = "return 1"
WARM_UP_SHA = hashlib.sha1(WARM_UP.encode()).hexdigest().encode()


class _CallView:
    """What fakeredis's ``_lua_redis_call`` asks of "the runtime" for one call: ``globals()``
    for its check (here: nothing to complain of) and ``table_from`` to convert a reply."""

    def __init__(self, runtime: Any) -> None:
        self.table_from = runtime.table_from
        self._none: Mapping[Any, Any] = MappingProxyType({})

    def globals(self) -> Mapping[Any, Any]:
        return self._none


class CompilingRuntime:
    """Stands in for a store's ``lupa.LuaRuntime``: ``execute`` of a script runs its compiled
    function from the cache, ``execute("collectgarbage()")`` is skipped, anything else goes
    to the real runtime unchanged."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.compiled: OrderedDict[bytes | str, Callable[[], Any]] = OrderedDict()
        self.compiles = 0

    def execute(self, source: bytes | str, *args: Any) -> Any:
        if source in ("collectgarbage()", b"collectgarbage()"):
            return None
        if args:
            return self.runtime.execute(source, *args)
        function = self.compiled.get(source)
        if function is None:
            try:
                function = self.runtime.compile(source)
            except Exception:
                return self.runtime.execute(source)  # raises the error stock fakeredis gives
            self.compiles += 1
            self.compiled[source] = function
            if len(self.compiled) > SCRIPT_CACHE_SIZE:
                self.compiled.popitem(last=False)
        else:
            self.compiled.move_to_end(source)
        return function()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runtime, name)


def speed_up(server: fakeredis.FakeServer) -> bool:
    """Wrap ``server``'s Lua runtime (creating it first); True when it is now the fast one."""
    if os.environ.get(STOCK_SETTING, "").strip().lower() == "stock":
        return False
    store: Any = server  # what fakeredis hangs the runtime on is not in FakeServer's type
    try:
        # fakeredis creates a store's runtime on its first script: run one, through the
        # public client, so there is a runtime to wrap.
        fakeredis.FakeRedis(server=server).eval(WARM_UP, 0)
        runtime = store._lua_runtime
        current = store._lua_current_socket
        expected = store._lua_expected_globals
    except Exception as exc:  # any shape this module does not know: stay stock
        log.debug("memory:// runs fakeredis's Lua as it is: %r", exc)
        return False
    if isinstance(runtime, CompilingRuntime):
        return True
    needed = ("compile", "execute", "eval", "globals", "table_from")
    calls = ("_lua_redis_call", "_lua_redis_pcall")
    if not (
        isinstance(expected, set)
        and all(hasattr(runtime, name) for name in needed)
        and all(hasattr(ScriptingCommandsMixin, name) for name in calls)
        and isinstance(current, list)
    ):
        log.debug("memory:// runs fakeredis's Lua as it is: its runtime has another shape")
        return False
    view = _CallView(runtime)
    none: frozenset[Any] = frozenset()
    # A script that creates a global raises the flag (Lua's __newindex on the globals table,
    # which fires for new names only: exactly what fakeredis's listing would find); every
    # redis.call then runs fakeredis's own check, which refuses it, until no unexpected
    # global is left (fakeredis 2.41 clears them when it refuses; 2.40 leaves them).
    created = [False]

    def mark() -> None:
        created[0] = True

    def checked(command: Callable[..., Any], op: bytes, args: tuple[Any, ...]) -> Any:
        try:
            return command(runtime, expected, op, *args)
        finally:
            created[0] = bool(set(runtime.globals().keys()) - expected)

    def call(op: bytes, *args: Any) -> Any:
        socket = current[0]
        if created[0]:
            return checked(socket._lua_redis_call, op, args)
        return socket._lua_redis_call(view, none, op, *args)

    def pcall(op: bytes, *args: Any) -> Any:
        socket = current[0]
        if created[0]:
            return checked(socket._lua_redis_pcall, op, args)
        return socket._lua_redis_pcall(view, none, op, *args)

    runtime.eval(
        """function(call, pcall, mark)
          local rawset = rawset  -- a script may reassign the global one
          redis.call = call
          redis.pcall = pcall
          setmetatable(_G, {__newindex = function(t, k, v) rawset(t, k, v); mark() end})
        end"""
    )(call, pcall, mark)
    # The warm-up's script is not one a client loaded: SCRIPT EXISTS must not find it.
    server.script_cache.pop(WARM_UP_SHA, None)
    store._lua_runtime = CompilingRuntime(runtime)
    return True
