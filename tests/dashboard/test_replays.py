"""The consumer page's "Replay history" form, the job page, and lineage on the event page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from eventflow import keys, replay_worker, retention
from eventflow.connection import get_redis
from eventflow.models import Consumer, Replay, Topic
from eventflow.publishing import publish_batch
from eventflow.worker import Worker
from tests.helpers import drain


@pytest.fixture
def history(orders, billing, shipping) -> list[str]:
    publish_batch("orders", [{"type": "order.created", "data": {"n": n}} for n in range(12)])
    return [sid.decode() for sid, _ in get_redis().xrange(keys.stream("orders"))]


@pytest.fixture
def browser(staff_user) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    client.get("/login/")
    return client, client.cookies["csrftoken"].value


def form(**values: str) -> dict[str, str]:
    return {"source": "history", "topic": "orders", "from": "0", "reason": "rebuild the invoices", **values}


def hx(client: Client, token: str, url: str, data: dict, target: str = "replay-form"):
    return client.post(url, data, headers={"X-CSRFToken": token, "HX-Request": "true", "HX-Target": target})


def test_the_consumer_page_offers_the_replay_form(browser, history):
    client, _ = browser

    page = client.get("/consumers/billing/").content.decode()

    assert 'id="replay-form"' in page and "Replay history" in page
    assert 'name="reason"' in page and "Preview" in page


def test_preview_counts_the_matching_events_and_offers_start(browser, history):
    client, token = browser

    reply = hx(client, token, "/consumers/billing/replays/preview", form())

    text = reply.content.decode()
    assert reply.status_code == 200 and text.lstrip().startswith('<section id="replay-form"')
    assert "12 events match" in text and "Start replay of 12 events" in text
    assert not Replay.objects.exists()


def test_preview_says_when_retention_cut_part_of_the_range(browser, history):
    client, token = browser
    retention.trim("orders", 5, None)

    text = hx(client, token, "/consumers/billing/replays/preview", form(**{"from": history[0]})).content.decode()

    assert "5 events match" in text
    assert "Retention already cut part of the range" in text and "7 events" in text


def test_a_bad_field_shows_its_error_in_the_form(browser, history):
    client, token = browser

    text = hx(client, token, "/consumers/billing/replays/preview", form(rate="0")).content.decode()

    assert "rate" in text and 'role="alert"' in text


def test_start_creates_the_job_and_opens_its_page(browser, history, staff_user):
    client, token = browser

    reply = hx(client, token, "/consumers/billing/replays/start", form())

    job = Replay.objects.get()
    assert reply["HX-Redirect"] == f"/replays/{job.pk}/"
    assert (job.requested_by, job.reason, job.matched) == (staff_user, "rebuild the invoices", 12)
    page = client.get(f"/replays/{job.pk}/").content.decode()
    assert 'id="replay-progress"' in page and 'hx-trigger="every 1s"' in page and "Cancel replay" in page


def test_the_job_page_shows_progress_and_stops_polling_once_done(browser, history):
    client, token = browser
    hx(client, token, "/consumers/billing/replays/start", form())
    job = Replay.objects.get()
    worker = Worker()
    feeder = replay_worker.Feeder(worker.id, lambda: ["billing", "shipping"])
    drain(worker)
    for _ in range(200):
        feeder.run_once()
        worker.run_once()
        job.refresh_from_db()
        if job.state == Replay.State.DONE:
            break

    part = client.get(f"/replays/{job.pk}/", headers={"HX-Request": "true", "HX-Target": "replay-progress"})

    text = part.content.decode()
    assert text.lstrip().startswith('<section id="replay-progress"')
    assert 'data-count="handled">12<' in text and 'value="100"' in text
    assert "every 1s" not in text and "Cancel replay" not in text


def test_cancel_from_the_job_page(browser, history):
    client, token = browser
    hx(client, token, "/consumers/billing/replays/start", form())
    job = Replay.objects.get()

    reply = hx(client, token, f"/replays/{job.pk}/cancel", {}, target="replay-progress")

    assert "cancelled by operator" in reply.content.decode()
    job.refresh_from_db()
    assert job.state == Replay.State.CANCELLED


def test_staff_without_the_permission_neither_sees_the_form_nor_starts_or_cancels(history, django_user_model):
    user = django_user_model.objects.create_user("watcher", password="watcher-pass-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename="view_failedevent"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/login/")
    token = client.cookies["csrftoken"].value
    job = Replay.objects.create(
        consumer=Consumer.objects.get(name="billing"),
        topic=Topic.objects.get(name="orders"),
        from_id="0-0",
        to_id="0-0",
        reason="r",
    )

    page = client.get("/consumers/billing/").content.decode()
    started = hx(client, token, "/consumers/billing/replays/start", form())
    cancelled = hx(client, token, f"/replays/{job.pk}/cancel", {})

    assert "Replaying takes" in page and 'name="reason"' not in page
    assert (started.status_code, cancelled.status_code) == (403, 403)
    assert Replay.objects.count() == 1 and Replay.objects.get().state == Replay.State.PLANNED


def test_start_without_the_csrf_token_is_refused(browser, history):
    client, _ = browser

    reply = client.post("/consumers/billing/replays/start", form())

    assert reply.status_code == 403
    assert not Replay.objects.exists()


def test_the_event_page_lists_every_replay_that_sent_it_again_and_to_whom(browser, history):
    client, token = browser
    worker = Worker()
    drain(worker)
    hx(client, token, "/consumers/billing/replays/start", form())
    job = Replay.objects.get()
    feeder = replay_worker.Feeder(worker.id, lambda: ["billing"])
    for _ in range(200):
        feeder.run_once()
        worker.run_once()
        job.refresh_from_db()
        if job.state == Replay.State.DONE:
            break

    page = client.get(f"/topics/orders/events/{history[3]}/").content.decode()

    assert f'href="/replays/{job.pk}/">#{job.pk}</a>' in page
    start = page.index('id="sent-again"')
    section = page[start : page.index("</section>", start)]  # this card only (the causal tree follows it)
    assert 'href="/consumers/billing/">billing</a>' in section and "shipping" not in section
    assert "rebuild the invoices" in section


def test_the_delivery_matrix_shows_replayed_deliveries_apart_from_the_original(browser, history):
    client, token = browser
    worker = Worker()
    drain(worker)
    hx(client, token, "/consumers/billing/replays/start", form())
    job = Replay.objects.get()
    feeder = replay_worker.Feeder(worker.id, lambda: ["billing"])
    for _ in range(200):
        feeder.run_once()
        worker.run_once()
        job.refresh_from_db()
        if job.state == Replay.State.DONE:
            break

    page = client.get(f"/topics/orders/events/{history[3]}/").content.decode()

    start = page.index('id="delivery-matrix"')
    matrix = page[start : page.index("</section>", start)]
    billing = matrix[matrix.index('href="/consumers/billing/"') :]
    assert "(the original delivery)" in billing.split("</tr>", 1)[0]
    replayed = billing.split("</tr>", 1)[1].split("</tr>", 1)[0]
    assert f'data-replay="{job.pk}"' in replayed and f"replay #{job.pk}" in replayed
    assert "sent again to billing" in replayed and job.created_at.strftime("%Y-%m-%d %H:%M") in replayed
    shipping = matrix[matrix.index('href="/consumers/shipping/"') :]
    assert "data-replay" not in shipping and "(the original delivery)" not in shipping
