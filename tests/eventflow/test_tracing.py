"""Trace context across hops: kept on publish, inherited by events a handler publishes, sent by webhooks."""

from __future__ import annotations

import pytest

from eventflow import publish, tracing
from eventflow.worker import Worker
from tests.helpers import drain, make_consumer
from tests.eventflow.test_alerts import Receiver
from tests.eventflow.test_asgi_publish import ThinClient
from tests.eventflow.test_publish_api import cloudevent, post, stored  # noqa: F401 - the shop's POST
from tests.eventflow.tracing_handlers import OWN_TRACEPARENT

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"
OTHER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


@pytest.fixture(params=["django view", "thin ASGI path"])
def client(request, client):
    """Both publish doors: Django's view and the thin ASGI path."""
    return client if request.param == "django view" else ThinClient(client)


def test_a_traceparent_given_as_an_extension_is_kept(post, redis_client):  # noqa: F811
    assert post({"type": "order.created", "traceparent": PARENT, "tracestate": "ef=1"}).status_code == 202
    assert post(cloudevent(traceparent=OTHER), content_type="application/cloudevents+json").status_code == 202

    first, second = stored(redis_client)
    assert (first["traceparent"], first["tracestate"], second["traceparent"]) == (PARENT, "ef=1", OTHER)


def test_a_traceparent_header_goes_to_every_event_without_its_own(post, redis_client):  # noqa: F811
    batch = {"events": [{"type": "order.created"}, {"type": "order.created", "traceparent": OTHER}]}

    assert post(batch, traceparent=PARENT, tracestate="vendor=x").status_code == 202

    first, second = stored(redis_client)
    assert (first["traceparent"], first["tracestate"]) == (PARENT, "vendor=x")
    assert (second["traceparent"], "tracestate" in second) == (OTHER, False)


@pytest.mark.parametrize("header", ["00-abc-def-01", f"00-{'0' * 32}-00f067aa0ba902b7-01", PARENT.upper(), "x" * 60])
def test_a_malformed_traceparent_header_is_ignored(post, redis_client, header):  # noqa: F811
    assert post({"type": "order.created"}, traceparent=header).status_code == 202

    assert "traceparent" not in stored(redis_client)[0]


def test_an_event_published_inside_a_handler_names_its_cause_and_joins_its_trace(orders, payments, redis_client):
    make_consumer("relay", "tests.eventflow.tracing_handlers.relay", orders)
    cause = publish("orders", {"n": 1}, type="order.created")
    publish("orders", {"n": 2}, type="order.created")  # no trace context: a cause, but no trace to join
    drain(Worker(["relay"]), until=lambda: len(stored(redis_client, "payments")) == 2)

    children = {c["data"]["order"]["n"]: c for c in stored(redis_client, "payments")}
    assert children[1]["causationid"] == cause
    assert "traceparent" not in children[1] and "traceparent" not in children[2]


def test_the_child_of_a_traced_event_is_in_the_same_trace_with_a_new_parent(orders, payments, redis_client):
    make_consumer("relay", "tests.eventflow.tracing_handlers.relay", orders)
    from eventflow.publishing import publish_batch

    [cause] = publish_batch("orders", [{"type": "order.created", "data": {"n": 1}, "traceparent": PARENT}]).ids
    drain(Worker(["relay"]), until=lambda: len(stored(redis_client, "payments")) == 1)

    [child] = stored(redis_client, "payments")
    assert child["causationid"] == cause
    assert tracing.valid_traceparent(child["traceparent"])
    assert tracing.trace_id(child["traceparent"]) == TRACE
    assert child["traceparent"] != PARENT and child["traceparent"].endswith("-01")


def test_a_child_traceparent_keeps_the_trace_and_flags_with_a_new_parent_id():
    children = [tracing.child_of(OTHER) for _ in range(1000)]

    assert all(tracing.valid_traceparent(child) for child in children)
    assert {(tracing.trace_id(child), child[-3:]) for child in children} == {(tracing.trace_id(OTHER), "-00")}
    assert len({child[36:52] for child in children}) == 1000
    assert tracing.child_of(PARENT, "b7ad6b7169203331") == f"00-{TRACE}-b7ad6b7169203331-01"


def test_a_handler_may_set_its_own_cause_and_trace(orders, payments, redis_client):
    make_consumer("relay", "tests.eventflow.tracing_handlers.relay_with_its_own_context", orders)
    publish("orders", {"n": 1}, type="order.created")
    drain(Worker(["relay"]), until=lambda: len(stored(redis_client, "payments")) == 1)

    [child] = stored(redis_client, "payments")
    assert (child["causationid"], child["traceparent"]) == ("mine", OWN_TRACEPARENT)


def test_outside_a_handler_an_event_has_no_cause(orders, redis_client):
    publish("orders", {"n": 1}, type="order.created")

    assert "causationid" not in stored(redis_client)[0]


def test_the_handled_event_is_forgotten_after_its_handler_returns_or_raises(orders):
    from eventflow.events import Event
    from eventflow.handlers import invoke

    event = Event.from_envelope({"id": "e1", "type": "t", "source": "s", "topic": "orders", "time": "", "data": 1})
    seen = []
    invoke(lambda e: seen.append(tracing.handled_event()), event)
    invoke(lambda e: 1 / 0, event)

    assert seen == [event]
    assert tracing.handled_event() is None


def test_a_webhook_carries_the_events_traceparent(orders, redis_client):
    from eventflow.models import Consumer
    from eventflow.publishing import publish_batch

    receiver = Receiver()
    try:
        make_consumer("hook", receiver.url, orders, kind=Consumer.Kind.WEBHOOK)
        publish_batch("orders", [{"type": "order.created", "traceparent": PARENT, "tracestate": "ef=1"}])
        publish("orders", {"n": 2}, type="order.created")
        drain(Worker(["hook"]), until=lambda: len(receiver.requests) == 2)
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()

    (traced, _), (plain, _) = receiver.requests
    assert (traced["traceparent"], traced["tracestate"]) == (PARENT, "ef=1")
    assert "traceparent" not in plain
