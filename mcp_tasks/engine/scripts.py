"""Loads the docket's Lua scripts (``lua/*.lua``) and runs them with EVALSHA.

Each transition of a task (enqueue, start, finish, cancel, ...) is one script so
that it is atomic on the server and costs one round trip. ``common.lua`` holds helpers and is
prepended to every script, because Redis scripts cannot include one another.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

NAMES = (
    "enqueue",
    "start",
    "finish",
    "promote",
    "cancel",
    "sweep",
    "answer",
    "update",
    "backlog",
)


@cache
def source(name: str) -> str:
    """The full text of one script, helpers included."""
    folder = resources.files(__package__).joinpath("lua")
    common = folder.joinpath("common.lua").read_text(encoding="utf-8")
    body = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    return f"{common}\n{body}"


class Scripts:
    """The scripts bound to one Redis client (redis-py falls back to EVAL on NOSCRIPT)."""

    def __init__(self, client: Redis) -> None:
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(source(name)) for name in NAMES
        }

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self._scripts[name](keys=keys, args=args)
