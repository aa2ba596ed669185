"""A worker process for the process-level tests: ``python engine_worker.py URL NAME [opts]``.

It prints ``ready`` once it is claiming, and stops gracefully on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from mcp_tasks.engine import Docket, Worker, current_task


async def slow(seconds: float, only_first_attempt: bool = False) -> str:
    """Sleep, having reported that it started; on later attempts maybe at once."""
    ctx = current_task()
    await ctx.report_progress(0, 1, f"started attempt {ctx.attempt}")
    if not only_first_attempt or ctx.attempt == 1:
        await asyncio.sleep(seconds)
    return f"slept on attempt {ctx.attempt}"


def register(docket: Docket) -> None:
    docket.register(slow, name="slow")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("name")
    parser.add_argument("--redelivery", type=float, default=30)
    parser.add_argument("--grace", type=float, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    async with Docket(name=args.name, url=args.url) as docket:
        register(docket)
        worker = Worker(docket, redelivery_timeout=args.redelivery, shutdown_grace=args.grace)
        async with worker:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, worker.request_stop)
            print("ready", flush=True)
            await worker.run_forever()


if __name__ == "__main__":
    asyncio.run(main())
