"""One-click fixes for stuck work: reclaim, dead-letter now, skip the backlog, pause; each audited."""

from __future__ import annotations

import time

import pytest
from django.contrib.admin.models import LogEntry

from eventflow import delivery, publish, stuck
from eventflow.connection import get_redis
from eventflow.errors import Conflict, NotFound
from eventflow.models import FailedEvent
from eventflow.worker import Worker
from tests import handlers
from tests.helpers import drain, make_consumer


@pytest.fixture
def slowpoke(orders):
    return make_consumer("slowpoke", "tests.handlers.billing", orders, ack_timeout=0.2)


def held_by_a_gone_worker(count: int) -> list[str]:
    """Events a worker took and then vanished with (no heartbeat), idle past the ack timeout."""
    ids = [publish("orders", {"n": n}, type="order.created") for n in range(count)]
    delivery.read_new(get_redis(), "slowpoke", "ghost-worker", ("orders",), count, None)
    time.sleep(0.25)
    return ids


def test_it_reclaims_a_gone_workers_overdue_entries_to_a_live_worker(slowpoke, staff_user):
    ids = held_by_a_gone_worker(3)
    worker = Worker(["slowpoke"])
    worker.refresh()
    worker.beat()  # alive, and it has not looked at the pending entries yet

    entries = stuck.pending_entries(slowpoke)
    assert [(e.owner, e.owner_alive, e.overdue) for e in entries] == [("ghost-worker", False, True)] * 3
    assert stuck.reclaim_now(slowpoke, staff_user) == 3

    assert {e.owner for e in stuck.pending_entries(slowpoke)} == {worker.id}
    drain(worker)
    assert sorted(e for e, _, _ in handlers.seen("billing")) == sorted(ids)
    assert LogEntry.objects.get().change_message == f"reclaimed 3 pending events of gone workers for {worker.id}"


def test_it_refuses_to_reclaim_without_a_live_worker(slowpoke, staff_user):
    held_by_a_gone_worker(1)

    with pytest.raises(Conflict):
        stuck.reclaim_now(slowpoke, staff_user)


def test_it_dead_letters_a_poison_entry_now_and_acks_it(slowpoke, staff_user):
    [event_id] = held_by_a_gone_worker(1)
    [entry] = stuck.pending_entries(slowpoke)

    row = stuck.dead_letter_now(slowpoke, "orders", entry.stream_id, staff_user)

    assert (row.event_id, row.error, row.status) == (event_id, "dead-lettered by operator", FailedEvent.Status.FAILED)
    assert stuck.pending_entries(slowpoke) == []
    assert "dead-lettered orders" in LogEntry.objects.get().change_message
    with pytest.raises(NotFound):
        stuck.dead_letter_now(slowpoke, "orders", entry.stream_id, staff_user)


def test_it_previews_and_skips_the_backlog_to_now(slowpoke, staff_user):
    for n in range(7):
        publish("orders", {"n": n}, type="order.created")

    assert stuck.backlog(slowpoke, "orders") == 7
    assert stuck.skip_backlog(slowpoke, "orders", staff_user) == 7

    assert stuck.backlog(slowpoke, "orders") == 0
    later = publish("orders", {"n": 8}, type="order.created")
    drain(Worker(["slowpoke"]))
    assert [e for e, _, _ in handlers.seen("billing")] == [later]
    assert "7 events left unhandled" in LogEntry.objects.get().change_message


def test_it_pauses_and_resumes_and_says_who(slowpoke, staff_user):
    stuck.set_paused(slowpoke, True, staff_user)
    slowpoke.refresh_from_db()
    assert slowpoke.paused
    stuck.set_paused(slowpoke, False, staff_user)

    assert [e.change_message for e in LogEntry.objects.order_by("pk")] == ["paused", "resumed"]
    assert {e.user for e in LogEntry.objects.all()} == {staff_user}


def test_after_renames_it_acts_on_the_redis_identities_under_the_new_names(orders, slowpoke, staff_user):
    ids = held_by_a_gone_worker(3)
    orders.name, slowpoke.name = "sales", "slow"
    orders.save()
    slowpoke.save()
    publish("sales", {"n": 9}, type="order.created")

    entries = stuck.pending_entries(slowpoke)
    assert [e.topic for e in entries] == ["sales"] * 3
    assert stuck.backlog(slowpoke, "sales") == 1
    row = stuck.dead_letter_now(slowpoke, "sales", entries[0].stream_id, staff_user)
    assert (row.stream_id, row.topic_id) == (entries[0].stream_id, orders.pk) and row.event_id in ids
    assert len(stuck.pending_entries(slowpoke)) == 2
    assert stuck.skip_backlog(slowpoke, "sales", staff_user) == 1


@pytest.mark.django_db(transaction=True)  # the outage breaks any transaction around it, as a real one does
def test_a_dead_letter_now_goes_through_the_outbox_and_loses_nothing_while_the_database_is_down(
    slowpoke, staff_user
):
    from django.db import OperationalError, connection

    from eventflow import failures, keys

    [event_id] = held_by_a_gone_worker(1)
    [entry] = stuck.pending_entries(slowpoke)

    def database_down(*args):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    with connection.execute_wrapper(database_down):
        assert stuck.dead_letter_now(slowpoke, "orders", entry.stream_id, staff_user) is None

    assert stuck.pending_entries(slowpoke) == []  # acked, together with its parked dead letter
    assert get_redis().hlen(keys.dead_letters("orders", "slowpoke")) == 1
    assert FailedEvent.objects.count() == 0
    failures.drain_outbox(get_redis(), slowpoke.pk, slowpoke.group_name, ["orders"])
    row = FailedEvent.objects.get()
    assert (row.event_id, row.error) == (event_id, "dead-lettered by operator")
