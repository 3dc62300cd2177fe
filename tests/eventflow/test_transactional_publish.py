"""Publishing inside Django transactions: an event is published if and only if its transaction commits."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from django.db import transaction

from eventflow import connection, outbox, publish
from eventflow.errors import InvalidEvent
from eventflow.models import OutboxEvent
from tests.helpers import ROOT, free_port, process_env, wait_for
from tests.eventflow.test_publish_api import stored

pytestmark = pytest.mark.django_db(transaction=True)  # real commits and rollbacks


class Rollback(Exception):
    pass


def test_an_on_commit_event_is_stored_when_the_transaction_commits_not_before(orders, redis_client):
    with transaction.atomic():
        event_id = publish("orders", {"order": 1}, type="order.created", on_commit=True)
        assert stored(redis_client) == [], "nothing in Redis while the transaction is open"

    assert [e["id"] for e in stored(redis_client)] == [event_id]


def test_an_on_commit_event_of_a_rolled_back_transaction_is_never_stored(orders, redis_client):
    with pytest.raises(Rollback), transaction.atomic():
        publish("orders", {"order": 1}, type="order.created", on_commit=True)
        raise Rollback

    assert stored(redis_client) == []


def test_an_invalid_on_commit_event_is_refused_at_once_not_after_the_commit(orders):
    with pytest.raises(InvalidEvent), transaction.atomic():
        publish("orders", {"order": 1}, type="", on_commit=True)


def test_a_handler_in_sync_mode_sees_the_committed_row(orders, settings):
    from django.contrib.auth.models import Group

    from tests.helpers import make_consumer

    settings.EVENTFLOW_SYNC = True
    make_consumer("auditor", "tests.handlers.count_once", orders)
    with transaction.atomic():
        Group.objects.create(name="row-of-the-transaction")
        publish("orders", {}, type="order.created", id="seen", on_commit=True)
        assert not Group.objects.filter(name="effect-seen").exists(), "the handler waits for the commit"

    assert Group.objects.filter(name="effect-seen").exists()


def test_an_outbox_event_is_stored_after_the_commit_and_leaves_no_row(orders, redis_client):
    with transaction.atomic():
        event_id = publish("orders", {"order": 2}, type="order.created", outbox=True)
        assert OutboxEvent.objects.count() == 1 and stored(redis_client) == []

    assert [e["id"] for e in stored(redis_client)] == [event_id]
    assert not OutboxEvent.objects.exists()


def test_an_outbox_event_of_a_rolled_back_transaction_leaves_nothing(orders, redis_client):
    with pytest.raises(Rollback), transaction.atomic():
        publish("orders", {"order": 2}, type="order.created", outbox=True)
        raise Rollback

    assert stored(redis_client) == [] and not OutboxEvent.objects.exists()


CRASH_AFTER_COMMIT = textwrap.dedent(
    """
    import os, django
    django.setup()
    from django.db import transaction
    from eventflow import publish
    with transaction.atomic():
        # Registered first, so it runs first after the commit: the process dies before the outbox's store.
        transaction.on_commit(lambda: os._exit(17))
        print(publish("orders", {"order": 3}, type="order.created", outbox=True), flush=True)
    """
)


def test_a_crash_between_commit_and_store_is_healed_by_the_next_drain(orders, redis_client, key_prefix, redis_url):
    env = {**process_env(redis_url, key_prefix), "DJANGO_SETTINGS_MODULE": "dashboard.settings"}
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_COMMIT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert crashed.returncode == 17, crashed.stderr
    event_id = crashed.stdout.strip()
    assert stored(redis_client) == [], "the process died before storing"
    assert OutboxEvent.objects.count() == 1, "the commit kept the outbox row"

    assert outbox.drain() == 1

    assert [e["id"] for e in stored(redis_client)] == [event_id]
    assert not OutboxEvent.objects.exists()


def test_a_row_stored_twice_is_in_the_stream_once(orders, redis_client):
    with transaction.atomic():
        publish("orders", {"order": 4}, type="order.created", outbox=True)
        row = OutboxEvent.objects.get()
    OutboxEvent.objects.bulk_create([OutboxEvent(topic=row.topic, source=row.source, attributes=row.attributes)])

    outbox.drain()  # the same event again, as when a drain races the commit hook

    assert len(stored(redis_client)) == 1


@pytest.fixture
def redis_down_at_commit(settings, redis_url):
    """Publishing finds no Redis until ``restore()`` is called."""
    settings.EVENTFLOW_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    connection.reset()

    def restore() -> None:
        settings.EVENTFLOW_REDIS_URL = redis_url
        connection.reset()

    return restore


def test_an_outbox_event_waits_while_redis_is_down_at_commit_then_drains(orders, redis_client, redis_down_at_commit):
    with transaction.atomic():
        event_id = publish("orders", {}, type="order.created", outbox=True)
    assert OutboxEvent.objects.count() == 1, "the commit kept the row; the store failed"

    redis_down_at_commit()
    assert outbox.drain() == 1

    assert [e["id"] for e in stored(redis_client)] == [event_id] and not OutboxEvent.objects.exists()


@pytest.mark.processes
def test_a_worker_process_drains_the_outbox(billing, redis_client, redis_down_at_commit, spawn_worker):
    with transaction.atomic():
        event_id = publish("orders", {}, type="order.created", outbox=True)
    redis_down_at_commit()

    spawn_worker("billing")

    wait_for(lambda: not OutboxEvent.objects.exists(), message="the worker to drain the outbox")
    assert [e["id"] for e in stored(redis_client)] == [event_id]
