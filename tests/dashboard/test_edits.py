"""The "Edit & replay" page: correct a failed event's data, preview the diff, confirm; and where it shows."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from eventflow.models import FailedEvent, FailedEventEdit

FIXED = json.dumps({"amount": 12.5, "customer": {"tier": "gold"}})


@pytest.fixture
def editor(db, django_user_model):
    """Staff who may edit and replay (and see failed events), not replay as they are."""
    user = django_user_model.objects.create_user("editor", password="editor-pass-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["edit_failedevent_data", "view_failedevent"]))
    return user


@pytest.fixture
def browser(editor) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    client.get("/login/")
    return client, client.cookies["csrftoken"].value


def hx(client: Client, token: str, url: str, data: dict):
    return client.post(url, data, headers={"X-CSRFToken": token, "HX-Request": "true", "HX-Target": "edit-form"})


def test_the_page_shows_the_original_and_a_form_holding_its_data(browser, text_amount):
    client, _ = browser

    page = client.get(f"/failed/{text_amount.pk}/edit").content.decode()

    assert "Edit &amp; replay failed event" in page and 'id="edit-form"' in page
    assert "&quot;amount&quot;: &quot;12.50&quot;" in page  # the data, as JSON text in the textarea
    assert "sent to strict only" in page


def test_preview_shows_the_diff_and_offers_to_replay_without_sending(browser, text_amount):
    client, token = browser

    reply = hx(client, token, f"/failed/{text_amount.pk}/edit/preview", {"data": FIXED, "reason": "text amount"})

    html = reply.content.decode()
    assert reply.status_code == 200 and "1 change</strong>" in html
    assert "/data/amount" in html and "&quot;12.50&quot;" in html and "12.5</td>" in html
    assert "Replay corrected copy to strict" in html
    assert not FailedEventEdit.objects.exists()


def test_confirming_sends_the_copy_and_the_event_page_lists_the_edit(browser, text_amount, editor):
    client, token = browser
    values = {"data": FIXED, "reason": "text amount"}

    reply = hx(client, token, f"/failed/{text_amount.pk}/edit/send", values)

    edit = FailedEventEdit.objects.select_related("replay").get()
    assert f"replay #{edit.replay_id}" in reply.content.decode()
    assert (edit.replay.requested_by, edit.replay.reason, edit.changes) == (editor, "text amount", 1)
    event_page = client.get(f"/topics/orders/events/{text_amount.stream_id}/").content.decode()
    assert 'id="event-edits"' in event_page and f"#{edit.replay_id}</a>" in event_page
    assert "/data/amount" in event_page and "text amount" in event_page
    replay_page = client.get(f"/replays/{edit.replay_id}/").content.decode()
    assert f"failed event #{text_amount.pk}" in replay_page


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"data": '{"amount": ', "reason": "r"}, "malformed JSON"),
        ({"data": FIXED, "reason": ""}, "say why in &#x27;reason&#x27;"),
        ({"data": '{"amount": "12.50", "customer": {"tier": "gold"}}', "reason": "r"}, "the data is unchanged"),
        ({"data": '{"amount": -1}', "reason": "r"}, "fails the topic&#x27;s schema: data at amount"),
    ],
)
def test_a_refusal_is_said_in_the_form(browser, text_amount, orders, values, says):
    orders.data_schema = {"type": "object", "properties": {"amount": {"minimum": 0}}}
    orders.save()
    client, token = browser

    reply = hx(client, token, f"/failed/{text_amount.pk}/edit/send", values)

    assert reply.status_code == 200 and says in reply.content.decode()
    assert not FailedEventEdit.objects.exists()


def test_the_failed_row_and_the_event_page_offer_it_only_to_editors(browser, text_amount, operator):
    client, _ = browser
    link = f'href="/failed/{text_amount.pk}/edit"'

    as_editor = client.get("/failed/").content.decode(), client.get(f"/topics/orders/events/{text_amount.stream_id}/")
    as_replayer = operator.get("/failed/").content.decode()

    assert link in as_editor[0] and link in as_editor[1].content.decode()
    assert link not in as_replayer


def test_without_the_permission_or_the_csrf_token_it_is_refused(operator, browser, text_amount):
    client, _ = browser
    url = f"/failed/{text_amount.pk}/edit"

    page, preview = operator.get(url), operator.post(f"{url}/preview", {"data": FIXED, "reason": "r"})
    no_token = client.post(f"{url}/send", {"data": FIXED, "reason": "r"})

    assert (page.status_code, preview.status_code, no_token.status_code) == (403, 403, 403)
    text_amount.refresh_from_db()
    assert text_amount.status == FailedEvent.Status.FAILED and not FailedEventEdit.objects.exists()
