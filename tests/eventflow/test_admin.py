"""The admin: an operator configures the flow and handles failed events here."""

from __future__ import annotations

import re

import orjson
import pytest
from django.contrib.sessions.models import Session
from django.db import connection as db_connection
from django.urls import reverse

from eventflow import connection, keys
from eventflow.models import Consumer, FailedEvent, Producer, Topic
from tests.helpers import publish_status

TOKEN = re.compile(r"<code>(ef_[A-Za-z0-9_-]+)</code>")


def tokens_shown(response) -> list[str]:
    return TOKEN.findall(response.content.decode())


def database_text() -> str:
    """Every row of every table, and every session decoded, as one string."""
    chunks = []
    with db_connection.cursor() as cursor:
        for table in db_connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {db_connection.ops.quote_name(table)}")
            chunks.append(repr(cursor.fetchall()))
    chunks += [repr(session.get_decoded()) for session in Session.objects.all()]
    return "\n".join(chunks)


def consumer_form(**overrides) -> dict:
    form = {
        "name": "audit",
        "description": "",
        "kind": "python",
        "handler": "tests.handlers.billing",
        "event_types": "",
        "max_attempts": 5,
        "retry_initial": 1.0,
        "retry_factor": 2.0,
        "retry_max": 300.0,
        "ack_timeout": 30.0,
        "stall_threshold": 30.0,
        "failure_threshold": 0.5,
        "failure_warning": 0.05,
        "dead_letter_warning": 1,
    }
    return {**form, **overrides}


def topic_form(**overrides) -> dict:
    form = {
        "name": "refunds",
        "description": "",
        "active": "on",
        "retention_max_events": 1000,
        "retention_max_age": "",
        "max_event_bytes": 65536,
        "data_schema": "",
    }
    return {**form, **overrides}


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    """Logging in is not under test here; PBKDF2 would spend half a second per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def failed_event(billing, shipping, orders):
    event = {"specversion": "1.0", "id": "e-1", "type": "order.created", "topic": "orders", "data": {"n": 1}}
    return FailedEvent.objects.create(
        consumer=billing,
        topic=orders,
        event_id="e-1",
        stream_id="1-0",
        event_type="order.created",
        event=event,
        error="ValueError: no",
        attempts=5,
    )


# --- pages --------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["topic", "producer", "consumer", "failedevent"])
def test_its_changelist_loads_for_a_superuser(admin_client, model, failed_event, shop):
    response = admin_client.get(reverse(f"admin:eventflow_{model}_changelist"))
    assert response.status_code == 200


def test_admin_pages_carry_a_content_security_policy(admin_client, db):
    policy = admin_client.get("/admin/eventflow/topic/")["Content-Security-Policy"]

    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


@pytest.mark.parametrize("model", ["topic", "producer", "consumer"])
def test_its_add_form_loads_for_a_superuser(admin_client, model):
    assert admin_client.get(reverse(f"admin:eventflow_{model}_add")).status_code == 200


def test_failed_events_are_recorded_by_workers_not_added_by_hand(admin_client, failed_event):
    assert admin_client.get(reverse("admin:eventflow_failedevent_add")).status_code == 403
    page = admin_client.get(reverse("admin:eventflow_failedevent_change", args=[failed_event.pk]))
    assert page.status_code == 200 and "ValueError: no" in page.content.decode()


@pytest.mark.parametrize("model", ["topic", "producer", "consumer"])
def test_its_change_form_loads_for_a_superuser(admin_client, model, billing, shop):
    row = {"topic": Topic, "producer": Producer, "consumer": Consumer}[model].objects.first()
    assert admin_client.get(reverse(f"admin:eventflow_{model}_change", args=[row.pk])).status_code == 200


def test_the_changelists_search(admin_client, billing, shop, failed_event):
    for model, term in [("topic", "orders"), ("producer", "shop"), ("consumer", "billing"), ("failedevent", "e-1")]:
        response = admin_client.get(reverse(f"admin:eventflow_{model}_changelist"), {"q": term})
        assert response.status_code == 200 and term in response.content.decode()


# --- producers and their tokens -----------------------------------------------------------


def test_creating_a_producer_shows_its_token_once_and_stores_only_its_hash(admin_client, client, orders):
    response = admin_client.post(
        reverse("admin:eventflow_producer_add"),
        {"name": "pos", "description": "", "topics": [orders.pk]},
        follow=True,
    )

    [token] = tokens_shown(response)
    producer = Producer.objects.get(name="pos")
    assert producer.token_hash and producer.token_hash != token
    assert token not in database_text()
    assert publish_status(client, token) == 202
    again = admin_client.get(reverse("admin:eventflow_producer_change", args=[producer.pk]))
    assert tokens_shown(again) == [] and token not in again.content.decode()


def test_rotating_a_token_shows_the_new_one_and_the_old_one_stops_working(admin_client, client, shop, shop_token):
    response = admin_client.post(
        reverse("admin:eventflow_producer_changelist"),
        {"action": "rotate_tokens", "_selected_action": [shop.pk]},
        follow=True,
    )

    [new_token] = tokens_shown(response)
    assert new_token != shop_token and new_token not in database_text()
    assert publish_status(client, shop_token) == 401
    assert publish_status(client, new_token) == 202


def test_revoking_a_token_answers_401_for_it(admin_client, client, shop, shop_token):
    assert publish_status(client, shop_token) == 202

    response = admin_client.post(
        reverse("admin:eventflow_producer_changelist"),
        {"action": "revoke_tokens", "_selected_action": [shop.pk]},
        follow=True,
    )

    assert "Revoked 1 token" in response.content.decode()
    assert publish_status(client, shop_token) == 401
    shop.refresh_from_db()
    assert shop.is_revoked


def test_rotating_a_revoked_token_issues_a_working_one(admin_client, client, shop):
    shop.revoke()

    response = admin_client.post(
        reverse("admin:eventflow_producer_changelist"),
        {"action": "rotate_tokens", "_selected_action": [shop.pk]},
        follow=True,
    )

    assert publish_status(client, tokens_shown(response)[0]) == 202


def test_editing_a_producer_keeps_its_token(admin_client, client, shop, shop_token, orders, payments):
    response = admin_client.post(
        reverse("admin:eventflow_producer_change", args=[shop.pk]),
        {"name": "shop", "description": "the web shop", "topics": [orders.pk, payments.pk]},
        follow=True,
    )

    assert response.status_code == 200 and tokens_shown(response) == []
    assert publish_status(client, shop_token, topic="payments") == 202


# --- consumers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "handler, message",
    [
        ("tests.handlers.does_not_exist", "Cannot import"),
        ("no.such.module.handle", "Cannot import"),
        ("nodots", "Cannot import"),
        ("tests.handlers.not_callable", "is not callable"),
        ("tests.eventflow.broken_handler.handle", "settings for this handler are missing"),
    ],
    ids=["missing-name", "missing-module", "not-a-path", "not-callable", "module-raises"],
)
def test_a_consumer_whose_handler_cannot_be_used_gets_a_clear_error(admin_client, orders, handler, message):
    response = admin_client.post(
        reverse("admin:eventflow_consumer_add"), consumer_form(handler=handler, topics=[orders.pk])
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors["handler"])
    assert not Consumer.objects.filter(name="audit").exists()


def test_a_consumer_with_an_importable_handler_is_saved_with_its_topics(admin_client, orders, payments):
    response = admin_client.post(
        reverse("admin:eventflow_consumer_add"), consumer_form(topics=[orders.pk, payments.pk])
    )

    assert response.status_code == 302
    assert set(Consumer.objects.get(name="audit").topics.values_list("name", flat=True)) == {"orders", "payments"}


def test_a_consumer_cannot_retry_sooner_at_most_than_at_first(admin_client, orders):
    response = admin_client.post(
        reverse("admin:eventflow_consumer_add"), consumer_form(retry_initial=10, retry_max=1, topics=[orders.pk])
    )
    assert "retry_max" in response.context["adminform"].form.errors


def test_pausing_and_resuming_consumers_from_the_list(admin_client, billing):
    url = reverse("admin:eventflow_consumer_changelist")
    admin_client.post(url, {"action": "pause", "_selected_action": [billing.pk]})
    billing.refresh_from_db()
    assert billing.paused
    admin_client.post(url, {"action": "resume", "_selected_action": [billing.pk]})
    billing.refresh_from_db()
    assert not billing.paused


# --- topics -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema, message",
    [
        ('{"type": "nonsense"}', "not a valid JSON Schema"),
        ("5", "must be a JSON object"),
        ('{"$ref": "https://example.com/s.json"}', "cannot resolve"),
        ("{not json", "Enter a valid JSON"),
    ],
    ids=["bad-type", "not-an-object", "remote-ref", "not-json"],
)
def test_an_invalid_json_schema_is_a_clear_form_error(admin_client, schema, message):
    response = admin_client.post(reverse("admin:eventflow_topic_add"), topic_form(data_schema=schema))

    assert response.status_code == 200
    assert message in " ".join(response.context["adminform"].form.errors["data_schema"])
    assert not Topic.objects.filter(name="refunds").exists()


def test_a_valid_json_schema_is_saved_and_enforced(admin_client, client, shop_token, orders):
    schema = {"type": "object", "required": ["order"]}
    form = topic_form(name="orders", data_schema=orjson.dumps(schema).decode())

    response = admin_client.post(reverse("admin:eventflow_topic_change", args=[orders.pk]), form)

    assert response.status_code == 302
    orders.refresh_from_db()
    assert orders.data_schema == schema
    assert publish_status(client, shop_token) == 422, "an event without data.order fails the new schema"


@pytest.mark.parametrize("name", ["Orders", "has space", "-leading", "a/b", ""])
def test_a_topic_name_must_be_url_safe(admin_client, name):
    response = admin_client.post(reverse("admin:eventflow_topic_add"), topic_form(name=name))
    assert "name" in response.context["adminform"].form.errors


# --- failed events ------------------------------------------------------------------------


def test_the_replay_action_queues_the_event_for_its_consumer_only(client, staff_user, failed_event, redis_client):
    client.force_login(staff_user)

    response = client.post(
        reverse("admin:eventflow_failedevent_changelist"),
        {"action": "replay", "_selected_action": [failed_event.pk]},
        follow=True,
    )

    assert "Replaying 1 event(s)." in response.content.decode()
    failed_event.refresh_from_db()
    assert failed_event.status == FailedEvent.Status.REPLAYING
    assert failed_event.replayed_by == staff_user and failed_event.replay_count == 1
    member = f"replay:{failed_event.pk}"
    assert redis_client.zscore(keys.retry_schedule("orders", "billing"), member) is not None
    assert redis_client.exists(keys.retry_schedule("orders", "shipping")) == 0


def test_the_replay_action_skips_an_event_already_replaying(admin_client, failed_event, redis_client):
    url = reverse("admin:eventflow_failedevent_changelist")
    admin_client.post(url, {"action": "replay", "_selected_action": [failed_event.pk]})

    response = admin_client.post(url, {"action": "replay", "_selected_action": [failed_event.pk]}, follow=True)

    assert "Replaying 0 event(s)." in response.content.decode()
    assert "not replayable" in response.content.decode()


def test_the_replay_action_says_so_when_redis_is_unreachable(admin_client, failed_event, settings, redis_url):
    settings.EVENTFLOW_REDIS_URL = "redis://127.0.0.1:1/0"
    connection.reset()

    response = admin_client.post(
        reverse("admin:eventflow_failedevent_changelist"),
        {"action": "replay", "_selected_action": [failed_event.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "unreachable" in response.content.decode()
    failed_event.refresh_from_db()
    assert failed_event.status == FailedEvent.Status.FAILED


def test_the_replay_action_is_offered_only_to_users_who_may_replay(client, django_user_model, failed_event):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="viewer-pass-1", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_failedevent", "change_failedevent"]))
    client.force_login(viewer)

    response = client.get(reverse("admin:eventflow_failedevent_changelist"))

    assert response.status_code == 200
    offered = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "discard" in offered and "replay" not in offered


def test_the_discard_action_discards_open_failures(admin_client, failed_event):
    admin_client.post(
        reverse("admin:eventflow_failedevent_changelist"),
        {"action": "discard", "_selected_action": [failed_event.pk]},
    )
    failed_event.refresh_from_db()
    assert failed_event.status == FailedEvent.Status.DISCARDED


def test_the_admin_refuses_an_event_type_pattern_with_an_unclosed_bracket(admin_client, orders):
    response = admin_client.post("/admin/eventflow/consumer/add/", consumer_form(topics=[orders.pk], event_types="[signup"))
    assert response.status_code == 200
    assert "an unclosed" in response.content.decode()
    assert not Consumer.objects.filter(name="audit").exists()
