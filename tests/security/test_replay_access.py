"""Issue 4, item 10: who may replay a failed event, and how often one click replays.

Both replay doors are held to the same rules: the API
(``/api/v1/failed-events/<id>/replay``) and the dashboard's button
(``/failed/<id>/replay``).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from eventflow import keys
from eventflow.models import FailedEvent
from tests.helpers import make_consumer

DOORS = ["/api/v1/failed-events/{}/replay", "/failed/{}/replay"]


@pytest.fixture
def failed(orders) -> FailedEvent:
    consumer = make_consumer("billing", "tests.handlers.billing", orders)
    envelope = {
        "id": "e-1",
        "type": "order.created",
        "source": "shop",
        "topic": "orders",
        "time": "2026-01-31T12:00:00Z",
    }
    return FailedEvent.objects.create(
        consumer=consumer, topic=orders, event_id="e-1", event_type="order.created", event=envelope, error="boom"
    )


@pytest.fixture
def staff_without_replay(db, django_user_model):
    user = django_user_model.objects.create_user("watcher", password="watcher-pass-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_failedevent", "change_failedevent"]))
    return user


def csrf_client(user) -> tuple[Client, str]:
    """A logged-in browser that enforces CSRF, and the token its pages would carry."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/login/")  # sets the CSRF cookie
    return browser, browser.cookies["csrftoken"].value


def scheduled(failed: FailedEvent) -> int:
    from eventflow.connection import get_redis

    return get_redis().zcard(keys.retry_schedule("orders", "billing"))


@pytest.mark.parametrize("door", DOORS)
def test_an_anonymous_visitor_is_sent_to_the_login_page(client, failed, door):
    reply = client.post(door.format(failed.pk))

    assert reply.status_code == 302 and reply["Location"].startswith("/login/")
    assert scheduled(failed) == 0


@pytest.mark.parametrize("door", DOORS)
def test_staff_without_the_replay_permission_is_refused(staff_without_replay, failed, door):
    browser, token = csrf_client(staff_without_replay)

    reply = browser.post(door.format(failed.pk), headers={"X-CSRFToken": token})

    assert reply.status_code == 403
    assert scheduled(failed) == 0


@pytest.mark.parametrize("door", DOORS)
def test_get_is_not_allowed(staff_user, failed, door):
    browser, _ = csrf_client(staff_user)

    reply = browser.get(door.format(failed.pk))

    assert reply.status_code == 405 and reply["Allow"] == "POST"
    assert scheduled(failed) == 0


@pytest.mark.parametrize("door", DOORS)
def test_a_post_without_the_csrf_token_is_refused(staff_user, failed, door):
    browser, _ = csrf_client(staff_user)

    reply = browser.post(door.format(failed.pk))

    assert reply.status_code == 403
    assert scheduled(failed) == 0
    failed.refresh_from_db()
    assert failed.status == FailedEvent.Status.FAILED and failed.replay_count == 0


def test_the_api_answers_a_failed_csrf_check_in_json(staff_user, failed):
    browser, _ = csrf_client(staff_user)

    reply = browser.post(DOORS[0].format(failed.pk))

    assert reply["Content-Type"] == "application/json"
    assert reply.json()["error"]["code"] == "csrf_failed"


@pytest.mark.parametrize("door", DOORS)
def test_with_permission_and_csrf_a_double_click_replays_once_and_is_audited(staff_user, failed, door):
    browser, token = csrf_client(staff_user)

    first = browser.post(door.format(failed.pk), headers={"X-CSRFToken": token})
    second = browser.post(door.format(failed.pk), headers={"X-CSRFToken": token})

    assert first.status_code in (200, 202)
    assert second.status_code in (200, 409)  # the API says 409; the dashboard re-renders the row with the reason
    assert scheduled(failed) == 1
    failed.refresh_from_db()
    assert failed.status == FailedEvent.Status.REPLAYING and failed.replay_count == 1
    assert failed.replayed_by == staff_user and failed.replayed_at is not None  # who and when; the row is what


def test_a_bulk_replay_names_a_consumer_and_topic_only_by_strings(staff_user, failed):
    browser, token = csrf_client(staff_user)

    reply = browser.post(
        "/api/v1/failed-events/replay",
        {"topic": [None]},
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )

    assert reply.status_code == 400
    assert scheduled(failed) == 0


@pytest.mark.parametrize("ids", [["1780057443457868546994080877085479214257"], [2**64], ["²"], [True]])
def test_a_bulk_replay_refuses_ids_no_row_can_have_with_400_not_503(staff_user, failed, ids):
    browser, token = csrf_client(staff_user)

    reply = browser.post(
        "/api/v1/failed-events/replay", {"ids": ids}, content_type="application/json", headers={"X-CSRFToken": token}
    )

    assert reply.status_code == 400, reply.content
    assert scheduled(failed) == 0
