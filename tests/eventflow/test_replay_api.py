"""The replay jobs' API: plan, start, read and cancel; the same permission and CSRF rules as failed-event replay."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from eventflow import keys
from eventflow.connection import get_redis
from eventflow.models import Consumer, Replay, Topic
from eventflow.publishing import publish_batch
from tests.helpers import make_consumer

CREATE = "/api/v1/consumers/{}/replays"


def csrf_client(user) -> tuple[Client, str]:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/login/")
    return browser, browser.cookies["csrftoken"].value


def post(browser: Client, token: str, url: str, body: dict | None = None):
    return browser.post(url, body or {}, content_type="application/json", headers={"X-CSRFToken": token})


@pytest.fixture
def history(orders, billing) -> list[str]:
    return publish_batch("orders", [{"type": "order.created", "data": {"n": n}} for n in range(25)]).ids


@pytest.fixture
def operator(staff_user):
    return csrf_client(staff_user)


def first_sid() -> str:
    return get_redis().xrange(keys.stream("orders"), count=1)[0][0].decode()


def test_it_starts_a_replay_and_answers_202_with_the_count(operator, history, staff_user):
    browser, token = operator

    reply = post(browser, token, CREATE.format("billing"), {"topic": "orders", "from": "0", "reason": "rebuild"})

    assert reply.status_code == 202
    body = reply.json()
    assert body["matching"] == 25 and body["state"] == "planned"
    job = Replay.objects.get(pk=body["replay"])
    assert (job.requested_by, job.reason, job.matched, job.consumer.name) == (staff_user, "rebuild", 25, "billing")
    assert reply["Location"] == f"/api/v1/replays/{job.pk}"


def test_a_dry_run_previews_without_starting_anything(operator, history):
    browser, token = operator
    start = first_sid()

    reply = post(browser, token, CREATE.format("billing"), {"topic": "orders", "from": start, "dry_run": True})

    assert reply.status_code == 200
    body = reply.json()
    assert (body["replay"], body["matching"], body["first_match"], body["retention_cut"]) == (None, 25, start, None)
    assert body["first_match_time"].endswith("Z")
    assert not Replay.objects.exists()


def test_it_reads_a_replay_and_cancels_it(operator, history, staff_user):
    browser, token = operator
    created = post(browser, token, CREATE.format("billing"), {"topic": "orders", "from": "0", "reason": "why"}).json()

    read = browser.get(f"/api/v1/replays/{created['replay']}")
    cancelled = post(browser, token, f"/api/v1/replays/{created['replay']}/cancel")
    again = post(browser, token, f"/api/v1/replays/{created['replay']}/cancel")

    assert read.status_code == 200 and read.json()["state"] == "planned" and read.json()["requested_by"] == "operator"
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["cancelled_by"] == "operator"
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    ("consumer", "body", "status", "code"),
    [
        ("nobody", {"topic": "orders", "from": "0", "reason": "r"}, 404, "unknown_consumer"),
        ("billing", {"topic": "nowhere", "from": "0", "reason": "r"}, 404, "unknown_topic"),
        ("billing", {"topic": "payments", "from": "0", "reason": "r"}, 409, "not_subscribed"),
        ("billing", {"from": "0", "reason": "r"}, 400, "malformed_request"),
        ("billing", {"topic": "orders", "reason": "r"}, 400, "bad_from"),
        ("billing", {"topic": "orders", "from": "yesterday", "reason": "r"}, 400, "bad_from"),
        ("billing", {"topic": "orders", "from": "12-ab", "reason": "r"}, 400, "bad_from"),
        ("billing", {"topic": "orders", "from": "0", "to": "soon", "reason": "r"}, 400, "bad_to"),
        ("billing", {"topic": "orders", "from": "2000-0", "to": "1000-0", "reason": "r"}, 400, "bad_to"),
        ("billing", {"topic": "orders", "from": "0", "rate": 0, "reason": "r"}, 400, "bad_rate"),
        ("billing", {"topic": "orders", "from": "0", "rate": -5, "reason": "r"}, 400, "bad_rate"),
        ("billing", {"topic": "orders", "from": "0", "rate": "fast", "reason": "r"}, 400, "bad_rate"),
        ("billing", {"topic": "orders", "from": "0"}, 400, "reason_required"),
        ("billing", {"topic": "orders", "from": "0", "reason": "   "}, 400, "reason_required"),
        ("billing", {"topic": "orders", "from": "0", "reason": "r", "types": "x" * 300}, 400, "malformed_request"),
        ("billing", {"topic": "orders", "from": "0", "reason": "r", "field": {"path": ""}}, 400, "malformed_request"),
        ("billing", {"topic": "orders", "from": "0", "reason": "r", "colour": "red"}, 400, "malformed_request"),
        # PostgreSQL stores no NUL, in text or jsonb: refused on every database alike, never a 500
        ("billing", {"topic": "orders", "from": "0", "reason": "r\x00"}, 400, "nul"),
        ("billing", {"topic": "orders", "from": "0", "reason": "r", "types": ["order.\x00"]}, 400, "nul"),
        ("billing", {"topic": "ord\x00ers", "from": "0", "reason": "r"}, 400, "nul"),
        ("bill\x00ing", {"topic": "orders", "from": "0", "reason": "r"}, 404, "unknown_consumer"),
    ],
)
def test_bad_input_gets_a_clear_4xx_naming_the_problem(operator, history, payments, consumer, body, status, code):
    browser, token = operator

    reply = post(browser, token, CREATE.format(consumer), body)

    assert reply.status_code == status
    assert reply.json()["error"]["code"] == code
    assert reply.json()["error"]["message"]
    assert not Replay.objects.exists()


def test_a_body_that_is_not_json_is_refused(operator, history):
    browser, token = operator

    reply = browser.post(
        CREATE.format("billing"), b"{not json", content_type="application/json", headers={"X-CSRFToken": token}
    )

    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "malformed_json"


def test_an_unknown_replay_is_a_404(operator, db):
    browser, token = operator

    assert browser.get("/api/v1/replays/999").status_code == 404
    assert post(browser, token, "/api/v1/replays/999/cancel").json()["error"]["code"] == "not_found"


def test_a_time_range_counts_the_events_in_it(operator, history):
    browser, token = operator

    reply = post(
        browser,
        token,
        CREATE.format("billing"),
        {"topic": "orders", "from": "2000-01-01T00:00:00Z", "to": "2001-01-01T00:00:00", "dry_run": True},
    )

    assert reply.json()["matching"] == 0
    assert reply.json()["to"] == f"{978307200000}-{2**64 - 1}"


# --- who may ---------------------------------------------------------------------


@pytest.fixture
def watcher(db, django_user_model):
    user = django_user_model.objects.create_user("watcher", password="watcher-pass-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_failedevent", "change_failedevent"]))
    return user


def test_an_anonymous_visitor_is_sent_to_the_login_page(client, history):
    reply = client.post(
        CREATE.format("billing"), {"topic": "orders", "from": "0", "reason": "r"}, content_type="application/json"
    )

    assert reply.status_code == 302 and reply["Location"].startswith("/login/")
    assert not Replay.objects.exists()


def test_staff_without_the_replay_permission_is_refused(watcher, history):
    browser, token = csrf_client(watcher)

    start = post(browser, token, CREATE.format("billing"), {"topic": "orders", "from": "0", "reason": "r"})
    job = Replay.objects.create(
        consumer=Consumer.objects.get(name="billing"),
        topic=Topic.objects.get(name="orders"),
        from_id="0-0",
        to_id="0-0",
        reason="r",
    )
    read = browser.get(f"/api/v1/replays/{job.pk}")
    cancel = post(browser, token, f"/api/v1/replays/{job.pk}/cancel")

    assert (start.status_code, read.status_code, cancel.status_code) == (403, 403, 403)
    assert Replay.objects.count() == 1
    job.refresh_from_db()
    assert job.state == Replay.State.PLANNED


def test_a_post_without_the_csrf_token_is_refused_in_json(staff_user, history):
    browser, _ = csrf_client(staff_user)

    reply = browser.post(
        CREATE.format("billing"), {"topic": "orders", "from": "0", "reason": "r"}, content_type="application/json"
    )

    assert reply.status_code == 403 and reply.json()["error"]["code"] == "csrf_failed"
    assert not Replay.objects.exists()


def test_a_cancel_without_the_csrf_token_is_refused(staff_user, history, operator):
    browser, token = operator
    created = post(browser, token, CREATE.format("billing"), {"topic": "orders", "from": "0", "reason": "r"}).json()
    plain = Client(enforce_csrf_checks=True)
    plain.force_login(staff_user)

    reply = plain.post(f"/api/v1/replays/{created['replay']}/cancel")

    assert reply.status_code == 403
    assert Replay.objects.get(pk=created["replay"]).state == Replay.State.PLANNED


def test_a_failed_event_bulk_replay_is_planned_on_the_same_api(operator, orders, staff_user):
    from eventflow.models import Consumer, FailedEvent

    browser, token = operator
    consumer = make_consumer("flaky", "tests.handlers.always_fails", orders)
    for n in range(3):
        FailedEvent.objects.create(
            consumer=consumer, topic=orders, event_id=f"e{n}", event_type="t", event={"id": f"e{n}"}, error="x"
        )

    reply = post(
        browser, token, CREATE.format("flaky"), {"topic": "orders", "source": "failed", "reason": "fixed", "rate": 50}
    )

    assert reply.status_code == 202 and reply.json()["matching"] == 3
    assert Replay.objects.get().source == Replay.Source.FAILED
    assert Consumer.objects.count() == 1
