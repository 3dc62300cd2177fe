"""The live bridge: from monitor snapshots to rendered fragments on channel groups.

One place names the channel groups and the message types (each page's live
partials: ``dashboard.live_pages``). ``Bridge.run_once()`` is one step of the ``monitor`` command: it
samples (through ``eventflow.monitor``), renders the partials of the pages
someone is watching, and ``group_send``s them, already rendered, for the
WebSocket consumers to forward. Pushes are hints: a socket gets a full
snapshot on connect, so a dropped message is repaired by the next one or a
reconnect.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import DatabaseError, connections
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from eventflow import alerts, inspection, keys, monitor
from eventflow.connection import get_redis
from eventflow.models import FailedEvent
from eventflow.snapshot import Snapshot

from .live_pages import PAGES
from .templatetags.eventflow_ui import tail_text

logger = logging.getLogger(__name__)

FRAGMENTS = "live.fragments"  # {"html": str}: out-of-band swaps, forwarded as they are
FAILED_ROWS = "live.failed_rows"  # {"ids"}: failed-event rows whose status moved, for the sockets to render
FAILED_NEW = "live.failed_new"  # {"count"}: new failures; each failed page asks for the rows its filter matches
TAIL = "live.tail"  # {"topic", "rows": [{"type", "key", "text", "html"}], "skipped"}
WATCH_SECONDS = 30.0  # a page stays watched this long after its socket last said so
ROW_PUSH_LIMIT = 200  # failed-event rows pushed per step
TAIL_LOOKBACK = 5.0  # seconds a newly watched topic's tail starts in the past
TAIL_LIMIT = 10  # rows per topic per tail step; the rest are counted as skipped
TAIL_PAGE_ROWS = 300  # rows a topic page keeps (eventflow.js trims the rest)
EVENT_PAGE_LIMIT = 50  # open event pages whose delivery matrix is pushed each second
LIST_PAGE_LIMIT = 50  # distinct list queries pushed each second (one render serves every tab on it)


_GROUP_SAFE = re.compile(r"[A-Za-z0-9._-]+")  # what a channel group name may hold


def group_name(page: str, name: str = "") -> str:
    """The channel group of one page (``ef.topic.orders``, ``ef.event.orders.1712345678901-0``).

    Names are URL-safe already, but for the "/" of event pages; a name too long
    for a group (100 characters) is hashed.
    """
    group = f"ef.{page}.{name.replace('/', '.')}" if name else f"ef.{page}"
    if len(group) < 100 and _GROUP_SAFE.fullmatch(group):
        return group
    return f"ef.{page}.h{hashlib.sha1(name.encode()).hexdigest()}"


def snapshot_html(page: str, name: str) -> str:
    """What a socket gets when it opens: the page's live partials as they are now."""
    return PAGES[page].render_partials(name)


def watch(page: str, name: str) -> None:
    """Tell the monitor someone has this page open (topic tails are read only then)."""
    get_redis().zadd(keys.tail_watchers(), {f"{page}:{name}": time.time() + WATCH_SECONDS})


def watched() -> set[tuple[str, str]]:
    client = get_redis()
    now = time.time()
    client.zremrangebyscore(keys.tail_watchers(), "-inf", now)
    members = client.zrangebyscore(keys.tail_watchers(), now, "+inf", start=0, num=1000)
    return {tuple(m.decode().split(":", 1)) for m in members}  # type: ignore[misc]


def tail_row(topic: str, stream_id: str, envelope: dict) -> dict:
    """One tail row, rendered once, with the fields sockets filter on."""
    html = render_to_string(
        "dashboard/topic.html#tail-row", {"topic_name": topic, "stream_id": stream_id, "event": envelope}
    )
    return {
        "id": stream_id,
        "type": str(envelope.get("type", "")),
        "key": str(envelope.get("key") or ""),
        "text": tail_text(envelope),
        "html": html,
    }


def catch_up(topic: str, since: str, limit: int) -> list[dict]:
    """Tail rows published after stream id ``since``, newest first, at most ``limit``."""
    events, _ = inspection.read_tail(get_redis(), topic, since, limit)
    return [tail_row(topic, sid, envelope) for sid, envelope in events]


class Bridge:
    """Samples, renders and pushes; tails fast, everything else about once a second."""

    def __init__(self, sample_interval: float = 0.8) -> None:
        self.monitor = monitor.Monitor()
        self.sample_interval = sample_interval
        self._next_sample = 0.0
        self._cursors: dict[str, tuple[str, int]] = {}  # topic -> (stream id, published total)
        self._row_status: dict[int, str] = {}
        self._failed_at: dict[int, dt.datetime] = {}  # rows already announced, by their last failure
        self.alerter = alerts.Alerter(self.monitor.id)
        self._alert_pool = ThreadPoolExecutor(1, thread_name_prefix="alerts")
        self.alerting: Future | None = None  # the latest batch of alerts being sent

    def seconds_until_sample(self) -> float:
        return max(0.0, self._next_sample - time.monotonic())

    async def run_once(self) -> bool:
        """One step: return True if anything was pushed."""
        messages = await sync_to_async(self.collect)()
        layer = get_channel_layer()
        for group, message in messages:
            await layer.group_send(group, message)
        return bool(messages)

    def collect(self) -> list[tuple[str, dict[str, Any]]]:
        """Sample if due and render what changed; return (group, message) pairs."""
        client = get_redis()
        if not self.monitor.is_leader(client):
            return []
        pages = watched()
        messages = self._tails(client, {name for page, name in pages if page == "topic"})
        now = time.monotonic()
        if now >= self._next_sample:
            # On a fixed grid, so the gaps between pushes do not drift past the interval.
            self._next_sample += self.sample_interval
            if self._next_sample <= now:  # the first sample, or far behind: restart the grid
                self._next_sample = now + self.sample_interval
            snapshot = self.monitor.step()  # stored even while the database is down (it says so)
            try:
                self._alert(snapshot)
                messages += self._fragments(snapshot, pages)
                messages += self._failed_rows()
            except DatabaseError as exc:  # pages that read rows wait for the database; sampling goes on
                logger.warning("monitor: dashboard pages not rendered: database unavailable (%s)", exc)
        return messages

    def _alert(self, snapshot: Snapshot) -> None:
        """Run the alert rules; send what is due on another thread, so a slow channel never delays a push."""
        now = time.time()
        notices = self.alerter.due(snapshot, now)
        if notices:
            self.alerting = self._alert_pool.submit(_send_alerts, notices, now)

    def _fragments(self, snapshot: Snapshot, pages: set[tuple[str, str]]) -> list[tuple[str, dict]]:
        events = sorted(p for p in pages if p[0] == "event")[:EVENT_PAGE_LIMIT]
        lists = sorted(p for p in pages if p[1] and _named_by_query(p[0]))[:LIST_PAGE_LIMIT]
        targets = {("overview", ""), ("failed", "")} | {p for p in pages if p[0] in ("topic", "consumer")}
        targets |= set(events) | set(lists)
        messages = []
        for page, name in sorted(targets):
            html = PAGES[page].render_partials(name, snapshot)
            if html:
                messages.append((group_name(page, name), {"type": FRAGMENTS, "html": html}))
        return messages

    def _tails(self, client: Any, topics: set[str]) -> list[tuple[str, dict]]:
        messages = []
        for topic in sorted(topics):
            # A newly watched topic starts a little in the past: the page that asked
            # may have rendered before its newest events; sockets drop what they have.
            after, seen_total = self._cursors.get(topic, (f"{int((time.time() - TAIL_LOOKBACK) * 1000)}-0", -1))
            total = inspection.published_total(client, topic)
            events, cursor = inspection.read_tail(client, topic, after, TAIL_LIMIT)
            self._cursors[topic] = (cursor, total)
            if not events:
                continue
            skipped = max(0, total - seen_total - len(events)) if seen_total >= 0 else 0
            rows = [tail_row(topic, sid, envelope) for sid, envelope in events]
            messages.append((group_name("topic", topic), {"type": TAIL, "rows": rows, "skipped": skipped}))
        for gone in set(self._cursors) - topics:
            del self._cursors[gone]
        return messages

    def _failed_rows(self) -> list[tuple[str, dict]]:
        """Rows whose status moved since the last step (replaying → resolved / failed again).

        A replay can settle between two steps, so rows are found by their
        timestamps as well as by the REPLAYING status; the overlap is deduplicated.
        """
        since = timezone.now() - dt.timedelta(seconds=self.sample_interval + 2)
        recent = (
            Q(status=FailedEvent.Status.REPLAYING)
            | Q(replayed_at__gte=since)
            | Q(resolved_at__gte=since)
            | Q(last_failed_at__gte=since)
        )
        rows = list(FailedEvent.objects.filter(recent).select_related("consumer", "topic")[:ROW_PUSH_LIMIT])
        changed = [row for row in rows if self._row_status.get(row.pk) != row.status]
        self._row_status = {row.pk: row.status for row in rows}
        messages = self._new_failures(rows)
        if changed:  # each socket renders them, with the buttons its user may press
            messages.append((group_name("failed"), {"type": FAILED_ROWS, "ids": [row.pk for row in changed]}))
        return messages

    def _new_failures(self, rows: list[FailedEvent]) -> list[tuple[str, dict]]:
        """One hint if rows failed (again) since the last step; the sockets fetch what they show."""
        failing = {row.pk: row.last_failed_at for row in rows if row.is_replayable}
        fresh = [pk for pk, at in failing.items() if self._failed_at.get(pk) != at]
        self._failed_at = failing
        return [(group_name("failed"), {"type": FAILED_NEW, "count": len(fresh)})] if fresh else []


def _named_by_query(page: str) -> bool:
    """True for a list page (named by its query); False for others and for a page no longer served."""
    return page in PAGES and PAGES[page].name_from_query is not None


def _send_alerts(notices: list[alerts.Notice], now: float) -> None:
    try:
        alerts.deliver_all(notices, now)
    except Exception:  # noqa: BLE001 - the thread must live on for the next alerts
        logging.getLogger(__name__).exception("sending alerts failed")
    finally:
        # This thread's own connection: closed each time, so none lingers (a test database can be dropped).
        connections.close_all()
