from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from eventflow import idempotent
from eventflow.events import Event
from eventflow.models import HandledEvent
from tests.handlers import count_once


def event(**data) -> Event:
    return Event(
        id="evt-1", type="order.created", source="shop", topic="orders", time="2026-01-01T00:00:00Z", data=data
    )


def test_a_second_delivery_of_the_same_event_has_no_effect(db):
    count_once(event())
    count_once(event())

    assert Group.objects.filter(name="effect-evt-1").count() == 1
    assert HandledEvent.objects.get().scope == "tests.handlers.count_once"


def test_a_failed_attempt_leaves_no_mark_so_the_retry_runs(db):
    with pytest.raises(RuntimeError):
        count_once(event(fail_after_effect=True))

    assert not Group.objects.exists() and not HandledEvent.objects.exists()
    count_once(event())
    assert Group.objects.count() == 1


@idempotent
def record_effect(event: Event) -> None:
    Group.objects.create(name=f"{event.source}/{event.id}")


def delivered(source: str, event_id: str = "1001") -> Event:
    return Event(id=event_id, type="order.created", source=source, topic="orders", time="2026-01-01T00:00:00Z", data={})


def test_it_tells_events_apart_by_source_and_id_as_cloudevents_does(db):
    record_effect(delivered("shop"))
    record_effect(delivered("pos"))
    record_effect(delivered("shop"))  # a redelivery

    assert sorted(Group.objects.values_list("name", flat=True)) == ["pos/1001", "shop/1001"]
    assert HandledEvent.objects.count() == 2
