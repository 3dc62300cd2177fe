"""Alerts from consumer health, with Burrow's notifier semantics.

After each monitor sample the leader calls ``Alerter.run_once(snapshot)``. For
every enabled ``AlertRule`` and every consumer it covers (one, or all):

1. A consumer at the rule's threshold or worse opens an *incident*; its start
   is kept in Redis (``keys.alert_incidents``), so a monitor that takes over
   the lead carries on instead of alerting again.
2. Once the incident has lasted ``for_seconds``, it fires: one alert per channel.
3. While it lasts, a reminder goes out every ``repeat_interval`` seconds
   (none when that is 0 or the rule is ``send_once``).
4. When the consumer is better than the threshold again, a fired incident
   sends "resolved" (when ``send_resolved``) and closes; one that never fired
   closes silently.

Only the holder of the monitor leader key sends, so several monitors send once.
A webhook channel gets ``{"text": <one line>, "eventflow": {...}}`` (Slack and
Teams show ``text``), signed like consumer webhooks when it has a secret; an
email channel gets a mail through Django's email backend. Every alert sent, or
tried, is a ``SentAlert`` row: the history.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import httpx
import orjson
from django.core.mail import send_mail

from . import keys, webhooks
from .connection import get_redis
from .health import SEVERITY
from .models import AlertChannel, AlertRule, SentAlert
from .snapshot import ConsumerState, Snapshot

logger = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds a channel may take to answer; the alert is recorded as failed after that
USER_AGENT = "EventFlow-Alerts/1"
Kind = SentAlert.Kind


def severity(status: str) -> int:
    """How bad ``status`` is, higher worse, by eventflow.health's one ranking; one it does not know is the worst."""
    return -SEVERITY.get(status, -1)


@dataclass(frozen=True, slots=True)
class Incident:
    """A consumer at or past a rule's threshold: since when, and when it was last told (wall-clock seconds)."""

    since: float
    fired: float | None = None
    sent: float | None = None
    status: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """One alert to send to each of the rule's channels."""

    rule: AlertRule
    consumer: str
    kind: str
    status: str
    reason: str
    since: float


# --- the rules, as pure steps --------------------------------------------------------


def step(
    rule: AlertRule, state: ConsumerState, incident: Incident | None, now: float
) -> tuple[Incident | None, str | None]:
    """Advance one rule's incident for one consumer's ``state``; return it and the kind of alert due, if any."""
    if severity(state["status"]) < severity(rule.threshold):
        if incident is not None and incident.fired is not None and rule.send_resolved:
            return None, Kind.RESOLVED
        return None, None
    if incident is None:
        incident = Incident(since=now)
    incident = replace(incident, status=state["status"])
    if incident.fired is None:
        if now - incident.since >= rule.for_seconds:
            return replace(incident, fired=now, sent=now), Kind.FIRING
        return incident, None
    if _reminder_due(rule, incident, now):
        return replace(incident, sent=now), Kind.REMINDER
    return incident, None


def _reminder_due(rule: AlertRule, incident: Incident, now: float) -> bool:
    if rule.send_once or rule.repeat_interval <= 0:
        return False
    return now - (incident.sent or incident.since) >= rule.repeat_interval


def covered(rule: AlertRule, consumers: list[ConsumerState]) -> list[ConsumerState]:
    if rule.consumer_id is None:
        return consumers
    return [c for c in consumers if c["name"] == rule.consumer.name]


# --- the alerter ---------------------------------------------------------------------


class Alerter:
    """Runs the rules over each snapshot, for the monitor whose id is ``monitor_id``."""

    def __init__(self, monitor_id: str) -> None:
        self.monitor_id = monitor_id

    def run_once(self, snapshot: Snapshot, now: float | None = None) -> list[Notice]:
        """Evaluate every enabled rule and send what is due; return the notices sent (none unless leader)."""
        now = time.time() if now is None else now
        notices = self.due(snapshot, now)
        deliver_all(notices, now)
        return notices

    def due(self, snapshot: Snapshot, now: float) -> list[Notice]:
        """Advance every incident and return the alerts due now, without sending them (none unless leader).

        The incidents are saved before anything is sent: a crash while sending
        must not send it twice.
        """
        client = get_redis()
        if client.get(keys.monitor_leader()) != self.monitor_id.encode():
            return []
        rules = list(AlertRule.objects.filter(enabled=True).select_related("consumer").prefetch_related("channels"))
        before = load_incidents(client)
        after: dict[str, Incident] = {}
        notices = []
        for rule in rules:
            for state in covered(rule, snapshot.get("consumers") or []):
                field = f"{rule.pk}:{state['name']}"
                incident, kind = step(rule, state, before.get(field), now)
                if incident is not None:
                    after[field] = incident
                if kind is not None:
                    since = (incident or before[field]).since
                    notices.append(Notice(rule, state["name"], kind, state["status"], state.get("reason", ""), since))
        save_incidents(client, before, after)
        return notices


def load_incidents(client: Any) -> dict[str, Incident]:
    return {k.decode(): Incident(**orjson.loads(v)) for k, v in client.hgetall(keys.alert_incidents()).items()}


def save_incidents(client: Any, before: dict[str, Incident], after: dict[str, Incident]) -> None:
    pipe = client.pipeline(transaction=True)
    gone = set(before) - set(after)
    if gone:
        pipe.hdel(keys.alert_incidents(), *gone)
    changed = {k: orjson.dumps(_fields(v)) for k, v in after.items() if before.get(k) != v}
    if changed:
        pipe.hset(keys.alert_incidents(), mapping=changed)
    pipe.execute()


def _fields(incident: Incident) -> dict:
    return {"since": incident.since, "fired": incident.fired, "sent": incident.sent, "status": incident.status}


# --- what is said, and where ---------------------------------------------------------


def text(notice: Notice, now: float) -> str:
    """The one line every channel shows."""
    lasted = _duration(now - notice.since)
    who = f"EventFlow consumer {notice.consumer}"
    rule = f"(rule {notice.rule.name!r})"
    if notice.kind == Kind.RESOLVED:
        return f"Resolved: {who} is {notice.status} again after {lasted} {rule}"
    if notice.kind == Kind.REMINDER:
        return f"{who} is still {notice.status} after {lasted}: {notice.reason} {rule}"
    return f"{who} is {notice.status}: {notice.reason} {rule}"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def deliver_all(notices: list[Notice], now: float) -> None:
    for notice in notices:
        deliver(notice, now)


def deliver(notice: Notice, now: float) -> list[SentAlert]:
    """Send ``notice`` to each enabled channel of its rule; record each try."""
    line = text(notice, now)
    details = {
        "kind": notice.kind,
        "rule": notice.rule.name,
        "consumer": notice.consumer,
        "status": notice.status,
        "reason": notice.reason,
        "since": _iso(notice.since),
        "at": _iso(now),
    }
    sent = []
    for channel in notice.rule.channels.all():
        if channel.enabled:
            error = send(channel, line, details)
            row = SentAlert(rule=notice.rule, channel=channel, consumer=notice.consumer, kind=notice.kind)
            row.status, row.text, row.ok, row.error = notice.status, line, not error, error
            sent.append(row)
    return SentAlert.objects.bulk_create(sent)


def send_test(channel: AlertChannel) -> SentAlert:
    """Send a test alert to ``channel`` now (the admin's button); return its history row."""
    line = f"Test alert from EventFlow to channel {channel.name!r}: alerts reach you."
    error = send(channel, line, {"kind": Kind.TEST, "at": _iso(time.time())})
    return SentAlert.objects.create(channel=channel, kind=Kind.TEST, text=line, ok=not error, error=error)


def send(channel: AlertChannel, line: str, details: dict) -> str:
    """Send one alert; return "" or why it failed (it is recorded, never raised)."""
    try:
        if channel.kind == AlertChannel.Kind.EMAIL:
            send_mail(line[:150], _mail_body(line, details), None, channel.recipient_list())
            return ""
        return post(channel, orjson.dumps({"text": line, "eventflow": details}))
    except Exception as exc:  # noqa: BLE001 - a broken channel must not stop the monitor
        logger.warning("alert to channel %s failed: %s", channel.name, exc)
        return f"{type(exc).__name__}: {exc}"[:2000]


def post(channel: AlertChannel, body: bytes) -> str:
    """POST ``body`` to a webhook channel, signed when it has a secret; "" on a 2xx answer."""
    message_id = f"alert_{uuid.uuid4().hex}"
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
    }
    if channel.secret:
        headers["webhook-signature"] = webhooks.sign(webhooks.signing_key(channel.secret), message_id, timestamp, body)
    response = httpx.post(channel.url, content=body, headers=headers, timeout=TIMEOUT, follow_redirects=False)
    return "" if response.is_success else f"HTTP {response.status_code} from {channel.url}"


def _mail_body(line: str, details: dict) -> str:
    return line + "\n\n" + "\n".join(f"{k}: {v}" for k, v in details.items()) + "\n"


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")
