"""With the OpenTelemetry API installed, each handler call is a span in its event's trace.

OpenTelemetry is not a dependency, so this module is skipped unless the
application installed it (e.g. ``pip install opentelemetry-sdk``).
"""

from __future__ import annotations

import pytest

from eventflow import tracing
from eventflow.publishing import publish_batch
from eventflow.worker import Worker
from tests.helpers import drain, make_consumer
from tests.eventflow.test_publish_api import stored

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"
EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans():
    if not isinstance(trace.get_tracer_provider(), sdk_trace.TracerProvider):
        provider = sdk_trace.TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    return EXPORTER


def test_the_handler_runs_in_a_span_of_the_events_trace_and_its_events_are_its_children(
    spans, orders, payments, redis_client
):
    make_consumer("relay", "tests.eventflow.tracing_handlers.relay", orders)
    publish_batch("orders", [{"type": "order.created", "data": {"n": 1}, "traceparent": PARENT}])

    drain(Worker(["relay"]), until=lambda: len(stored(redis_client, "payments")) == 1)

    [span] = [s for s in spans.get_finished_spans() if s.name == "orders process"]
    assert f"{span.context.trace_id:032x}" == TRACE
    assert f"{span.parent.span_id:016x}" == "00f067aa0ba902b7"
    [child] = stored(redis_client, "payments")
    assert child["traceparent"] == f"00-{TRACE}-{span.context.span_id:016x}-01"


def test_an_event_published_inside_an_application_span_joins_its_trace(spans, orders, redis_client):
    with trace.get_tracer("shop").start_as_current_span("checkout") as current:
        publish_batch("orders", [{"type": "order.created"}])

    [event] = stored(redis_client)
    context = current.get_span_context()
    assert event["traceparent"] == f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    assert tracing.valid_traceparent(event["traceparent"])
