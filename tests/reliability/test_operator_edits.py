"""Issue 9, case 7: operators edit the flow in the admin while events are in flight.

Renaming a consumer or a topic changes what operators see, never where its
events are in Redis; deleting a consumer says first what it drops and then
drops it in Redis too; unsubscribing files the consumer's scheduled retries
as failed events instead of stranding them. Each test runs a real worker
(in-process, stepped) against the session's Redis.
"""

from __future__ import annotations

from collections import Counter

import pytest

from eventflow import keys, monitor, publish_batch
from eventflow.connection import get_redis
from eventflow.models import Consumer, FailedEvent, Topic
from eventflow.worker import Worker
from tests import handlers
from tests.conftest import drain, make_consumer, publish_status


def publish(topic: str, count: int, start: int = 0) -> list[str]:
    events = [{"type": "order.created", "id": f"ord-{n}", "data": {"n": n}} for n in range(start, start + count)]
    return publish_batch(topic, events).ids


def handled(log: str = "billing") -> Counter:
    return Counter(event_id for event_id, _, _ in handlers.seen(log))


def consumer_state(name: str) -> dict:
    return next(c for c in monitor.Monitor().step(store=False)["consumers"] if c["name"] == name)


# --- (a) renames ------------------------------------------------------------------------------


def test_renaming_a_consumer_with_100_retained_events_hands_none_of_them_over_twice(billing):
    worker = Worker()
    publish("orders", 100)
    drain(worker, until=lambda: sum(handled().values()) == 100)

    billing.name = "invoicing"
    billing.save()
    publish("orders", 10, start=100)
    drain(worker, until=lambda: sum(handled().values()) >= 110)
    drain(worker)  # anything redelivered would show up now

    seen = handled()
    twice = [event_id for event_id, n in seen.items() if n > 1]
    state = consumer_state("invoicing")
    assert len(seen) == 110 and twice == []
    assert (state["backlog"], state["acked"], state["status"]) == (0, 110, "OK")
    print(f"\n[rename consumer] 100 retained + 10 new events: handled {sum(seen.values())}, twice {len(twice)}")


def test_renaming_a_topic_delivers_its_backlog_and_its_dead_letters_find_it(orders, shop_token, client):
    billing = make_consumer("billing", "tests.handlers.billing", orders, paused=True)
    make_consumer("ledger", "tests.handlers.always_fails", orders, max_attempts=1)
    publish("orders", 50)  # billing's backlog, waiting while it is paused

    orders.name = "sales"
    orders.save()
    Consumer.objects.filter(pk=billing.pk).update(paused=False)
    publish("sales", 4, start=50)
    assert publish_status(client, shop_token, topic="sales") == 202  # the producer keeps its permission
    reused = Topic.objects.create(name="orders")  # the old name, free again: a topic of its own
    publish("orders", 3, start=1000)
    worker = Worker()
    drain(worker, until=lambda: sum(handled().values()) >= 55 and FailedEvent.objects.count() >= 55)

    state = consumer_state("billing")
    assert sum(handled().values()) == 55 and max(handled().values()) == 1
    assert (state["backlog"], state["topics"]) == (0, ["sales"])
    assert set(FailedEvent.objects.values_list("topic__name", flat=True)) == {"sales"}
    assert FailedEvent.objects.count() == 55  # no dead letter dropped for want of the old name
    assert reused.stream_name == "orders~2" and get_redis().xlen(keys.stream("orders~2")) == 3
    print(f"\n[rename topic] backlog 50 + 5 new: delivered {sum(handled().values())}, dead letters filed 55 of 55")


def test_the_dashboard_shows_a_renamed_topic_and_its_events_under_the_new_name(orders, billing, staff_user, client):
    stored = publish_batch("orders", [{"type": "order.created", "data": {"n": n}} for n in range(3)]).stream_ids
    orders.name = "sales"
    orders.save()
    client.force_login(staff_user)

    page = client.get("/topics/sales/").content.decode()

    assert all(stream_id in page for stream_id in stored)  # the live tail and the browser read its stream
    assert client.get("/topics/orders/").status_code == 404


def test_a_replay_after_a_topic_rename_reaches_the_consumer(orders, staff_user):
    from eventflow import failures

    make_consumer("ledger", "tests.handlers.fails_on_odd", orders, max_attempts=1)
    publish("orders", 2)  # n=1 fails
    worker = Worker()
    drain(worker, until=lambda: FailedEvent.objects.exists())
    orders.name = "sales"
    orders.save()
    handlers.fix_flaky()

    failures.replay(FailedEvent.objects.get(), staff_user)
    drain(worker, until=lambda: FailedEvent.objects.get().status == FailedEvent.Status.RESOLVED)

    assert sorted(handled("flaky")) == ["ord-0", "ord-1"]


@pytest.mark.parametrize("field_name", ["stream_name", "group_name"])
def test_an_identity_is_set_once_at_creation_and_not_editable(orders, billing, field_name):
    row = orders if field_name == "stream_name" else billing
    original = getattr(row, field_name)
    row.name = "renamed"
    row.save()
    row.refresh_from_db()

    assert original != "" and getattr(row, field_name) == original
    assert not row._meta.get_field(field_name).editable
