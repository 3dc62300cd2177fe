"""Which failed events a page shows: the filter form, its query, keyset pages, a consumer's table.

Pages use keyset pagination on (last_failed_at, id), which the model's
indexes serve, so the 1,000th page costs what the first does. Shared by the
failed-events views, the consumer page and the live push (``failed_live``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.utils import timezone

from eventflow import replays
from eventflow.models import FailedEvent, Replay
from eventflow.permissions import can_discard, can_edit_and_replay, can_replay

from . import params

PAGE_ROWS = 50
FILTERS = ("consumer", "topic", "type", "q", "since", "until", "status", "event")
STATUS_FILTERS = ("", "open", "all", *FailedEvent.Status.values)
CONSUMER_ROWS = 20  # open failed events a consumer page shows (the rest: the failed-events page)
RECENTLY_SETTLED = dt.timedelta(minutes=10)  # replayed rows stay on the consumer page this long
BULK_SHOWN = 10  # bulk replays the failed-events page shows at once
BULK_ENDED_SHOWN = dt.timedelta(minutes=10)  # an ended one stays on it this long


def read_filters(values: Any) -> dict[str, str]:
    """The filter form's fields as text; raise ``params.BadParam`` for one the list cannot use."""
    filters = {name: params.text(str(values.get(name, "")), name) for name in FILTERS}
    params.moment(filters["since"], "since")
    params.moment(filters["until"], "until")
    params.choice(filters["status"], "status", STATUS_FILTERS)
    return filters


def matching(filters: dict[str, str]) -> QuerySet[FailedEvent]:
    """Rows matching the filter form, newest failure first."""
    rows = FailedEvent.objects.select_related("consumer", "topic")
    status = filters.get("status") or "open"
    if status == "open":
        rows = rows.open()
    if filters.get("consumer"):
        rows = rows.filter(consumer__name=filters["consumer"])
    if filters.get("topic"):
        rows = rows.filter(topic__name=filters["topic"])
    return selection(filters).narrow(rows).order_by("-last_failed_at", "-id")


def selection(filters: dict[str, str]) -> replays.Selection:
    """The filter form's row fields; ``status`` only when it names one status ("open", "all": none)."""
    status = filters.get("status", "")
    return replays.Selection(
        event_type=filters.get("type", ""),
        error=filters.get("q", ""),
        since=params.moment(filters.get("since", ""), "since"),
        until=params.moment(filters.get("until", ""), "until"),
        event_id=filters.get("event", ""),  # one event's rows (its CloudEvents id), e.g. from its detail page
        status=status if status in FailedEvent.Status.values else "",
    )


def parse_cursor(cursor: str) -> tuple[dt.datetime, int] | None:
    """A row's place in the list from "<iso time>|<id>"; None if empty; ``params.BadParam`` if malformed."""
    return params.cursor(cursor, "cursor")


def page_of(rows: QuerySet[FailedEvent], cursor: str) -> tuple[list[FailedEvent], str]:
    """One page after ``cursor`` ("<iso time>|<id>"), and the cursor of the next page."""
    if place := parse_cursor(cursor):
        moment, pk = place
        rows = rows.filter(Q(last_failed_at__lt=moment) | Q(last_failed_at=moment, id__lt=pk))
    page = list(rows[: PAGE_ROWS + 1])
    more = len(page) > PAGE_ROWS
    page = page[:PAGE_ROWS]
    following = f"{page[-1].last_failed_at.isoformat()}|{page[-1].pk}" if more else ""
    return page, following


def filter_query(filters: dict[str, str]) -> str:
    """The filter as a query string (``consumer=billing&q=time%20out``)."""
    return urlencode({k: v for k, v in filters.items() if v})


def newest(rows: list[FailedEvent]) -> str:
    """What the page shows newest, for its socket ("<iso time>|<id>"); an empty page: now."""
    if rows:
        return f"{rows[0].last_failed_at.isoformat()}|{rows[0].pk}"
    return f"{timezone.now().isoformat()}|0"


def consumer_failed(name: str, user: Any) -> dict:
    """The consumer page's failed-events table, as ``user`` may act on them.

    Its newest open rows, and rows replayed in the last minutes, so an
    operator who replays sees the row turn Resolved (or Failed again).
    """
    recent = timezone.now() - RECENTLY_SETTLED
    shown = ~Q(status__in=FailedEvent.CLOSED) | Q(replayed_at__gte=recent)  # open, or settled lately
    rows = matching({"consumer": name, "status": "all"}).filter(shown)
    return {
        "consumer_name": name,
        "failed_rows": list(rows[:CONSUMER_ROWS]),
        "failed_open": matching({"consumer": name}).count(),
        "can_replay": can_replay(user),
        "can_discard": can_discard(user),
        "can_edit": can_edit_and_replay(user),
    }


def bulk_replays(user: Any, error: str = "") -> dict[str, Any]:
    """The failed-events page's ``failed-replays`` partial: its bulk replays running or ended lately."""
    recently = timezone.now() - BULK_ENDED_SHOWN
    jobs = (
        Replay.objects.filter(source=Replay.Source.FAILED)
        .filter(Q(state__in=[Replay.State.PLANNED, Replay.State.RUNNING]) | Q(ended_at__gte=recently))
        .select_related("consumer", "topic", "requested_by", "cancelled_by")[:BULK_SHOWN]
    )
    shown = [replays.progress(job) for job in jobs]
    return {"bulk_replays": shown, "can_replay": can_replay(user), "cancel_error": error}
