"""The consumer page's "Stuck work" card: each button, its permission and its CSRF check."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from eventflow import delivery, keys, publish, stuck
from eventflow.connection import get_redis
from eventflow.models import Consumer, FailedEvent
from tests.helpers import make_consumer


@pytest.fixture
def slowpoke(orders):
    return make_consumer("slowpoke", "tests.handlers.billing", orders, ack_timeout=0.2)


@pytest.fixture
def operator(staff_user):
    staff_user.user_permissions.add(Permission.objects.get(codename="change_consumer"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    client.get("/login/")
    return client, client.cookies["csrftoken"].value


def hx_post(client: Client, token: str, url: str, data: dict | None = None):
    return client.post(url, data or {}, headers={"X-CSRFToken": token, "HX-Request": "true"})


def poison(count: int = 1) -> None:
    for n in range(count):
        publish("orders", {"n": n}, type="order.created")
    delivery.read_new(get_redis(), "slowpoke", "ghost-worker", ("orders",), count, None)
    time.sleep(0.25)


def test_the_card_lists_pending_entries_with_their_worker_gone(operator, slowpoke):
    client, _ = operator
    poison(2)

    page = client.get("/consumers/slowpoke/").content.decode()

    assert 'id="consumer-stuck"' in page and page.count(">gone</span>") == 2
    assert "Reclaim 2 from gone workers" in page and "Skip backlog of orders to now…" in page


def test_dead_letter_now_makes_a_failed_event_that_says_who(operator, slowpoke):
    client, token = operator
    poison()
    sid = get_redis().xrange(keys.stream("orders"))[0][0].decode()

    reply = hx_post(client, token, "/consumers/slowpoke/dead-letter", {"topic": "orders", "stream_id": sid})

    assert f"Dead-lettered {sid}" in reply.content.decode()
    assert FailedEvent.objects.get().error == "dead-lettered by operator"


def test_skip_backlog_previews_then_skips(operator, slowpoke):
    client, token = operator
    for n in range(4):
        publish("orders", {"n": n}, type="order.created")

    preview = client.get("/consumers/slowpoke/skip-backlog?topic=orders", headers={"HX-Request": "true"})
    done = hx_post(client, token, "/consumers/slowpoke/skip-backlog/confirmed", {"topic": "orders"})

    assert "Skip 4 events" in preview.content.decode()
    assert "Skipped 4 events of orders" in done.content.decode()


def test_pause_and_resume(operator, slowpoke):
    client, token = operator

    paused = hx_post(client, token, "/consumers/slowpoke/pause", {"paused": "1"}).content.decode()
    assert Consumer.objects.get(name="slowpoke").paused and "Resume slowpoke" in paused
    hx_post(client, token, "/consumers/slowpoke/pause", {"paused": "0"})
    assert not Consumer.objects.get(name="slowpoke").paused


@pytest.mark.parametrize("url", ["reclaim", "dead-letter", "skip-backlog/confirmed", "pause"])
def test_without_the_permission_or_the_csrf_token_nothing_changes(staff_user, slowpoke, operator, url):
    watcher = Client(enforce_csrf_checks=True)
    watcher.force_login(staff_user.__class__.objects.create_user("watcher", password="w-pass-123", is_staff=True))
    watcher.get("/login/")
    client, _ = operator
    for n in range(3):
        publish("orders", {"n": n}, type="order.created")

    refused = hx_post(
        watcher, watcher.cookies["csrftoken"].value, f"/consumers/slowpoke/{url}", {"topic": "orders", "paused": "1"}
    )
    no_token = client.post(f"/consumers/slowpoke/{url}", {"topic": "orders", "paused": "1"})

    assert (refused.status_code, no_token.status_code) == (403, 403)
    assert not Consumer.objects.get(name="slowpoke").paused

    assert stuck.backlog(Consumer.objects.get(name="slowpoke"), "orders") == 3
