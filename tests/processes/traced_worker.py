"""A worker process with OpenTelemetry: ``python traced_worker.py URL NAME SPANS_FILE``.

It records every span it ends as one JSON line in SPANS_FILE, prints ``ready`` once it is
claiming, and stops gracefully on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from mcp_tasks.engine import Docket, Worker


class JsonLines(SpanExporter):
    def __init__(self, path: Path) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self.path.open("a") as out:
            for span in spans:
                context, parent = span.get_span_context(), span.parent
                record = {
                    "name": span.name,
                    "trace_id": context.trace_id if context else None,
                    "span_id": context.span_id if context else None,
                    "parent_span_id": parent.span_id if parent else None,
                    "kind": span.kind.name,
                    "attributes": dict(span.attributes or {}),
                }
                out.write(json.dumps(record) + "\n")
        return SpanExportResult.SUCCESS


async def job(n: int) -> int:
    with trace.get_tracer("traced_worker").start_as_current_span("inside the job"):
        return n * 2


async def main(url: str, name: str, spans: Path) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLines(spans)))
    trace.set_tracer_provider(provider)
    async with Docket(name=name, url=url) as docket:
        docket.register(job, name="job")
        async with Worker(docket) as worker:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, worker.request_stop)
            print("ready", flush=True)
            await worker.run_forever()
    provider.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
