"""A CPU-bound job run in a separate process, so the worker's event loop stays free."""

from __future__ import annotations

import math

import anyio.to_process
from fastmcp import Context, FastMCP
from fastmcp.exceptions import ToolError

MAX_LIMIT = 50_000_000
CHUNKS = 20


def _count_primes(start: int, stop: int) -> int:
    """Primes in [start, stop), by trial division against a small sieve (pure CPU)."""
    if stop <= 2:
        return 0
    small = _sieve(math.isqrt(stop) + 1)
    count = 0
    for n in range(max(start, 2), stop):
        limit = math.isqrt(n)
        for p in small:
            if p > limit:
                count += 1
                break
            if n % p == 0:
                break
        else:
            count += 1
    return count


def _sieve(n: int) -> list[int]:
    flags = bytearray([1]) * (n + 1)
    flags[0] = flags[1] = 0
    for i in range(2, math.isqrt(n) + 1):
        if flags[i]:
            flags[i * i :: i] = bytearray(len(flags[i * i :: i]))
    return [i for i in range(n + 1) if flags[i]]


def register(mcp: FastMCP) -> None:
    @mcp.tool(task=True)
    async def count_primes(below: int, ctx: Context | None = None) -> int:
        """How many primes are below a number (0 to 50,000,000): pure CPU work, done in a
        worker process in 20 chunks, with progress after each and cancellation between
        them."""
        if not 0 <= below <= MAX_LIMIT:
            raise ToolError(f"below must be between 0 and {MAX_LIMIT}")
        step = max(below // CHUNKS, 1)
        total = 0
        for start in range(0, below, step):
            total += await anyio.to_process.run_sync(
                _count_primes, start, min(start + step, below), cancellable=True
            )
            if ctx is not None:
                done = min(start + step, below)
                await ctx.report_progress(done, below, f"checked numbers below {done}")
        return total
