"""The event page draws the causal tree: consumers, the events their handlers published, their consumers."""

from __future__ import annotations

import re

from eventflow import keys, publish
from eventflow.models import Topic
from eventflow.worker import Worker
from tests.helpers import drain, make_consumer
from tests.eventflow.test_publish_api import stored


def three_hops(orders, payments) -> None:
    """orders → relay → payments → shipper → shipments → notify; billing also takes orders."""
    shipments = Topic.objects.create(name="shipments")
    make_consumer("relay", "tests.eventflow.tracing_handlers.relay", orders)
    make_consumer("billing", "tests.handlers.billing", orders)
    make_consumer("shipper", "tests.eventflow.tracing_handlers.ship", payments)
    make_consumer("notify", "tests.handlers.billing", shipments)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def tree_of(page: str) -> str:
    """The tree's text, root first, without the section's heading."""
    start = page.index('<ul class="causal-tree">')
    return text(page[start : page.index("</section>", start)])


def stream_ids(redis_client, topic: str) -> list[str]:
    return [sid.decode() for sid, _ in redis_client.xrange(keys.stream(topic))]


def test_the_event_page_shows_every_hop_with_its_state(operator, orders, payments, redis_client):
    three_hops(orders, payments)
    publish("orders", {"n": 1}, type="order.created")
    drain(Worker(), until=lambda: len(stored(redis_client, "shipments")) == 1)
    drain(Worker())  # and notify takes the shipment
    [root], [payment], [shipment] = (stream_ids(redis_client, t) for t in ("orders", "payments", "shipments"))

    tree = tree_of(operator.get(f"/topics/orders/events/{root}/").content.decode())

    after = r"published \d+ ms after its cause"
    expected = (
        rf"order.created on orders billing acked relay acked payment.requested on payments · {after} "
        rf"shipper acked shipment.requested on shipments · {after} notify acked"
    )
    assert re.fullmatch(expected, tree), tree
    page = operator.get(f"/topics/orders/events/{root}/").content.decode()
    assert f'href="/topics/payments/events/{payment}/"' in page
    assert f'href="/topics/shipments/events/{shipment}/"' in page


def test_a_hop_not_yet_handled_shows_as_not_delivered(operator, orders, payments, redis_client):
    three_hops(orders, payments)
    publish("orders", {"n": 1}, type="order.created")
    drain(Worker(["relay", "billing"]), until=lambda: len(stored(redis_client, "payments")) == 1)
    [root] = stream_ids(redis_client, "orders")

    tree = tree_of(operator.get(f"/topics/orders/events/{root}/").content.decode())

    assert "payment.requested on payments" in tree
    assert tree.endswith("shipper not yet delivered")


def test_a_child_event_names_its_cause_on_its_own_page(operator, orders, payments, redis_client):
    three_hops(orders, payments)
    cause = publish("orders", {"n": 1}, type="order.created")
    drain(Worker(["relay"]), until=lambda: len(stored(redis_client, "payments")) == 1)
    [payment] = stream_ids(redis_client, "payments")

    page = text(operator.get(f"/topics/payments/events/{payment}/").content.decode())

    assert f"caused by event {cause}" in page


def test_the_tree_is_bounded_when_handlers_loop(operator, orders, redis_client):
    make_consumer("echo", "tests.eventflow.tracing_handlers.echo", orders)
    publish("orders", {"n": 0}, type="order.created")
    drain(Worker(), until=lambda: len(stream_ids(redis_client, "orders")) >= 6)
    root = stream_ids(redis_client, "orders")[0]

    tree = tree_of(operator.get(f"/topics/orders/events/{root}/").content.decode())

    assert tree.count("order.created on orders") == 3  # three hops down, then it stops drawing
    assert "and 1 more event it caused, not drawn" in tree
