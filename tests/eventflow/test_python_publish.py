from __future__ import annotations

import pytest

from eventflow import keys, publish, publish_batch
from eventflow.errors import Forbidden, InvalidEvent, UnknownTopic


def test_it_stores_a_published_event_in_the_topic_stream(orders, redis_client):
    event_id = publish("orders", {"order": 1}, type="order.created", key="c-7")

    entries = redis_client.xrange(keys.stream("orders"))
    assert len(entries) == 1
    assert event_id.encode() in entries[0][1][b"e"]


def test_it_refuses_an_unknown_topic(db):
    with pytest.raises(UnknownTopic):
        publish("nope", {}, type="x")


def test_it_refuses_an_inactive_topic(orders):
    orders.active = False
    orders.save()
    with pytest.raises(Forbidden):
        publish("orders", {}, type="x")


def test_a_batch_is_all_or_nothing(orders, redis_client):
    with pytest.raises(InvalidEvent, match="event 1: missing 'type'"):
        publish_batch("orders", [{"type": "a", "data": 1}, {"data": 2}])
    assert redis_client.exists(keys.stream("orders")) == 0 or redis_client.xlen(keys.stream("orders")) == 0


def test_it_stores_a_producer_id_only_once_within_the_dedup_window(orders, redis_client):
    first = publish_batch("orders", [{"type": "a", "id": "evt-1"}])
    second = publish_batch("orders", [{"type": "a", "id": "evt-1"}])

    assert first.duplicates == [] and second.duplicates == ["evt-1"]
    assert redis_client.xlen(keys.stream("orders")) == 1


def test_a_name_with_a_trailing_newline_is_not_a_valid_topic_name(db):
    from django.core.exceptions import ValidationError

    from eventflow.models import Topic

    with pytest.raises(ValidationError):
        Topic(name="orders\n").full_clean()


def test_a_null_id_gets_a_fresh_id_and_no_dedup_mark(orders, redis_client):
    first = publish_batch("orders", [{"type": "a", "id": None}])
    second = publish_batch("orders", [{"type": "a", "id": None}])

    assert first.ids != second.ids and not second.duplicates
    assert not list(redis_client.scan_iter(keys.dedup("orders", "python", "*")))
