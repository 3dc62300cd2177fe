"""Retention trims streams to their limits and counts what consumers had not acked."""

from __future__ import annotations

import time

from eventflow import delivery, keys, publish_batch, retention
from tests.helpers import make_consumer


def publish_n(n: int) -> None:
    publish_batch("orders", [{"type": "order.created", "data": {"n": i}} for i in range(n)])


def counters(redis_client) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in redis_client.hgetall(keys.counters("orders")).items()}


def test_it_trims_a_stream_to_its_max_events(orders, redis_client):
    publish_n(30)

    report = retention.trim("orders", max_events=10, max_age_seconds=None)

    assert (report.cut, report.lost) == (20, {})
    assert redis_client.xlen(keys.stream("orders")) == 10


def test_it_counts_events_a_consumer_had_not_acknowledged(orders, redis_client):
    make_consumer("billing", "tests.handlers.billing", orders)
    make_consumer("shipping", "tests.handlers.shipping", orders)
    publish_n(30)
    # billing read 25 events and acked 15; shipping read nothing.
    taken = delivery.read_new(redis_client, "billing", "w1", ("orders",), 25, None)
    redis_client.xack(keys.stream("orders"), "billing", *[d.stream_id for d in taken[:15]])

    report = retention.trim("orders", max_events=10, max_age_seconds=None)

    # The 20 oldest are cut: billing had 5 of them pending, shipping all 20 undelivered.
    assert report.lost == {"billing": 5, "shipping": 20}
    assert counters(redis_client)["trimmed:billing"] == 5
    assert counters(redis_client)["trimmed:shipping"] == 20
    assert counters(redis_client)["trimmed"] == 20


def test_it_cuts_nothing_a_consumer_still_needs_when_within_limits(orders, redis_client):
    make_consumer("billing", "tests.handlers.billing", orders)
    publish_n(5)

    assert retention.trim("orders", max_events=10, max_age_seconds=None).cut == 0
    assert redis_client.xlen(keys.stream("orders")) == 5


def test_it_trims_by_age(orders, redis_client):
    publish_n(3)
    time.sleep(0.01)

    assert retention.trim("orders", max_events=None, max_age_seconds=0.000001).cut == 3
