"""Real worker processes and a real ASGI server: nothing accepted is lost."""

from __future__ import annotations

import signal
from collections import Counter

import httpx
import pytest

from eventflow import keys, publish
from eventflow.models import FailedEvent
from tests import handlers
from tests.helpers import make_consumer, wait_for

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def test_a_thousand_events_over_http_are_each_handled_once_by_every_subscriber(
    asgi_server, shop_token, billing, shipping, spawn_worker, redis_client
):
    spawn_worker(), spawn_worker()
    wait_for(lambda: redis_client.zcard(keys.workers()) == 2, message="both workers to beat")
    ids: list[str] = []
    with httpx.Client(base_url=asgi_server, headers={"Authorization": f"Bearer {shop_token}"}) as client:
        for start in range(0, 1000, 100):
            batch = [{"type": "order.created", "data": {"n": n}} for n in range(start, start + 100)]
            reply = client.post("/api/v1/topics/orders/events", json={"events": batch})
            assert reply.status_code == 202, reply.text
            ids += reply.json()["ids"]

    for name in ("billing", "shipping"):
        wait_for(lambda n=name: len(handlers.seen(n)) >= 1000, message=f"{name} to handle 1,000 events")
    for name in ("billing", "shipping"):
        seen = handlers.seen(name)
        assert Counter(event_id for event_id, _, _ in seen) == Counter(ids)  # each exactly once
    assert len({pid for _, _, pid in handlers.seen("billing")}) == 2  # both workers took a share


def test_a_failing_consumer_ends_with_exactly_its_failed_events_and_replay_resolves_them(
    asgi_server, orders, shop_token, billing, spawn_worker, staff_user
):
    make_consumer("flaky", "tests.handlers.fails_on_odd", orders, max_attempts=3, retry_initial=0.05)
    spawn_worker()
    ids = [publish("orders", {"n": n}, type="order.created") for n in range(20)]
    odd = {ids[n] for n in range(1, 20, 2)}

    wait_for(lambda: FailedEvent.objects.count() == 10 and len(handlers.seen("flaky")) == 10, message="10 failures")
    assert {row.event_id for row in FailedEvent.objects.all()} == odd
    assert {row.attempts for row in FailedEvent.objects.all()} == {3}

    handlers.fix_flaky()
    client = httpx.Client(base_url=asgi_server)
    client.get("/login/")
    client.post(
        "/login/",
        data={
            "username": "operator",
            "password": "operator-pass-1",
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
    )
    reply = client.post(
        "/api/v1/failed-events/replay",
        json={"consumer": "flaky"},
        headers={"X-CSRFToken": client.cookies["csrftoken"], "Referer": asgi_server + "/"},
    )
    assert reply.status_code == 202, reply.text
    assert reply.json()["replayed"] == 10

    resolved = FailedEvent.Status.RESOLVED
    wait_for(lambda: FailedEvent.objects.filter(status=resolved).count() == 10, message="replays to resolve")
    assert Counter(e for e, _, _ in handlers.seen("flaky")) == Counter(ids)
    assert Counter(e for e, _, _ in handlers.seen("billing")) == Counter(ids)  # billing untouched by the replay


def test_a_worker_killed_mid_run_loses_nothing(orders, spawn_worker, redis_client):
    make_consumer("slowpoke", "tests.handlers.slow", orders, ack_timeout=1.0)
    ids = [publish("orders", {"sleep": 0.02}, type="order.created") for _ in range(200)]
    victim = spawn_worker()
    wait_for(lambda: len(handlers.seen("slow")) >= 20, message="the first worker to get going")

    victim.send_signal(signal.SIGKILL)
    victim.wait(5)
    spawn_worker()

    wait_for(lambda: set(ids) <= {e for e, _, _ in handlers.seen("slow")}, timeout=60, message="every event handled")
    wait_for(
        lambda: redis_client.xpending(keys.stream("orders"), "slowpoke")["pending"] == 0, message="nothing pending"
    )


def test_sigterm_finishes_in_flight_events_and_exits_cleanly(orders, spawn_worker, redis_client):
    make_consumer("slowpoke", "tests.handlers.slow", orders)
    worker = spawn_worker()
    wait_for(lambda: redis_client.exists(keys.workers()), message="the worker's first heartbeat")
    for _ in range(5):
        publish("orders", {"sleep": 0.3}, type="order.created")
    wait_for(lambda: handlers.seen("slow"), message="the first event to be handled")

    worker.send_signal(signal.SIGTERM)

    assert worker.wait(20) == 0
    pending = redis_client.xpending(keys.stream("orders"), "slowpoke")["pending"]
    assert pending == 0, f"{pending} events left pending by a clean shutdown"
    assert redis_client.zcard(keys.workers()) == 0  # it signed off
