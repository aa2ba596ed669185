"""Let the SDK's ``Mcp-Param`` header check skip its ``tools/list`` when it cannot matter.

Over streamable HTTP, mcp 2.3 checks every 2026-07-28 ``tools/call``'s ``Mcp-Param-*``
headers against the called tool's input schema before dispatching it. A low-level server
may answer that schema from a synchronous ``get_tool_input_schema``; fastmcp 4.1 sets none,
so the SDK runs a whole ``tools/list`` through fastmcp's middleware for every call: about
0.4 ms of each task creation over HTTP (a sixth of the server's CPU in a no-op task
benchmark), for a check that only ever looks at properties annotated with ``x-mcp-header``.

When no tool the server can list carries such an annotation, the check has nothing to
compare whatever schema it gets, so answering "no annotated properties" gives exactly the
listing's outcome. That is provable only for a plain server: its own local tools and tools
injected by ``ToolInjectionMiddleware``, no mounted or proxied providers, no transforms but
visibility (which only hides tools), and no other middleware that rewrites ``tools/list``
(``on_list_tools``). A middleware that rewrites listings from a generic ``on_message`` or
``on_request`` hook is not detected. Anything else, now or later, and the lookup removes
itself, so from then on the SDK lists as before; the call that finds the change is checked
against the called tool's own schema when it is one of the server's local tools.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.middleware import Middleware
from fastmcp.server.middleware.dereference import DereferenceRefsMiddleware
from fastmcp.server.middleware.tool_injection import ToolInjectionMiddleware
from fastmcp.server.transforms.visibility import Visibility
from fastmcp.tools import Tool
from mcp.shared.inbound import X_MCP_HEADER_KEY

log = logging.getLogger("mcp_tasks.server")
NOTHING_ANNOTATED: Mapping[str, Any] = {"type": "object"}
"""The answer for a tool without ``x-mcp-header`` annotations: a schema that has none."""
LISTING_AS_IS = (Middleware, DereferenceRefsMiddleware, ToolInjectionMiddleware)
"""Middleware whose ``on_list_tools`` adds no annotation the scan below would not see."""


class HeaderSchemaLookup:
    """``get_tool_input_schema`` for a plain fastmcp server; see the module docstring."""

    def __init__(self, server: FastMCP) -> None:
        self.server = server
        self._declares: dict[int, tuple[Tool, bool]] = {}

    def __call__(self, name: str) -> Mapping[str, Any] | None:
        if self.applies():
            return NOTHING_ANNOTATED
        log.info("the server changed: Mcp-Param headers are checked by listing tools again")
        uninstall(self.server)
        return self._own_schema(name)

    def applies(self) -> bool:
        """True while the server is plain and none of its tools declares a header."""
        try:
            return self._plain() and not any(self._declares_header(t) for t in self._tools())
        except Exception:  # an odd tool or server: let the SDK's listing decide
            log.debug("Mcp-Param lookup: cannot vouch for this server", exc_info=True)
            return False

    def _plain(self) -> bool:
        server = self.server
        local = server._local_provider
        transforms = [*server._transforms, *local._transforms]
        return (
            server.providers == [local]
            and all(isinstance(t, Visibility) for t in transforms)
            and all(_lists_as_is(m) for m in server.middleware)
        )

    def _tools(self) -> list[Tool]:
        local = self.server._local_provider._components.values()
        tools = [c for c in local if isinstance(c, Tool)] + self.server._injected_tools()
        if len(self._declares) > 2 * len(tools) + 16:
            self._declares.clear()  # tools were replaced; forget the old ones
        return tools

    def _declares_header(self, tool: Tool) -> bool:
        known = self._declares.get(id(tool))
        if known is None or known[0] is not tool:
            # Any mention counts, even one the SDK would find invalid or reach only through
            # a $ref: erring towards "declares" only costs the listing.
            text = json.dumps(tool.parameters, default=str)
            known = self._declares[id(tool)] = (tool, X_MCP_HEADER_KEY in text)
        return known[1]

    def _own_schema(self, name: str) -> Mapping[str, Any] | None:
        """The named local tool's schema (its newest version), for the call that found the
        server changed; None (the SDK skips the check) for a tool from anywhere else."""
        try:
            local = self.server._local_provider._components.values()
            named = [c for c in local if isinstance(c, Tool) and c.name == name]
            if not named:
                return None
            newest = max(named, key=lambda tool: str(tool.version or ""))
            return dict(newest.parameters)
        except Exception:
            return None


def _lists_as_is(middleware: Any) -> bool:
    hook = type(middleware).on_list_tools
    return any(hook is kind.on_list_tools for kind in LISTING_AS_IS)


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
