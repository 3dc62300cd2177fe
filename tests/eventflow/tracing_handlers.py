"""Handlers that publish from inside a handler, for tests/eventflow/test_tracing.py."""

from __future__ import annotations

from eventflow import publish
from eventflow.events import Event
from eventflow.publishing import publish_batch

OWN_TRACEPARENT = "00-11111111111111111111111111111111-2222222222222222-00"


def relay(event: Event) -> None:
    """Order in, payment request out: the next hop of the flow."""
    publish("payments", {"order": event.data}, type="payment.requested")


def relay_with_its_own_context(event: Event) -> None:
    publish_batch("payments", [{"type": "payment.requested", "causationid": "mine", "traceparent": OWN_TRACEPARENT}])


def ship(event: Event) -> None:
    """Payment in, shipment out: the third hop."""
    publish("shipments", {"payment": event.id}, type="shipment.requested")


def echo(event: Event) -> None:
    """Publishes to its own topic, up to n=10: a loop the causal tree must bound."""
    if event.data["n"] < 10:
        publish("orders", {"n": event.data["n"] + 1}, type="order.created")
