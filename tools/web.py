"""Fetch many URLs concurrently (httpx), with progress and a cap on the response size."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx
from fastmcp import Context, FastMCP
from fastmcp.exceptions import ToolError

MAX_URLS = 200
MAX_BYTES = 5 * 1024 * 1024


def register(mcp: FastMCP) -> None:
    @mcp.tool(task=True)
    async def fetch_urls(
        urls: list[str],
        concurrency: int = 8,
        seconds_per_url: float = 20.0,
        ctx: Context | None = None,
    ) -> list[dict[str, object]]:
        """GET each URL (http/https; 1 to 200 URLs), at most ``concurrency`` (1-32) at
        once, ``seconds_per_url`` (0-120) each; for each: status, size (counted up to 5 MiB)
        and content type, or the error. Bodies are not returned."""
        if not urls or len(urls) > MAX_URLS:
            raise ToolError(f"give between 1 and {MAX_URLS} URLs")
        if not 1 <= concurrency <= 32 or not 0 < seconds_per_url <= 120:
            raise ToolError("concurrency must be 1-32 and seconds_per_url 0-120")
        for url in urls:
            if urlsplit(url).scheme not in ("http", "https"):
                raise ToolError(f"not an http(s) URL: {url!r}")
        gate = asyncio.Semaphore(concurrency)
        done = 0
        results: list[dict[str, object]] = [{} for _ in urls]

        async def fetch(index: int, url: str, client: httpx.AsyncClient) -> None:
            nonlocal done
            async with gate:
                try:
                    size = 0
                    async with client.stream("GET", url) as response:
                        async for chunk in response.aiter_bytes():
                            size += len(chunk)
                            if size > MAX_BYTES:
                                break
                    results[index] = {
                        "url": url,
                        "status": response.status_code,
                        "bytes": size,
                        "truncated": size > MAX_BYTES,
                        "content_type": response.headers.get("content-type"),
                    }
                except httpx.HTTPError as exc:
                    results[index] = {"url": url, "error": f"{type(exc).__name__}: {exc}"}
            done += 1
            if ctx is not None:
                await ctx.report_progress(done, len(urls), f"fetched {done} of {len(urls)}")

        async with httpx.AsyncClient(timeout=seconds_per_url, follow_redirects=True) as client:
            await asyncio.gather(*(fetch(i, u, client) for i, u in enumerate(urls)))
        return results
