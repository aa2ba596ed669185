"""Drive our server with fastmcp-tasks' client half (a 2026-07-28 client we did not write).

Run as a separate process: importing fastmcp_tasks hooks every fastmcp Client in the process.
Prints one JSON line of what it saw; exits non-zero on the first failed check.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from fastmcp import Client
from fastmcp_tasks import call_tool_task


async def main(url: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def answer(message: str, response_type: Any, params: Any, context: Any) -> Any:
        seen["elicited"] = message
        return {"value": True}

    async with Client(url, elicitation_handler=answer) as client:
        seen["protocol"] = client.protocol_version
        task = await call_tool_task(client, "count", {"to": 7})
        seen["count_status"] = (await task.status()).status
        result = await task.result()
        assert result.data == 7, result
        seen["count_result"] = result.data

        plain = await client.call_tool("count", {"to": 3})  # resolved through the claim
        assert plain.data == 3, plain
        seen["transparent_result"] = plain.data

        sleeper = await call_tool_task(client, "sleep", {"seconds": 60})
        await sleeper.wait(state="working", timeout=10)
        await sleeper.cancel()
        final = await sleeper.wait(timeout=10)
        assert final.status == "cancelled", final
        seen["cancelled"] = final.status

        confirm = await call_tool_task(client, "confirm", {"path": "/tmp/x"})
        confirmed = await confirm.result()  # answers input_required via the handler
        assert confirmed.data == "deleted /tmp/x", confirmed
        seen["input_required_result"] = confirmed.data
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
