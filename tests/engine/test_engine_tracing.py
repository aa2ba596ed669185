"""OpenTelemetry: a task's run span is a child of the span that added it, in this process and
in another worker process (W3C trace context travels in the task's metadata)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastmcp import Client
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mcp_tasks.engine import Docket, Quota, QuotaExceeded, Status, Worker, current_task
from mcp_tasks.engine.tracing import META_KEY
from tests.helpers.dockets import purge, running
from tests.helpers.mcp import Harness, modern

pytestmark = pytest.mark.anyio
HERE = Path(__file__).resolve().parents[1] / "processes"  # the helper processes


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """An SDK tracer provider for this test only, recording into memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    yield exporter
    provider.shutdown()


def named(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    (span,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    context = span.get_span_context()
    assert context is not None
    return context.span_id


def trace_id(span: ReadableSpan) -> int:
    context = span.get_span_context()
    assert context is not None
    return context.trace_id


async def test_the_run_span_is_a_child_of_the_span_that_added_the_task(
    docket: Docket, spans: InMemorySpanExporter
) -> None:
    async def crunch(n: int) -> int:
        with trace.get_tracer("test").start_as_current_span("inside"):
            return n * 2

    docket.register(crunch, name="crunch")
    with trace.get_tracer("test").start_as_current_span("request"):
        execution = await docket.add(crunch, label="tool:crunch", meta={"owner": "x"})(21)
    state = await docket.get(execution.key)
    assert state is not None and state.meta["owner"] == "x"
    assert state.meta[META_KEY]["traceparent"].startswith("00-")
    async with running(Worker(docket)):
        final = await docket.wait(execution.key, timeout=10)
    assert final.status is Status.COMPLETED

    request = named(spans, "request")
    enqueue = named(spans, "enqueue tool:crunch")
    run = named(spans, "run tool:crunch")
    inside = named(spans, "inside")
    assert enqueue.kind is SpanKind.PRODUCER and run.kind is SpanKind.CONSUMER
    assert parent_id(enqueue) == span_id(request)
    assert parent_id(run) == span_id(enqueue)
    assert parent_id(inside) == span_id(run)
    assert len({trace_id(s) for s in (request, enqueue, run, inside)}) == 1
    assert run.attributes is not None and enqueue.attributes is not None
    assert run.attributes["messaging.message.id"] == execution.key
    assert run.attributes["messaging.destination.name"] == docket.name
    assert run.attributes["mcp_tasks.function"] == "crunch"
    assert run.attributes["mcp_tasks.attempt"] == 1
    assert run.attributes["mcp_tasks.outcome"] == "completed"
    assert enqueue.attributes["messaging.message.id"] == execution.key
    assert run.status.status_code is StatusCode.UNSET


async def test_failures_and_error_results_mark_the_run_span(
    docket: Docket, spans: InMemorySpanExporter
) -> None:
    async def broken() -> None:
        raise ValueError("it broke")

    async def error_result() -> str:
        current_task().mark_errored()
        return "reported as a result"

    docket.register(broken, name="broken")
    docket.register(error_result, name="error_result")
    batch = await docket.add_many(broken, [(), ()])
    reported = await docket.add(error_result)()
    async with running(Worker(docket)):
        for execution in [*batch, reported]:
            await docket.wait(execution.key, timeout=10)

    enqueue_batch = named(spans, "enqueue broken")  # one span for the whole batch
    assert enqueue_batch.attributes is not None
    assert enqueue_batch.attributes["messaging.batch.message_count"] == 2
    failed = [s for s in spans.get_finished_spans() if s.name == "run broken"]
    assert len(failed) == 2
    for span in failed:
        assert parent_id(span) == span_id(enqueue_batch)
        assert span.status.status_code is StatusCode.ERROR
        assert "it broke" in (span.status.description or "")
        assert [e.name for e in span.events] == ["exception"]
    errored = named(spans, "run error_result")
    assert errored.status.status_code is StatusCode.ERROR


async def test_without_a_tracer_provider_nothing_is_added_to_the_metadata(
    docket: Docket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)  # the API's no-op proxy

    async def noop() -> None:
        return None

    docket.register(noop, name="noop")
    execution = await docket.add(noop, meta={"owner": "x"})()
    state = await docket.get(execution.key)
    assert state is not None and state.meta == {"owner": "x"}
    bare = await docket.add(noop)()
    assert (await docket.get(bare.key)).meta == {}  # type: ignore[union-attr]


async def test_a_quota_refusal_is_traced_as_an_answer_not_an_error(
    docket: Docket, spans: InMemorySpanExporter
) -> None:
    """A refused add sends nothing: its span says why and is not marked as failed, so error
    dashboards do not count callers hitting their quota as the docket failing."""

    async def noop() -> None:
        return None

    docket.register(noop, name="noop")
    quota = Quota("alice", max_unfinished=1)
    await docket.add(noop, quota=quota)()
    spans.clear()
    with pytest.raises(QuotaExceeded):
        await docket.add(noop, quota=quota)()
    refused = named(spans, "enqueue noop")
    assert refused.status.status_code is StatusCode.UNSET and not refused.events
    assert (refused.attributes or {}).get("mcp_tasks.refused") == "unfinished"


def start_traced_worker(url: str, name: str, spans_file: Path) -> subprocess.Popen[str]:
    worker = subprocess.Popen(
        [sys.executable, str(HERE / "traced_worker.py"), url, name, str(spans_file)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE,
    )
    assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    return worker


async def test_the_trace_crosses_to_a_worker_process(
    redis_url: str, docket_name: str, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    spans_file = tmp_path / "worker-spans.jsonl"
    worker = start_traced_worker(redis_url, docket_name, spans_file)
    try:
        async with Docket(name=docket_name, url=redis_url) as docket:

            async def job(n: int) -> int:  # the worker process runs its own copy
                return n * 2

            docket.register(job, name="job")
            execution = await docket.add(job)(21)
            final = await docket.wait(execution.key, timeout=20)
            assert final.status is Status.COMPLETED and final.result == 42
    finally:
        worker.terminate()
        worker.wait(20)
        await purge(redis_url, docket_name)
    enqueue = named(spans, "enqueue job")
    remote = {r["name"]: r for r in map(json.loads, spans_file.read_text().splitlines())}
    run, inside = remote["run job"], remote["inside the job"]
    assert run["kind"] == "CONSUMER"
    assert run["trace_id"] == trace_id(enqueue) == inside["trace_id"]
    assert run["parent_span_id"] == span_id(enqueue)
    assert inside["parent_span_id"] == run["span_id"]
    assert run["attributes"]["messaging.message.id"] == execution.key


async def test_an_mcp_task_is_traced_from_the_tool_call_to_its_run(
    spans: InMemorySpanExporter, docket_name: str
) -> None:
    harness = Harness(f"memory://{docket_name}", docket_name)
    async with Client(harness.mcp) as client:
        created = await modern(client, "tools/call", {"name": "crunch", "arguments": {"n": 2}})
        await harness.finished(created["taskId"])
    enqueue = named(spans, "enqueue crunch")  # labelled with the tool, not the runner
    run = named(spans, "run crunch")
    assert enqueue.parent is not None  # inside fastmcp's span of the tools/call request
    (call,) = [s for s in spans.get_finished_spans() if span_id(s) == parent_id(enqueue)]
    assert call.name.startswith("tools/call")
    assert parent_id(run) == span_id(enqueue) and trace_id(run) == trace_id(call)
    assert run.attributes is not None
    assert run.attributes["mcp_tasks.function"] == "mcp-tasks:call-tool"
