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
from django.db import transaction

from eventflow import delivery, keys, monitor, publish_batch
from eventflow.connection import get_redis
from eventflow.models import Consumer, FailedEvent, Topic
from eventflow.worker import Worker
from tests import handlers
from tests.helpers import drain, make_consumer, publish_status, wait_for


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


# --- (b) deleting a consumer ----------------------------------------------------------------


def ledger_holding_events(orders) -> Consumer:
    """A consumer with 1 failed event, 2 retries scheduled, 3 events pending with a dead worker, 4 undelivered."""
    ledger = make_consumer("ledger", "tests.handlers.fails_on_odd", orders, max_attempts=1)
    publish("orders", 2)  # n=1 fails for good
    drain(Worker(), until=lambda: FailedEvent.objects.exists())
    Consumer.objects.filter(pk=ledger.pk).update(max_attempts=5, retry_initial=3600.0, retry_max=3600.0)
    publish("orders", 4, start=10)  # n=11 and n=13 fail: retries due in an hour
    drain(Worker(), until=lambda: len(handled("flaky")) == 3)
    publish("orders", 3, start=20)
    taken = delivery.read_new(get_redis(), ledger.group_name, "dead-worker", ("orders",), 3, None)
    publish("orders", 4, start=30)
    assert len(taken) == 3
    return Consumer.objects.get(pk=ledger.pk)


def test_deleting_a_consumer_says_first_how_many_events_it_holds_and_what_happens_to_them(orders, admin_client):
    ledger = ledger_holding_events(orders)

    page = admin_client.get(f"/admin/eventflow/consumer/{ledger.pk}/delete/").content.decode()
    bulk = admin_client.post(
        "/admin/eventflow/consumer/", {"action": "delete_selected", "_selected_action": [ledger.pk]}
    ).content.decode()

    for text in (page, bulk):
        assert "3 pending (handed to a worker, not acknowledged)" in text
        assert "2 scheduled for a retry or replay" in text
        assert "4 not yet delivered" in text and "1 failed event." in text
        assert "removes its consumer groups and retry schedules from Redis" in text
        assert "Its 1 failed event is deleted with it" in text


def test_a_deleted_consumer_leaves_no_group_schedule_or_counters_in_redis(
    orders, billing, admin_client, django_capture_on_commit_callbacks
):
    ledger = ledger_holding_events(orders)
    client = get_redis()

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/admin/eventflow/consumer/{ledger.pk}/delete/", {"post": "yes"})

    groups = {g["name"].decode() for g in client.xinfo_groups(keys.stream("orders"))}
    counters = client.hgetall(keys.counters("orders"))
    assert not Consumer.objects.filter(name="ledger").exists()
    assert groups == {"billing"}  # the other consumer keeps its group
    assert not client.exists(keys.retry_schedule("orders", "ledger"), keys.retry_payloads("orders", "ledger"))
    assert not [f for f in counters if f.endswith(b":ledger")] and counters[b"acked:billing"]


@pytest.mark.django_db(transaction=True)
def test_a_consumer_deleted_while_its_worker_runs_does_not_come_back(orders):
    import threading
    import time

    ledger = make_consumer("ledger", "tests.handlers.billing", orders)
    worker = Worker()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        publish("orders", 5)
        wait_for(lambda: len(handled()) == 5)
        with transaction.atomic():
            ledger.delete()  # the group goes at the commit, while the runner waits on it
        time.sleep(1.0)
        publish("orders", 5, start=5)
        time.sleep(3.0)  # past a configuration refresh
        groups = [g["name"] for g in get_redis().xinfo_groups(keys.stream("orders"))]
    finally:
        worker.stop()
        thread.join(15)
    assert groups == [] and len(handled()) == 5


# --- (c) unsubscribing ------------------------------------------------------------------------


def test_unsubscribing_files_scheduled_and_pending_events_as_failed_and_nothing_vanishes(
    orders, payments, django_capture_on_commit_callbacks, caplog
):
    ledger = ledger_holding_events(orders)
    ledger.topics.add(payments)
    FailedEvent.objects.all().delete()  # only this change's rows below

    with django_capture_on_commit_callbacks(execute=True):
        ledger.topics.remove(orders)

    rows = list(FailedEvent.objects.filter(consumer=ledger).values_list("event_id", "error", "topic__name"))
    errors = Counter(error for _, error, _ in rows)
    assert errors == {
        "unsubscribed from orders with a retry scheduled": 2,
        "unsubscribed from orders while a worker held it (it may have been handled)": 3,
    }
    assert sorted(e for e, _, _ in rows) == ["ord-11", "ord-13", "ord-20", "ord-21", "ord-22"]
    assert "4 events not yet delivered to it are no longer for it" in caplog.text
    assert not get_redis().exists(keys.retry_schedule("orders", "ledger"))
    assert [g["name"] for g in get_redis().xinfo_groups(keys.stream("orders"))] == []
    # published 13 = handled 3 + failed before 1 + filed now 5 + undelivered (counted in the log) 4
    print(f"\n[unsubscribe] 13 published: 3 handled, 1 failed, {len(rows)} filed on unsubscribe, 4 counted undelivered")


def test_a_consumer_subscribed_again_starts_at_new_events(orders, django_capture_on_commit_callbacks):
    ledger = make_consumer("ledger", "tests.handlers.billing", orders)
    publish("orders", 3)
    with django_capture_on_commit_callbacks(execute=True):
        ledger.topics.remove(orders)
    publish("orders", 2, start=3)  # while unsubscribed: not for it

    ledger.topics.add(orders)
    publish("orders", 1, start=5)
    drain(Worker(), until=lambda: handled())

    assert sorted(handled()) == ["ord-5"]
