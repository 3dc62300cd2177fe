"""Declared versus observed: the overview flags drift, each with its figure, and the flag clears."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from eventflow import delivery, drift, keys, publish
from eventflow.connection import get_redis
from eventflow.models import Producer
from tests.helpers import subscribe

from tests.eventflow.test_monitor import beat


def findings(snapshot: dict, kind: str) -> list[dict]:
    return [f for f in snapshot["drift"] if f["kind"] == kind]


def look_at_all_of_redis_each_step(monitor) -> None:
    """A full walk of the keyspace in every step (the shared test server holds every test's keys)."""
    monitor.drift.streams.seconds = 60.0


def test_a_group_no_consumer_declares_is_flagged_with_its_backlog_until_it_is_gone(monitor, orders, billing):
    look_at_all_of_redis_each_step(monitor)
    subscribe(billing)
    delivery.ensure_group(get_redis(), "orders", "old-billing", start="0")
    publish("orders", {"n": 1}, type="order.created")

    [finding] = findings(monitor.step(), "undeclared_group")
    assert finding["name"] == "orders/old-billing"
    expected = "group old-billing on topic orders belongs to no declared consumer (lag 1, pending 0)"
    assert finding["explanation"] == expected

    get_redis().xgroup_destroy(keys.stream("orders"), "old-billing")
    assert findings(monitor.step(), "undeclared_group") == []


def test_a_stream_no_topic_declares_is_flagged_with_its_length(monitor, orders):
    look_at_all_of_redis_each_step(monitor)
    get_redis().xadd(keys.stream("legacy"), {"e": b"{}"})
    get_redis().xadd(keys.stream("legacy"), {"e": b"{}"})

    [finding] = findings(monitor.step(), "undeclared_stream")

    assert (finding["name"], finding["figure"]) == ("legacy", "2")
    assert finding["explanation"] == "stream for topic legacy exists but no topic declares it (2 events)"


def rename(row, name: str) -> None:
    row.name = name
    row.save()


def test_a_topic_and_a_consumer_renamed_mid_flight_are_not_drift(monitor, orders, billing):
    look_at_all_of_redis_each_step(monitor)
    subscribe(billing)
    publish("orders", {"n": 1}, type="order.created")
    monitor.step()

    rename(orders, "orders-eu")
    rename(billing, "invoicing")
    publish("orders-eu", {"n": 2}, type="order.created")
    snapshot = monitor.step()

    assert findings(snapshot, "undeclared_group") == []
    assert findings(snapshot, "undeclared_stream") == []


def test_a_stray_group_and_stream_beside_renamed_ones_are_flagged_until_removed(monitor, orders, billing):
    look_at_all_of_redis_each_step(monitor)
    subscribe(billing)
    rename(orders, "orders-eu")
    rename(billing, "invoicing")
    delivery.ensure_group(get_redis(), orders.stream_name, "old-billing", start="0")
    get_redis().xadd(keys.stream("legacy"), {"e": b"{}"})

    snapshot = monitor.step()
    assert [f["name"] for f in findings(snapshot, "undeclared_group")] == ["orders-eu/old-billing"]
    assert [f["name"] for f in findings(snapshot, "undeclared_stream")] == ["legacy"]

    get_redis().xgroup_destroy(keys.stream(orders.stream_name), "old-billing")
    get_redis().unlink(keys.stream("legacy"))
    snapshot = monitor.step()
    assert findings(snapshot, "undeclared_group") == []
    assert findings(snapshot, "undeclared_stream") == []


def test_a_consumer_without_a_live_worker_is_flagged_until_one_beats(monitor, orders, billing):
    subscribe(billing)

    [finding] = findings(monitor.step(), "no_worker")
    assert finding["explanation"] == "consumer billing has no live worker (backlog 0)"
    beat("billing")
    assert findings(monitor.step(), "no_worker") == []


def test_a_producer_silent_past_its_interval_is_flagged_and_clears_when_it_publishes(monitor, orders, shop):
    shop.expected_interval = 60
    shop.last_seen_at = timezone.now() - dt.timedelta(minutes=5)
    shop.save()
    monitor.drift.started -= 600  # the monitor has watched for ten minutes

    [finding] = findings(monitor.step(), "silent_producer")
    assert finding["explanation"] == "producer shop has not published for 5 min (expected every 60 s)"
    publish("orders", {"n": 1}, type="order.created", source="shop")
    assert findings(monitor.step(), "silent_producer") == []


def test_a_producer_without_an_interval_is_never_flagged(monitor, orders, shop):
    Producer.objects.filter(pk=shop.pk).update(last_seen_at=timezone.now() - dt.timedelta(days=3))
    monitor.drift.started -= 86400

    assert findings(monitor.step(), "silent_producer") == []


def test_the_overview_lists_the_findings_and_hides_the_card_without_any(operator, monitor, orders, billing):
    subscribe(billing)
    monitor.step()
    page = operator.get("/").content.decode()
    assert "consumer without a worker" in page
    assert "consumer billing has no live worker (backlog 0)" in page

    beat("billing")
    monitor.step()
    page = operator.get("/").content.decode()
    assert '<section id="drift" class="card" aria-labelledby="drift-title" hidden>' in page


def test_producer_totals_add_up_every_topic():
    counters = {"orders": {"published": 5, "published:shop": 3, "published:python": 2}}
    counters["payments"] = {"published:shop": 4}

    assert drift.producer_totals(counters) == {"shop": 7, "python": 2}


def test_the_keyspace_walk_takes_a_few_milliseconds_per_step_and_finishes_over_several(monitor, orders):
    get_redis().xadd(keys.stream("legacy"), {"e": b"{}"})
    walk = drift.StreamWalk(seconds=0.0)  # one SCAN call per step
    steps = 1
    while not walk.advance(get_redis()):
        steps += 1

    assert "legacy" in walk.topics
    assert steps == 1 or get_redis().dbsize() > 1000  # more than one SCAN page means more than one step
