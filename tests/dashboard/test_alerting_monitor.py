"""The monitor command's step runs the alert rules, as the leader only, and sends off its thread."""

from __future__ import annotations

from dashboard import live
from eventflow import delivery, publish
from eventflow.connection import get_redis
from eventflow.models import AlertChannel, AlertRule, SentAlert
from tests.eventflow.test_alerts import receiver  # noqa: F401 - a real HTTP receiver


def test_the_leading_monitor_sends_an_alert_and_a_standby_does_not(
    transactional_db,
    receiver,  # noqa: F811
    orders,
    billing,
):
    channel = AlertChannel.objects.create(name="ops", url=receiver.url)
    rule = AlertRule.objects.create(name="stops", threshold="STOPPED", for_seconds=0)
    rule.channels.add(channel)
    delivery.ensure_group(get_redis(), "orders", "billing")
    publish("orders", {"n": 1}, type="order.created")  # a backlog and no worker: STOPPED
    leader, standby = live.Bridge(), live.Bridge()

    leader.collect()
    standby.collect()
    leader.alerting.result(timeout=10)

    assert standby.alerting is None
    assert [b["eventflow"]["consumer"] for b in receiver.bodies()] == ["billing"]
    assert SentAlert.objects.get().kind == "firing"
