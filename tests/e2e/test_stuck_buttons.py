"""The "Stuck work" buttons in Chromium: reclaim from a gone worker, dead-letter a poison event now."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from eventflow import delivery, publish
from eventflow.connection import get_redis
from eventflow.models import FailedEvent
from eventflow.worker import Worker
from tests.e2e.conftest import log_in
from tests.helpers import make_consumer


@pytest.fixture
def slowpoke(orders, staff_user):
    staff_user.user_permissions.add(Permission.objects.get(codename="change_consumer"))
    return make_consumer("slowpoke", "tests.handlers.billing", orders, ack_timeout=0.5)


def held_by_a_gone_worker(count: int) -> None:
    for n in range(count):
        publish("orders", {"n": n}, type="order.created")
    delivery.read_new(get_redis(), "slowpoke", "ghost-worker", ("orders",), count, None)
    time.sleep(0.6)


def test_reclaim_hands_a_gone_workers_events_to_a_live_one(page, slowpoke):
    held_by_a_gone_worker(3)
    alive = Worker(["slowpoke"])
    alive.refresh()
    alive.beat()  # a live worker of the consumer (its heartbeat), not yet looking at pending entries
    log_in(page, "/consumers/slowpoke/")
    expect(page.locator("#consumer-stuck .tag-bad")).to_have_count(3)

    page.get_by_role("button", name="Reclaim 3 from gone workers").click()

    expect(page.locator("#consumer-stuck .notice")).to_have_text("Reclaimed 3 pending events to a live worker.")
    expect(page.locator("#consumer-stuck .tag-bad")).to_have_count(0)
    expect(page.locator("#consumer-stuck tbody")).to_contain_text(alive.id)


def test_dead_letter_now_moves_a_poison_event_to_the_failed_events(page, slowpoke):
    held_by_a_gone_worker(1)
    log_in(page, "/consumers/slowpoke/")

    page.locator("#consumer-stuck").get_by_role("button", name="Dead-letter").click()

    expect(page.locator("#consumer-stuck .notice")).to_contain_text("Dead-lettered")
    expect(page.locator("#consumer-stuck tbody")).to_contain_text("No pending events.")
    assert FailedEvent.objects.get().error == "dead-lettered by operator"
