"""Failed events: filter, page through, replay and discard (one, selected, all matching).

Which rows a page shows is ``dashboard.failed_rows``; these views are its doors.
"""

from __future__ import annotations

import redis
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from eventflow import failures
from eventflow.errors import ReplayRefused
from eventflow.models import Consumer, FailedEvent, Topic

from .. import params
from ..failed_rows import filter_query, matching, newest, page_of, read_filters
from . import state
from .security import can_discard, can_replay, staff_page

Status = FailedEvent.Status


def _table_context(request: HttpRequest, filters: dict[str, str], notice: str = "") -> dict:
    rows, following = page_of(matching(filters), request.GET.get("cursor", ""))
    return {
        "rows": rows,
        "filters": filters,
        "next_cursor": following,
        "filter_query": filter_query(filters),
        "newest": newest(rows),
        "paged": bool(request.GET.get("cursor")),
        "notice": notice,
        "can_replay": can_replay(request.user),
        "can_discard": can_discard(request.user),
    }


@staff_page
def failed_list(request: HttpRequest) -> HttpResponse:
    filters = read_filters(request.GET)
    context = _table_context(request, filters)
    context.update(state.failed_summary())
    context.update(
        ws_path="/ws/live/failed/",
        consumers=Consumer.objects.values_list("name", flat=True),
        topics=Topic.objects.values_list("name", flat=True),
        statuses=Status.choices,
    )
    target = request.htmx.target if request.htmx else None
    if target in ("failed-table", "failed-summary"):
        return render(request, f"dashboard/failed.html#{target}", context)
    return render(request, "dashboard/failed.html", context)


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
    except ReplayRefused as exc:
        return _row(request, row, str(exc))
    except redis.RedisError:  # Redis unreachable: nothing was queued, the row is unchanged
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
    rows = FailedEvent.objects.replayable().select_related("consumer", "topic").filter(pk__in=ids)
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
    count = matching(filters).replayable().count()
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
    rows = matching(filters).replayable()
    sent, problems = failures.replay_many(rows.iterator(chunk_size=500), request.user)
    return _bulk_result(request, filters, _replayed(sent, problems))


@staff_page
@require_POST
def discard_matching(request: HttpRequest) -> HttpResponse:
    if not can_discard(request.user):
        return HttpResponseForbidden("You may not discard failed events.")
    filters = read_filters(request.POST)
    return _bulk_result(request, filters, _discarded(failures.discard(matching(filters))))
