"""Failed events: filter, page through, replay and discard (one, selected, all matching).

Pages use keyset pagination on (last_failed_at, id), which the model's
indexes serve, so the 1,000th page costs what the first does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from eventflow import failures
from eventflow.models import Consumer, FailedEvent, Topic

from .. import params
from ..live_pages import PAGES
from .security import can_discard, can_replay, staff_page

PAGE_ROWS = 50
Status = FailedEvent.Status
OPEN = [Status.FAILED, Status.FAILED_AGAIN, Status.REPLAYING]
CLOSED = [status for status in Status.values if status not in OPEN]
FILTERS = ("consumer", "topic", "type", "q", "since", "until", "status", "event")
STATUS_FILTERS = ("", "open", "all", *Status.values)


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
        # Said as "not closed": SQLite cannot search an index for NOT IN, so it walks the
        # last_failed_at index in page order and stops after a page, where "IN (open
        # statuses)" made it gather and sort every open row (0.26 s at 100,000 rows).
        rows = rows.exclude(status__in=CLOSED)
    elif status in Status.values:
        rows = rows.filter(status=status)
    if filters.get("consumer"):
        rows = rows.filter(consumer__name=filters["consumer"])
    if filters.get("topic"):
        rows = rows.filter(topic__name=filters["topic"])
    if filters.get("type"):
        rows = rows.filter(event_type=filters["type"])
    if filters.get("event"):  # one event's rows (its CloudEvents id), e.g. from its detail page
        rows = rows.filter(event_id=filters["event"])
    if filters.get("q"):
        rows = rows.filter(error__icontains=filters["q"])
    if since := params.moment(filters.get("since", ""), "since"):
        rows = rows.filter(last_failed_at__gte=since)
    if until := params.moment(filters.get("until", ""), "until"):
        rows = rows.filter(last_failed_at__lt=until)
    return rows.order_by("-last_failed_at", "-id")


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


CONSUMER_ROWS = 20  # open failed events a consumer page shows (the rest: the failed-events page)


RECENTLY_SETTLED = dt.timedelta(minutes=10)  # replayed rows stay on the consumer page this long


def consumer_failed(name: str, user: Any) -> dict:
    """The consumer page's failed-events table, as ``user`` may act on them.

    Its newest open rows, and rows replayed in the last minutes, so an
    operator who replays sees the row turn Resolved (or Failed again).
    """
    recent = timezone.now() - RECENTLY_SETTLED
    rows = matching({"consumer": name, "status": "all"}).filter(~Q(status__in=CLOSED) | Q(replayed_at__gte=recent))
    return {
        "consumer_name": name,
        "failed_rows": list(rows[:CONSUMER_ROWS]),
        "failed_open": matching({"consumer": name}).count(),
        "can_replay": can_replay(user),
        "can_discard": can_discard(user),
    }


def _newest(rows: list[FailedEvent]) -> str:
    """What the page shows newest, for its socket ("<iso time>|<id>"); an empty page: now."""
    if rows:
        return f"{rows[0].last_failed_at.isoformat()}|{rows[0].pk}"
    return f"{timezone.now().isoformat()}|0"


def _table_context(request: HttpRequest, filters: dict[str, str], notice: str = "") -> dict:
    rows, following = page_of(matching(filters), request.GET.get("cursor", ""))
    return {
        "rows": rows,
        "filters": filters,
        "next_cursor": following,
        "filter_query": filter_query(filters),
        "newest": _newest(rows),
        "paged": bool(request.GET.get("cursor")),
        "notice": notice,
        "can_replay": can_replay(request.user),
        "can_discard": can_discard(request.user),
    }


@staff_page
def failed_list(request: HttpRequest) -> HttpResponse:
    filters = read_filters(request.GET)
    context = _table_context(request, filters)
    page = PAGES["failed"]
    context.update(page.context("") or {})
    context.update(
        ws_path=page.socket_path(),
        consumers=Consumer.objects.values_list("name", flat=True),
        topics=Topic.objects.values_list("name", flat=True),
        statuses=Status.choices,
    )
    return page.respond(request, context)


def _row(request: HttpRequest, row: FailedEvent, error: str = "") -> HttpResponse:
    row.refresh_from_db()
    context = {"row": row, "can_replay": can_replay(request.user), "can_discard": can_discard(request.user)}
    context["row_error"] = error
    return render(request, "dashboard/failed.html#failed-row", context)


@staff_page
@require_POST
def replay_one(request: HttpRequest, pk: int) -> HttpResponse:
    if not can_replay(request.user):
        return HttpResponseForbidden("You may not replay failed events.")
    row = get_object_or_404(FailedEvent.objects.select_related("consumer", "topic"), pk=pk)
    try:
        failures.replay(row, request.user)
    except failures.ReplayRefused as exc:
        return _row(request, row, str(exc))
    except Exception:  # Redis unreachable: nothing was queued, the row is unchanged
        return _row(request, row, "The event store is unreachable; nothing was replayed.")
    return _row(request, row)


@staff_page
@require_POST
def discard_one(request: HttpRequest, pk: int) -> HttpResponse:
    if not can_discard(request.user):
        return HttpResponseForbidden("You may not discard failed events.")
    row = get_object_or_404(FailedEvent.objects.select_related("consumer", "topic"), pk=pk)
    failures.discard(FailedEvent.objects.filter(pk=row.pk))
    return _row(request, row)


def _bulk_result(request: HttpRequest, filters: dict[str, str], notice: str) -> HttpResponse:
    return render(request, "dashboard/failed.html#failed-table", _table_context(request, filters, notice))


def _replayed(sent: int, problems: list[str]) -> str:
    notice = f"Replaying {sent:,} failed event{'s' if sent != 1 else ''}."
    if problems:
        notice += f" {len(problems):,} not replayed: {problems[0]}"
    return notice


def _discarded(count: int) -> str:
    return f"Discarded {count:,} failed event{'s' if count != 1 else ''}."


def _selected_ids(request: HttpRequest) -> list[int]:
    return params.row_ids(request.POST.getlist("ids"), "ids")


def _nothing_selected(request: HttpRequest, filters: dict[str, str]) -> HttpResponse:
    return _bulk_result(request, filters, "Select failed events first.")


@staff_page
@require_POST
def replay_selected(request: HttpRequest) -> HttpResponse:
    if not can_replay(request.user):
        return HttpResponseForbidden("You may not replay failed events.")
    filters, ids = read_filters(request.POST), _selected_ids(request)
    if not ids:
        return _nothing_selected(request, filters)
    rows = FailedEvent.objects.select_related("consumer", "topic").filter(pk__in=ids, status__in=OPEN[:2])
    return _bulk_result(request, filters, _replayed(*failures.replay_many(rows, request.user)))


@staff_page
@require_POST
def discard_selected(request: HttpRequest) -> HttpResponse:
    if not can_discard(request.user):
        return HttpResponseForbidden("You may not discard failed events.")
    filters, ids = read_filters(request.POST), _selected_ids(request)
    if not ids:
        return _nothing_selected(request, filters)
    return _bulk_result(request, filters, _discarded(failures.discard(FailedEvent.objects.filter(pk__in=ids))))


def _confirm(request: HttpRequest, action: str, allowed: bool) -> HttpResponse:
    """The confirmation for "<action> all matching", stating the count before anything happens."""
    if request.GET.get("cancel"):
        return render(request, "dashboard/failed.html#bulk-confirm", {"cancelled": True})
    filters = read_filters(request.GET)
    count = matching(filters).filter(status__in=OPEN[:2]).count()
    context = {"filters": filters, "count": count, "action": action, "allowed": allowed}
    return render(request, "dashboard/failed.html#bulk-confirm", context)


@staff_page
def replay_confirm(request: HttpRequest) -> HttpResponse:
    return _confirm(request, "replay", can_replay(request.user))


@staff_page
def discard_confirm(request: HttpRequest) -> HttpResponse:
    return _confirm(request, "discard", can_discard(request.user))


@staff_page
@require_POST
def replay_matching(request: HttpRequest) -> HttpResponse:
    if not can_replay(request.user):
        return HttpResponseForbidden("You may not replay failed events.")
    filters = read_filters(request.POST)
    rows = matching(filters).filter(status__in=OPEN[:2])
    sent, problems = failures.replay_many(rows.iterator(chunk_size=500), request.user)
    return _bulk_result(request, filters, _replayed(sent, problems))


@staff_page
@require_POST
def discard_matching(request: HttpRequest) -> HttpResponse:
    if not can_discard(request.user):
        return HttpResponseForbidden("You may not discard failed events.")
    filters = read_filters(request.POST)
    return _bulk_result(request, filters, _discarded(failures.discard(matching(filters))))
