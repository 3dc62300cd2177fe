"""The alerts page: the rules and the newest alerts sent, for staff only."""

from __future__ import annotations

from eventflow.models import AlertChannel, AlertRule, SentAlert


def test_it_lists_the_rules_and_the_alerts_sent(operator, billing):
    channel = AlertChannel.objects.create(name="ops", url="https://hooks.example/alerts")
    rule = AlertRule.objects.create(name="stalls", consumer=billing, threshold="STALLED", for_seconds=30)
    rule.channels.add(channel)
    SentAlert.objects.create(rule=rule, channel=channel, consumer="billing", kind="firing", text="billing <b>STALLED")
    SentAlert.objects.create(channel=channel, kind="test", text="a test", ok=False, error="HTTP 500 from …")

    page = operator.get("/alerts/").content.decode()

    assert "STALLED or worse for 30 s" in page
    assert "every 3600 s; says when resolved" in page
    assert "billing &lt;b&gt;STALLED" in page  # inert text
    assert "no: HTTP 500 from …" in page


def test_it_is_for_staff_only(client, db):
    response = client.get("/alerts/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
