"""Alerts in the admin: channels with a test button, rules, and the read-only history."""

from __future__ import annotations

from django.urls import reverse

from eventflow.models import AlertChannel, AlertRule, SentAlert
from tests.eventflow.test_alerts import receiver, signed_correctly  # noqa: F401 - a real HTTP receiver

SECRET = "alert-signing-secret-0123456789"


def channel_form(url: str, **fields) -> dict:
    return {"name": "ops", "kind": "webhook", "url": url, "secret": SECRET, "recipients": "", "enabled": "on", **fields}


def test_the_test_button_saves_the_channel_and_sends_a_signed_test_alert(admin_client, receiver):  # noqa: F811
    channel = AlertChannel.objects.create(name="ops", url=receiver.url)
    page = reverse("admin:eventflow_alertchannel_change", args=[channel.pk])
    assert b'name="_send_test"' in admin_client.get(page).content

    response = admin_client.post(page, channel_form(receiver.url, _send_test="1"), follow=True)

    assert response.redirect_chain[-1][0] == page
    assert "Test alert sent to ops." in response.content.decode()
    [(headers, body)] = receiver.requests
    assert signed_correctly(headers, body)  # the secret saved with the same press signs it
    assert SentAlert.objects.get().kind == "test"


def test_a_test_alert_that_fails_says_why(admin_client, db):
    from tests.helpers import free_port

    channel = AlertChannel.objects.create(name="ops", url=f"http://127.0.0.1:{free_port()}/nobody")
    page = reverse("admin:eventflow_alertchannel_change", args=[channel.pk])

    response = admin_client.post(page, channel_form(channel.url, secret="", _send_test="1"), follow=True)

    assert "Test alert to ops failed: ConnectError" in response.content.decode()
    assert SentAlert.objects.get().ok is False


def test_a_webhook_channel_needs_a_url_and_a_usable_secret(admin_client, db):
    response = admin_client.post(reverse("admin:eventflow_alertchannel_add"), channel_form("", secret="short"))

    errors = response.context["adminform"].form.errors
    assert errors["url"] == ["Enter the URL alerts are POSTed to."]
    assert errors["secret"][0].startswith("Use at least 16 characters")


def test_an_email_channel_needs_an_address(admin_client, db):
    response = admin_client.post(reverse("admin:eventflow_alertchannel_add"), channel_form("", kind="email", secret=""))

    assert response.context["adminform"].form.errors["recipients"] == ["Enter at least one address."]


def test_a_rule_for_every_consumer_is_added_in_the_admin(admin_client, db):
    channel = AlertChannel.objects.create(name="ops", url="https://hooks.example/alerts")
    form = {"name": "stalls", "enabled": "on", "consumer": "", "threshold": "STALLED", "for_seconds": "60"}
    form |= {"channels": [channel.pk], "repeat_interval": "3600", "send_resolved": "on"}

    response = admin_client.post(reverse("admin:eventflow_alertrule_add"), form)

    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.consumer, rule.threshold, list(rule.channels.all())) == (None, "STALLED", [channel])
    listing = admin_client.get(reverse("admin:eventflow_alertrule_changelist")).content.decode()
    assert "every consumer" in listing


def test_the_history_is_read_only(admin_client, db):
    row = SentAlert.objects.create(kind="firing", consumer="billing", text="EventFlow consumer billing is STALLED")

    assert admin_client.get(reverse("admin:eventflow_sentalert_add")).status_code == 403
    listing = admin_client.get(reverse("admin:eventflow_sentalert_changelist")).content.decode()
    assert "EventFlow consumer billing is STALLED" in listing
    page = admin_client.get(reverse("admin:eventflow_sentalert_change", args=[row.pk])).content.decode()
    assert 'name="_save"' not in page
