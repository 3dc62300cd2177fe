"""Alerts from consumer health: a real HTTP receiver, a real Redis, the real monitor."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail

from eventflow import delivery, keys, publish
from eventflow.alerts import Alerter, severity, step
from eventflow.connection import get_redis
from eventflow.models import AlertChannel, AlertRule, SentAlert
from eventflow.monitor import Monitor
from tests.eventflow.test_monitor import beat
from tests.helpers import make_consumer

SECRET = "alert-signing-secret-0123456789"


class Receiver:
    """A real HTTP server on a free loopback port that keeps what it was sent."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def hung(orders):
    """A consumer with a live worker that holds its one event and never acks it."""
    consumer = make_consumer("hung", "tests.handlers.billing", orders, stall_threshold=1.0)
    delivery.ensure_group(get_redis(), "orders", "hung")
    return consumer


def webhook_channel(url: str, **options) -> AlertChannel:
    return AlertChannel.objects.create(name="ops", kind=AlertChannel.Kind.WEBHOOK, url=url, secret=SECRET, **options)


def make_rule(channel: AlertChannel, consumer=None, **options) -> AlertRule:
    rule = AlertRule.objects.create(name="stalls", consumer=consumer, **options)
    rule.channels.add(channel)
    return rule


def leading_monitor() -> Monitor:
    monitor = Monitor(flow_refresh=0.0)
    assert monitor.is_leader(get_redis())
    return monitor


def signed_correctly(headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks v1, computed here from its definition."""
    message = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest()).decode()
    return headers["webhook-signature"] == f"v1,{expected}"


def test_a_stalled_consumer_fires_once_and_resolves_once_it_recovers(receiver, hung):
    rule = make_rule(webhook_channel(receiver.url), hung, for_seconds=0, repeat_interval=60)
    monitor = leading_monitor()
    alerter = Alerter(monitor.id)
    beat("hung")
    publish("orders", {"n": 1}, type="order.created")
    [held] = delivery.read_new(get_redis(), "hung", "w1", ("orders",), 1, None)

    alerter.run_once(monitor.step())
    assert receiver.requests == []  # OK: held for less than the stall threshold
    time.sleep(1.1)
    for _ in range(4):  # stalled on every sample; the repeat interval is a minute away
        beat("hung")
        alerter.run_once(monitor.step())
    assert [b["eventflow"]["kind"] for b in receiver.bodies()] == ["firing"]
    get_redis().xack(keys.stream("orders"), keys.group("hung"), held.stream_id)
    alerter.run_once(monitor.step())
    alerter.run_once(monitor.step())

    firing, resolved = receiver.bodies()
    expected = r"EventFlow consumer hung is STALLED: no ack for \d+ s; backlog 1 \(rule 'stalls'\)"
    assert re.fullmatch(expected, firing["text"])
    assert firing["eventflow"] | {"since": "", "at": ""} == {
        "kind": "firing",
        "rule": "stalls",
        "consumer": "hung",
        "status": "STALLED",
        "reason": firing["eventflow"]["reason"],
        "since": "",
        "at": "",
    }
    assert resolved["text"].startswith("Resolved: EventFlow consumer hung is OK again after")
    assert all(signed_correctly(headers, body) for headers, body in receiver.requests)
    history = list(SentAlert.objects.order_by("id").values_list("kind", "consumer", "ok", "rule"))
    assert history == [("firing", "hung", True, rule.pk), ("resolved", "hung", True, rule.pk)]


def test_only_the_monitor_leader_sends_and_a_new_leader_does_not_send_again(receiver, hung):
    make_rule(webhook_channel(receiver.url), threshold="STOPPED", for_seconds=0)
    publish("orders", {"n": 1}, type="order.created")  # a backlog and no worker: STOPPED
    leader = leading_monitor()
    standby = Monitor(flow_refresh=0.0)
    snapshot = leader.step()

    assert Alerter(standby.id).run_once(snapshot) == []
    assert len(Alerter(leader.id).run_once(snapshot)) == 1
    get_redis().delete(keys.monitor_leader())  # the leader died; the standby takes over
    assert standby.is_leader(get_redis())
    assert Alerter(standby.id).run_once(standby.step()) == []

    assert len(receiver.requests) == 1


def test_a_rule_for_every_consumer_alerts_each_one(receiver, orders, payments):
    for name, topic in (("billing", orders), ("ledger", payments)):
        make_consumer(name, "tests.handlers.billing", topic)
        delivery.ensure_group(get_redis(), topic.name, name)
    make_rule(webhook_channel(receiver.url), threshold="STOPPED", for_seconds=0)
    publish("orders", {"n": 1}, type="order.created")
    publish("payments", {"n": 1}, type="payment.taken")
    monitor = leading_monitor()

    Alerter(monitor.id).run_once(monitor.step())

    assert sorted(b["eventflow"]["consumer"] for b in receiver.bodies()) == ["billing", "ledger"]


def test_an_email_channel_gets_a_mail_through_djangos_backend(hung):
    channel = AlertChannel.objects.create(name="oncall", kind=AlertChannel.Kind.EMAIL, recipients="a@x.test, b@x.test")
    make_rule(channel, threshold="STOPPED", for_seconds=0)
    publish("orders", {"n": 1}, type="order.created")
    monitor = leading_monitor()

    Alerter(monitor.id).run_once(monitor.step())

    [message] = mail.outbox
    assert message.to == ["a@x.test", "b@x.test"]
    assert message.subject.startswith("EventFlow consumer hung is STOPPED")
    assert "consumer: hung" in message.body


def test_a_failing_channel_is_recorded_in_the_history(hung):
    broken = Receiver(status=500)
    try:
        make_rule(webhook_channel(broken.url), threshold="STOPPED", for_seconds=0)
        publish("orders", {"n": 1}, type="order.created")
        monitor = leading_monitor()
        Alerter(monitor.id).run_once(monitor.step())
    finally:
        broken.server.shutdown()
        broken.server.server_close()

    [row] = SentAlert.objects.all()
    assert (row.ok, row.error) == (False, f"HTTP 500 from {broken.url}")


# --- the notifier's rules, step by step -----------------------------------------------------


def rule(**options) -> AlertRule:
    return AlertRule(name="r", **{"threshold": "STALLED", "for_seconds": 30, "repeat_interval": 60, **options})


def run(rule: AlertRule, statuses: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """Feed (time, status) samples through ``step``; return (time, kind) of every alert due."""
    incident, sent = None, []
    for now, status in statuses:
        incident, kind = step(rule, {"status": status}, incident, now)
        if kind:
            sent.append((now, str(kind)))
    return sent


def test_it_waits_for_the_status_to_last_before_firing():
    samples = [(0, "STALLED"), (20, "STALLED"), (29, "OK"), (30, "STALLED"), (59, "STALLED"), (60, "STALLED")]

    assert run(rule(), samples) == [(60, "firing")]


def test_it_reminds_every_repeat_interval_while_it_lasts():
    samples = [(t, "STALLED") for t in range(0, 200, 10)]

    assert run(rule(for_seconds=0), samples) == [(0, "firing"), (60, "reminder"), (120, "reminder"), (180, "reminder")]


def test_send_once_and_a_zero_interval_never_remind():
    samples = [(t, "STOPPED") for t in range(0, 200, 10)] + [(200, "OK")]

    assert run(rule(for_seconds=0, send_once=True), samples) == [(0, "firing"), (200, "resolved")]
    assert run(rule(for_seconds=0, repeat_interval=0, send_resolved=False), samples) == [(0, "firing")]


def test_worse_statuses_count_and_better_ones_resolve():
    samples = [(0, "LAGGING"), (10, "FAILING"), (20, "STOPPED"), (30, "LAGGING"), (40, "OK")]

    assert run(rule(for_seconds=0), samples) == [(10, "firing"), (30, "resolved")]
    assert run(rule(for_seconds=0, threshold="LAGGING"), samples) == [(0, "firing"), (40, "resolved")]


def test_an_incident_that_never_fired_closes_silently():
    assert run(rule(for_seconds=60), [(0, "STALLED"), (30, "OK"), (40, "OK")]) == []


def test_a_warning_ranks_as_health_ranks_it_so_a_stopped_only_rule_does_not_fire_on_it():
    assert severity("LAGGING") < severity("WARNING") < severity("STALLED") < severity("STOPPED")
    assert severity("WARNING") < severity(AlertRule.Threshold.STOPPED)
    assert severity("no such status") > severity("STOPPED")  # what it cannot read alerts, never hides

