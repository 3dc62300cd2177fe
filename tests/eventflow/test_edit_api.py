"""``POST /api/v1/failed-events/<id>/edits``: correct a failed event's data and replay it, by its own permission."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from eventflow.models import FailedEvent, FailedEventEdit, Replay
from tests.eventflow.test_replay_api import csrf_client, post

EDIT = "/api/v1/failed-events/{}/edits"
FIXED = {"amount": 12.5, "customer": {"tier": "gold"}}


@pytest.fixture
def row(text_amount):
    return text_amount


@pytest.fixture
def editor(db, django_user_model):
    user = django_user_model.objects.create_user("editor", password="editor-pass-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["edit_failedevent_data", "view_failedevent"]))
    return user


@pytest.fixture
def editing(editor):
    return csrf_client(editor)


def test_it_replays_the_corrected_copy_and_audits_who_when_why_and_the_diff(editing, editor, row):
    browser, token = editing

    reply = post(browser, token, EDIT.format(row.pk), {"data": FIXED, "reason": "amount came as text"})

    assert reply.status_code == 202
    body = reply.json()
    edit = FailedEventEdit.objects.select_related("replay").get(pk=body["edit"])
    assert (edit.replay.requested_by, edit.replay.reason, edit.replay.source) == (editor, "amount came as text", "edit")
    assert edit.replay.created_at is not None and edit.failed_event_id == row.pk
    change = {"path": "/data/amount", "op": "changed", "old": "12.50", "new": 12.5}
    assert edit.diff == body["diff"] == [change] and body["changes"] == 1
    assert (body["replay"], body["consumer"], body["failed_event"]) == (edit.replay.pk, "strict", row.pk)
    assert reply["Location"] == f"/api/v1/replays/{edit.replay.pk}"
    row.refresh_from_db()
    assert row.status == FailedEvent.Status.REPLAYING and row.event["data"]["amount"] == "12.50"


def test_a_dry_run_shows_the_diff_and_sends_nothing(editing, row):
    browser, token = editing

    reply = post(browser, token, EDIT.format(row.pk), {"data": FIXED, "dry_run": True})

    assert reply.status_code == 200
    assert reply.json()["diff"] == [{"path": "/data/amount", "op": "changed", "old": "12.50", "new": 12.5}]
    assert reply.json()["edit"] is None and not Replay.objects.exists()
    row.refresh_from_db()
    assert row.status == FailedEvent.Status.FAILED


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"data": FIXED}, 400, "reason_required"),
        ({"data": FIXED, "reason": "   "}, 400, "reason_required"),
        ({"reason": "why"}, 400, "missing_data"),
        ({"data": FIXED, "reason": "why", "extra": 1}, 400, "malformed_request"),
        ({"data": FIXED, "reason": "why", "dry_run": "yes"}, 400, "malformed_request"),
        ({"data": {"amount": "12.50", "customer": {"tier": "gold"}}, "reason": "why"}, 422, "unchanged"),
        ({"data": {"amount": -1}, "reason": "why"}, 422, "schema_mismatch"),
        ({"data": {"amount": 1, "note": "x" * 5000}, "reason": "why"}, 413, "too_large"),
        ({"data": {"amount": 1, "note": "\x00"}, "reason": "why"}, 400, "nul"),  # PostgreSQL's jsonb holds no NUL
        ({"data": FIXED, "reason": "why\x00"}, 400, "nul"),
    ],
)
def test_bad_input_gets_a_clear_4xx_naming_the_problem(editing, orders, row, body, status, code):
    orders.data_schema = {"type": "object", "properties": {"amount": {"minimum": 0}}}
    orders.max_event_bytes = 4096
    orders.save()
    browser, token = editing

    reply = post(browser, token, EDIT.format(row.pk), body)

    assert reply.status_code == status, reply.content
    error = reply.json()["error"]
    assert error["code"] == code and error["message"]
    assert not FailedEventEdit.objects.exists()


def test_a_schema_refusal_says_which_field_and_why(editing, orders, row):
    orders.data_schema = {"type": "object", "properties": {"amount": {"minimum": 0}}}
    orders.save()
    browser, token = editing

    reply = post(browser, token, EDIT.format(row.pk), {"data": {"amount": -1}, "reason": "why"})

    message = reply.json()["error"]["message"]
    assert message.startswith("the corrected event fails the topic's schema: data at amount") and "minimum" in message


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"data": {"amount": 1}, "reason": ', "malformed_json"),
        (b'{"data": 1, "data": 2, "reason": "why"}', "duplicate_key"),
    ],
)
def test_malformed_json_is_refused_with_400(editing, row, body, code):
    browser, token = editing

    reply = browser.post(EDIT.format(row.pk), body, content_type="application/json", headers={"X-CSRFToken": token})

    assert reply.status_code == 400 and reply.json()["error"]["code"] == code


def test_a_body_over_the_api_limit_is_refused_with_413(editing, row, settings):
    settings.EVENTFLOW_MAX_BODY_BYTES = 1024
    browser, token = editing

    reply = post(browser, token, EDIT.format(row.pk), {"data": {"amount": 1, "note": "x" * 2000}, "reason": "why"})

    assert reply.status_code == 413 and reply.json()["error"]["code"] == "too_large"


def test_an_unknown_failed_event_is_a_404_and_a_resolved_one_a_409(editing, row):
    browser, token = editing
    FailedEvent.objects.filter(pk=row.pk).update(status=FailedEvent.Status.RESOLVED)

    missing = post(browser, token, EDIT.format(row.pk + 1000), {"data": FIXED, "reason": "why"})
    resolved = post(browser, token, EDIT.format(row.pk), {"data": FIXED, "reason": "why"})

    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert resolved.status_code == 409 and resolved.json()["error"]["code"] == "not_replayable"


def test_the_replay_permission_alone_does_not_allow_editing(staff_user, row):
    browser, token = csrf_client(staff_user)  # may replay, may not edit

    reply = post(browser, token, EDIT.format(row.pk), {"data": FIXED, "reason": "why"})

    assert reply.status_code == 403 and reply.json()["error"]["code"] == "forbidden"
    assert not FailedEventEdit.objects.exists()


def test_staff_without_rights_and_anonymous_visitors_are_refused(client, django_user_model, row):
    clerk = django_user_model.objects.create_user("clerk", password="clerk-pass-1", is_staff=False)
    clerk.user_permissions.add(Permission.objects.get(codename="edit_failedevent_data"))
    browser, token = csrf_client(clerk)

    not_staff = post(browser, token, EDIT.format(row.pk), {"data": FIXED, "reason": "why"})
    anonymous = client.post(EDIT.format(row.pk), {"data": FIXED, "reason": "why"}, content_type="application/json")

    assert not_staff.status_code == 403
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    assert not FailedEventEdit.objects.exists()


def test_a_post_without_the_csrf_token_is_refused_in_json(editing, row):
    browser, _ = editing

    reply = browser.post(EDIT.format(row.pk), {"data": FIXED, "reason": "why"}, content_type="application/json")

    assert reply.status_code == 403 and reply.json()["error"]["code"] == "csrf_failed"
    assert not FailedEventEdit.objects.exists()
