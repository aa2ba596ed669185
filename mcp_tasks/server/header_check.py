"""Let the SDK's ``Mcp-Param`` header check skip its ``tools/list`` when it cannot matter.

Over streamable HTTP, mcp 2.3 checks every 2026-07-28 ``tools/call``'s ``Mcp-Param-*``
headers against the called tool's input schema before dispatching it. A low-level server
may answer that schema from a synchronous ``get_tool_input_schema``; fastmcp 4.1 sets none,
so the SDK runs a whole ``tools/list`` through fastmcp's middleware for every call: about
0.4 ms of each task creation over HTTP (a sixth of the server's CPU in a no-op task
benchmark), for a check that only ever looks at properties annotated with ``x-mcp-header``.

When no tool the server can list carries such an annotation, the check has nothing to
compare whatever schema it gets, so answering "no annotated properties" gives exactly the
listing's outcome. That is provable only for a plain server: its own local tools, no
mounted or proxied providers, no transforms (which could rename a tool or reshape its
schema). Anything else, now or later, and the lookup removes itself, so from then on the
SDK lists as before. The one call that finds the server changed (a provider mounted while
serving, an annotated tool added) is let through unchecked; every later one is checked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastmcp import FastMCP
from fastmcp.tools import Tool
from mcp.shared.inbound import X_MCP_HEADER_KEY

log = logging.getLogger("mcp_tasks.server")
NOTHING_ANNOTATED: Mapping[str, Any] = {"type": "object"}
"""The answer for a tool without ``x-mcp-header`` annotations: a schema that has none."""


class HeaderSchemaLookup:
    """``get_tool_input_schema`` for a plain fastmcp server; see the module docstring."""

    def __init__(self, server: FastMCP) -> None:
        self.server = server
        self._annotated: dict[int, tuple[Tool, bool]] = {}

    def __call__(self, name: str) -> Mapping[str, Any] | None:
        if self.applies():
            return NOTHING_ANNOTATED
        log.info("the server changed: Mcp-Param headers are checked by listing tools again")
        uninstall(self.server)
        return None

    def applies(self) -> bool:
        """True while the server is plain and none of its tools declares a header."""
        server = self.server
        local = server._local_provider
        if server.providers != [local] or server._transforms or local._transforms:
            return False
        tools = [c for c in local._components.values() if isinstance(c, Tool)]
        if len(self._annotated) > 2 * len(tools) + 16:
            self._annotated.clear()  # tools were replaced; forget the old ones
        return not any(self._declares_header(tool) for tool in tools)

    def _declares_header(self, tool: Tool) -> bool:
        known = self._annotated.get(id(tool))
        if known is None or known[0] is not tool:
            # Any mention counts, even one the SDK would find invalid or reach only through
            # a $ref: erring towards "declares" only costs the listing.
            declares = X_MCP_HEADER_KEY in json.dumps(tool.parameters)
            known = self._annotated[id(tool)] = (tool, declares)
        return known[1]


def install(server: FastMCP) -> None:
    """Answer the header check for ``server`` while it is plain (no-op if someone else does)."""
    lowlevel = server._mcp_server
    if lowlevel.get_tool_input_schema is not None:
        return
    lookup = HeaderSchemaLookup(server)
    if lookup.applies():
        lowlevel.get_tool_input_schema = lookup


def uninstall(server: FastMCP) -> None:
    lowlevel = server._mcp_server
    if isinstance(lowlevel.get_tool_input_schema, HeaderSchemaLookup):
        lowlevel.get_tool_input_schema = None
