"""The demo: its flow, its handlers and its simulated shop."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from dashboard.demo import handlers
from dashboard.demo.flow import CONSUMERS, PRODUCERS, TOPICS, ensure_admin, ensure_demo_flow
from dashboard.demo.simulator import Shop, Simulator
from eventflow import keys, publish_batch
from eventflow.events import Event
from eventflow.models import Consumer, Producer, Topic, hash_token


def an_event(event_type: str, data: dict, *, attempt: int = 1, topic: str = "orders") -> Event:
    return Event(
        id="evt-1", type=event_type, source="shop", topic=topic, time="2026-01-01T00:00:00Z", data=data, attempt=attempt
    )


def shop_events(count: int) -> list[tuple[str, dict]]:
    """What the simulated shop publishes over a while, in order."""
    shop = Shop(random.Random(7))
    events: list[tuple[str, dict]] = []
    now = 0.0
    while len(events) < count:
        events += shop.new_order(now) + shop.due(now)
        now += 0.5
    return events


def test_the_demo_flow_can_be_created_again_without_duplicates(db):
    first = ensure_demo_flow()
    second = ensure_demo_flow()

    assert sorted(Topic.objects.values_list("name", flat=True)) == sorted(TOPICS)
    assert sorted(Producer.objects.values_list("name", flat=True)) == sorted(PRODUCERS)
    assert Consumer.objects.count() == len(CONSUMERS)
    analytics = Consumer.objects.get(name="analytics")
    assert sorted(analytics.topics.values_list("name", flat=True)) == ["orders", "payments", "shipments"]
    # Each run rotates the shop's token: only the newest one works.
    shop = Producer.objects.get(name="shop")
    assert shop.token_hash == hash_token(second.shop_token) != hash_token(first.shop_token)


def test_every_demo_consumer_handler_imports(db):
    ensure_demo_flow()
    for consumer in Consumer.objects.all():
        consumer.full_clean()


def test_the_admin_login_is_created_once_and_gets_a_new_password_each_time(db, django_user_model):
    ensure_admin()
    password = ensure_admin()

    admin = django_user_model.objects.get(username="admin")
    assert django_user_model.objects.count() == 1
    assert admin.is_superuser and admin.is_staff and admin.check_password(password)


def test_the_shop_tells_realistic_stories_that_the_api_accepts(db, redis_client):
    ensure_demo_flow()
    events = shop_events(400)

    types = Counter(event["type"] for _, event in events)
    assert {"order.created", "payment.authorized", "payment.captured", "order.paid"} <= set(types)
    assert types["order.paid"] > types.get("order.cancelled", 0) > 0
    for topic in ("orders", "payments"):
        batch = [event for t, event in events if t == topic]
        assert publish_batch(topic, batch, source="shop").accepted == len(batch)
        assert redis_client.xlen(keys.stream(topic)) == len(batch)


def test_billing_accepts_the_shops_orders():
    for topic, event in shop_events(100):
        handlers.billing(an_event(event["type"], event["data"], topic=topic))


def test_billing_refuses_an_order_whose_lines_do_not_add_up():
    order = {"order_id": "ord_1", "total": "10.00", "lines": [{"price": "4.00", "quantity": 2}]}
    with pytest.raises(ValueError, match="lines add up to 8.00"):
        handlers.billing(an_event("order.created", order))


def test_fraud_check_always_fails_some_orders_and_fails_others_only_once():
    outcomes = Counter()
    for n in range(600):
        order = {"order_id": f"ord_{n}"}
        for attempt in (1, 2, 3):
            try:
                handlers.fraud_check(an_event("order.created", order, attempt=attempt))
            except handlers.RiskServiceTimeout:
                continue
            except handlers.RiskServiceRejected:
                assert attempt == 1
                continue
            outcomes["ok" if attempt == 1 else "ok after retry"] += 1
            break
        else:
            outcomes["failed"] += 1

    assert 0.04 < outcomes["failed"] / 600 < 0.15
    assert outcomes["ok after retry"] > 0 and outcomes["ok"] > 400


def test_shipping_publishes_one_shipment_per_paid_order_even_when_retried(db, redis_client):
    ensure_demo_flow()
    paid = {"order_id": "ord_1", "customer_id": "cus_1", "country": "NL", "currency": "EUR", "total": "5.00"}

    handlers.shipping(an_event("order.paid", paid))
    handlers.shipping(an_event("order.paid", paid, attempt=2))

    entries = redis_client.xrange(keys.stream("shipments"))
    assert len(entries) == 1
    assert b'"type":"shipment.dispatched"' in entries[0][1][b"e"]
    assert b'"source":"warehouse"' in entries[0][1][b"e"]


def test_the_simulator_keeps_its_events_while_the_server_is_down():
    simulator = Simulator("http://127.0.0.1:9", token="ef_nothing", rate=200)
    simulator._next_arrival -= 1.0  # a second's worth of customers is due

    assert simulator.run_once() is False
    kept = {topic: len(batch) for topic, batch in simulator.pending.items()}
    assert kept["orders"] > 0 and simulator.sent == 0
    simulator.run_once()
    assert len(simulator.pending["orders"]) >= kept["orders"]


def test_fixing_the_risk_service_lets_every_order_through(redis_client):
    from dashboard.demo import switches

    orders = [{"order_id": f"ord_{n}"} for n in range(240)]

    def timeouts() -> int:
        count = 0
        for order in orders:
            try:
                handlers.fraud_check(an_event("order.created", order, attempt=2))
            except handlers.RiskServiceTimeout:
                count += 1
        return count

    assert timeouts() > 5
    switches.set_risk_service_fixed(True)
    assert timeouts() == 0


def test_the_demo_has_enough_topics_for_the_graph_to_fold_them_into_groups(db):
    from dashboard import graph
    from eventflow.monitor import load_snapshot

    ensure_demo_flow()
    picture = graph.topology(load_snapshot())
    topics = next(c for c in picture["columns"] if c["kind"] == "topic")
    assert any(n["group"] and ".* (" in n["label"] for n in topics["nodes"])
    assert len(TOPICS) > graph.MAX_NODES


def test_fraud_checks_page_has_the_switch_that_fixes_the_risk_service(operator):
    from dashboard.demo import switches

    ensure_demo_flow()
    page = operator.get("/consumers/fraud-check/").content.decode()
    assert "Fix the risk service" in page
    assert "Fix the risk service" not in operator.get("/consumers/billing/").content.decode()
    answer = operator.post("/demo/risk-service", {"fixed": "1"}, headers={"HX-Request": "true"}).content.decode()
    assert answer.lstrip().startswith('<section id="demo-switch"') and "Break it again" in answer
    assert switches.risk_service_fixed()
