"""Raw JSON-RPC over streamable HTTP for tests: bodies sent as the exact bytes given.

For what a Python client cannot even encode (lone surrogates), for protocol versions no
client here speaks (2025-06-18), and for probing headers. ``mcp_tasks.client.raw_request``
is the helper for raw requests over an open fastmcp ``Client``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from mcp_tasks.protocol import EXTENSION_ID

MODERN, LEGACY = "2026-07-28", "2025-11-25"


class Raw:
    """Raw JSON-RPC over streamable HTTP: the body is sent as the bytes given."""

    def __init__(
        self, http: httpx.AsyncClient, url: str, version: str, *, modern_meta: bool | None = None
    ) -> None:
        """``modern_meta``: stamp each request's ``_meta`` as a 2026-07-28 client opted in to
        tasks does (by default exactly when ``version`` is 2026-07-28)."""
        self.http, self.url, self.version, self.session = http, url, version, None
        self.modern_meta = version == MODERN if modern_meta is None else modern_meta
        self.ids = iter(range(1, 1_000_000))

    async def open(self) -> dict[str, Any]:
        """Initialize a handshake-era session (2025-11-25 and before); a 2026-07-28 client
        has nothing to open. Returns the initialize result."""
        if self.version == MODERN:
            return {}
        answer = await self.send(
            "initialize",
            f'{{"protocolVersion": "{self.version}", "capabilities": {{}}, '
            '"clientInfo": {"name": "raw", "version": "0"}}',
        )
        assert "result" in answer, answer
        await self.http.post(
            self.url,
            headers=self.headers("notifications/initialized"),
            content=b'{"jsonrpc": "2.0", "method": "notifications/initialized"}',
        )
        return answer["result"]  # type: ignore[no-any-return]

    def headers(self, method: str) -> dict[str, str]:
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
            "mcp-protocol-version": self.version,
        }
        if self.version == MODERN:
            headers["mcp-method"] = method
        if self.session:
            headers["mcp-session-id"] = self.session
        return headers

    def meta(self) -> str:
        if not self.modern_meta:
            return ""
        meta = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {"extensions": {EXTENSION_ID: {}}},
        }
        return f'"_meta": {json.dumps(meta)}, '

    async def send(self, method: str, params: str, name: str | None = None) -> dict[str, Any]:
        """``params`` is JSON text, spliced in as is (lone surrogate escapes included)."""
        if method != "initialize" and self.meta():
            params = "{" + self.meta() + params[1:]  # params is always a non-empty object here
        number = next(self.ids)
        body = f'{{"jsonrpc": "2.0", "id": {number}, "method": "{method}", "params": {params}}}'
        headers = self.headers(method)
        if name is not None:
            headers["mcp-name"] = name
        response = await self.http.post(self.url, headers=headers, content=body.encode())
        if method == "initialize":
            self.session = response.headers.get("mcp-session-id")
        return message(response)


def message(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC response in a JSON or an SSE answer."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        messages = [json.loads(d) for d in data if d]
        answers = [m for m in messages if "result" in m or "error" in m]
        assert answers, response.text
        return answers[-1]  # type: ignore[no-any-return]
    return response.json()  # type: ignore[no-any-return]
