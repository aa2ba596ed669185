"""``raw_request``: any JSON-RPC request on an open client, for what no typed API sends."""

from __future__ import annotations

from typing import Any

from fastmcp import Client
from mcp.client.session import ClientSession

from .. import sdk
from ..protocol import EXTENSION_ID, LEGACY_VERSION

CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"


async def raw_request(
    client: Client[Any] | ClientSession,
    method: str,
    params: dict[str, Any],
    *,
    opt_in: bool | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - the SDK's own per-request timeout
) -> dict[str, Any]:
    """Send any JSON-RPC request on an open client and return the raw ``result`` dict (a
    JSON-RPC error raises ``MCPError``), unvalidated: for requests no typed API sends, such
    as a 2025-11-25 task-augmented ``tools/call``, and for probing a server.

    On a 2026-07-28 connection the request carries what the session adds to every request
    (protocol version, client info, capabilities, routing headers); ``opt_in`` then adds
    (True) or removes (False) this connection's opt-in to ``io.modelcontextprotocol/tasks``
    (None: as the client advertises). A 2025-11-25 request goes out as given.
    """
    session = client.session if isinstance(client, Client) else client
    modern = session.protocol_version not in (None, LEGACY_VERSION)

    def adjust(sent: dict[str, Any]) -> None:
        if opt_in is None:
            return
        meta = sent.setdefault("_meta", {})
        capabilities = dict(meta.get(CAPABILITIES_META) or {})
        extensions = dict(capabilities.get("extensions") or {})
        if opt_in:
            extensions[EXTENSION_ID] = {}
        else:
            extensions.pop(EXTENSION_ID, None)
        capabilities["extensions"] = extensions
        meta[CAPABILITIES_META] = capabilities

    answer: dict[str, Any] = await sdk.send_raw_request(
        session,
        method,
        params,
        stamp=modern,
        adjust=adjust if modern else None,
        headers=headers,
        timeout=timeout,
    )
    return answer
