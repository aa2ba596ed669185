"""Every reach into fastmcp's and mcp's private names, in one place.

mcp-tasks is installed next to its users' own fastmcp, so each fastmcp or mcp release is an
audit of what we depend on. Everything public is used directly where it is needed
(``custom_route``, ``set_transport``, ``MCP_NAME_HEADER``, the ``mcp_types`` error codes, ...);
what has no public equivalent is reached from this module only, each use with why it is
needed and what would replace it. ``tests/structure/test_sdk_seam.py`` keeps it that way: no other
module touches an underscore name of another package.

This module also checks, on import, that the installed fastmcp and mcp are versions these
reaches were verified against (see ``SUPPORTED``), so an unsupported upgrade fails at once
with a clear message instead of somewhere deep in a request.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.context import TransportType
from fastmcp.server.extensions import ServerExtension
from packaging.specifiers import SpecifierSet
from packaging.version import Version

SUPPORTED: dict[str, str] = {"fastmcp": ">=4.1.2,<4.3", "mcp": ">=2.3,<3"}
"""The releases every reach below was verified against (CI tests the oldest and the newest);
keep in step with ``pyproject.toml``."""


def check_versions(installed: Callable[[str], str] = importlib.metadata.version) -> None:
    """Refuse to load beside a fastmcp or mcp outside the tested ranges."""
    for package, specifier in SUPPORTED.items():
        try:
            found = installed(package)
        except importlib.metadata.PackageNotFoundError:
            # fastmcp 4 also ships as fastmcp-slim; the import of fastmcp above succeeded.
            found = installed("fastmcp-slim") if package == "fastmcp" else ""
        if not found or Version(found) not in SpecifierSet(specifier):
            raise ImportError(
                f"mcp-tasks supports {package}{specifier}, but {package} {found or '(none)'} "
                f"is installed: install a supported {package} "
                f"(pip install '{package}{specifier}') or an mcp-tasks release made for it"
            )


check_versions()


# -- the low-level server ---------------------------------------------------------------


def low_level_server(server: FastMCP) -> Any:
    """The mcp ``Server`` under a FastMCP server.

    Why: ``capabilities.tasks`` in ``initialize`` and the 2025-11-25 ``params.task`` of
    ``tools/call`` need the low-level middleware chain, and ``subscriptions/listen`` (a spec
    method, so not an extension ``MethodBinding``) a low-level request handler. Replace with a
    public accessor (or a fastmcp hook for low-level middleware) when fastmcp offers one.
    """
    return server._mcp_server


def connection_of(session: Any) -> Any:
    """The mcp ``Connection`` behind a request's ``ServerSession`` (None if it has none).

    Why: a 2025-11-25 task pushes ``notifications/tasks/status`` to the connection that
    created it after that request has been answered, and ties its clean-up and its caller
    identity (HTTP session id, per-connection listing) to that connection's lifetime.
    ``ServerRequestContext`` exposes the session, not the connection; mcp's own
    ``Context.connection`` is not constructed by the runner yet. Replace with it when it is.
    """
    return getattr(session, "_connection", None)


def is_client_tool_call() -> bool:
    """Whether the tool being dispatched is the one the client's ``tools/call`` named (not a
    tool the server calls from inside another tool).

    Why: only the client's own call may become a task. Replace with a public flag on the
    ``Context`` when fastmcp offers one.
    """
    from fastmcp.server.dependencies import _is_client_tool_call

    return _is_client_tool_call()


def current_transport() -> TransportType | None:
    """The transport of the request being handled ("stdio", "streamable-http", ...).

    Why: ``Context.transport`` reads the same variable but needs a ``Context``; a task stores
    its caller's transport when it is created and the worker restores it with the public
    ``set_transport`` (fastmcp trusts stdio callers in its component auth).
    """
    from fastmcp.server.context import _current_transport

    return _current_transport.get()


def masks_error_details(server: FastMCP) -> bool:
    """Whether the server was built with ``mask_error_details`` (per server, or fastmcp's
    setting). Why: a tool that raises inside a task is worded exactly as fastmcp words the
    same failure of a call made without a task. Replace with a public property."""
    return bool(getattr(server, "_mask_error_details", False))


def server_lifespan(server: FastMCP) -> AbstractAsyncContextManager[None]:
    """The server's whole lifespan (user lifespan and every extension's), without serving.

    Why: ``mcp-tasks worker server.py`` runs a server's tools with the resources its lifespan
    opens, but serves no transport. Replace with a public "run lifespan" API.
    """
    manager: Callable[[], AbstractAsyncContextManager[None]] = server._lifespan_manager
    return manager()


def registered_extension(server: FastMCP, identifier: str) -> ServerExtension | None:
    """The extension registered on ``server`` under ``identifier``.

    Why: the worker CLI finds the ``Tasks`` extension of a server file it loads. Replace with
    a public lookup when fastmcp offers one."""
    extensions: dict[str, ServerExtension] = server._extensions
    return extensions.get(identifier)


class BindAwareExtension(ServerExtension):
    """A ``ServerExtension`` told when it is registered on a server.

    Why: HTTP routes (the dashboard, ``/metrics``) must be added with ``custom_route`` before
    any HTTP app is built, and registration is the only moment an extension learns its
    server. fastmcp calls the private ``_bind`` then; replace with a public registration hook.
    """

    def _bind(self, server: FastMCP) -> None:
        super()._bind(server)
        self.on_registered(server)

    def on_registered(self, server: FastMCP) -> None:
        """Called once ``server`` is bound (``self.server`` works from here on)."""


async def send_raw_request(
    session: Any,
    method: str,
    params: dict[str, Any],
    *,
    stamp: bool,
    adjust: Callable[[dict[str, Any]], None] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - the SDK's own per-request timeout
) -> Any:
    """Send one JSON-RPC request over a client session and return its raw ``result``.

    Why: ``ClientSession.send_request`` validates every answer against the negotiated
    protocol's own result type (a 2025-11-25 task-augmented ``tools/call`` answers a
    ``CreateTaskResult``, which fails ``CallToolResult``), and tests must send what no typed
    request can (wrong types, forged fields, chosen headers). ``stamp`` adds what the session
    adds to every 2026-07-28 request (``_meta`` protocol version, client info and
    capabilities, routing headers); ``adjust`` may then edit the params, e.g. the opt-in.
    Replace with a public raw-request API of mcp's ``ClientSession``.
    """
    data: dict[str, Any] = {"method": method, "params": params}
    options: dict[str, Any] = {}
    if stamp:
        session._stamp(data, options)
    if adjust is not None:
        adjust(data["params"])
    options.setdefault("headers", {}).update(headers or {})
    if timeout is not None:
        options["timeout"] = timeout
    return await session._dispatcher.send_raw_request(method, data["params"], options)


def set_progress_backend(progress: Any, backend: Any) -> None:
    """Make a fastmcp ``Progress`` dependency report through ``backend`` (a ``ProgressLike``).

    Why: fastmcp's ``Progress()`` only reaches pydocket's execution; ours reports to the
    docket. fastmcp offers no constructor argument for the backend. Replace with one.
    """
    progress._impl = backend
