"""Failed events: filter, page through, replay and discard (one, selected, all matching).

Which rows a page shows is ``dashboard.failed_rows``; these views are its doors.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import redis
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from eventflow import failures, replays
from eventflow.errors import ReplayRefused
from eventflow.models import Consumer, FailedEvent, Topic
from eventflow.replay_api import MAX_REASON

from .. import failed_rows, params
from ..failed_rows import bulk_replays, filter_query, matching, newest, page_of, read_filters
from ..live_pages import PAGES
from .security import can_discard, can_edit_and_replay, can_replay, staff_page

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
        "can_edit": can_edit_and_replay(request.user),
    }


@staff_page
def failed_list(request: HttpRequest) -> HttpResponse:
    filters = read_filters(request.GET)
    context = _table_context(request, filters)
    page = PAGES["failed"]
    context.update(page.context("") or {})
    context.update(bulk_replays(request.user))
    context.update(
        ws_path=page.socket_path(),
        consumers=Consumer.objects.values_list("name", flat=True),
        topics=Topic.objects.values_list("name", flat=True),
        statuses=Status.choices,
    )
    return page.respond(request, context)


def _row(request: HttpRequest, row: FailedEvent, error: str = "") -> HttpResponse:
    row.refresh_from_db()
    user = request.user
    context = {"row": row, "can_replay": can_replay(user), "can_discard": can_discard(user)}
    context["can_edit"] = can_edit_and_replay(user)
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
    """The preview of "replay all matching": how many, in how many jobs, with a rate and a reason to give."""
    if request.GET.get("cancel") or not can_replay(request.user):
        return _confirm(request, "replay", can_replay(request.user))
    return _bulk_replay_form(request, read_filters(request.GET))


def _bulk_replay_form(request: HttpRequest, filters: dict[str, str], **extra: Any) -> HttpResponse:
    plans = _bulk_plans(filters)
    context = {
        "filters": filters,
        "count": sum(plan.matching for _, _, plan in plans),
        "jobs": len(plans),
        "action": "replay",
        "allowed": True,
        **extra,
    }
    return render(request, "dashboard/failed.html#bulk-confirm", context)


def _bulk_plans(filters: dict[str, str]) -> list[tuple[Consumer, Topic, replays.Plan]]:
    """A bulk replay of what the filter matches: one job per lane (consumer, topic), each planned now."""
    status = filters.get("status") or "open"
    if status not in ("open", "all", *FailedEvent.REPLAYABLE):
        return []  # only failed (again) events are replayed
    selection = replace(failed_rows.selection(filters), status=status if status in FailedEvent.REPLAYABLE else "")
    lanes = matching(filters).replayable().order_by().values_list("consumer", "topic")
    pairs = sorted(set(lanes))
    consumers = Consumer.objects.in_bulk({c for c, _ in pairs})
    topics = Topic.objects.in_bulk({t for _, t in pairs})
    plans = [(consumers[c], topics[t]) for c, t in pairs]
    planned = [(c, t, replays.plan_failed(c, t, replays.Filters(), selection)) for c, t in plans]
    return [(c, t, plan) for c, t, plan in planned if plan.matching]


@staff_page
@require_POST
def replay_matching(request: HttpRequest) -> HttpResponse:
    """Start "replay all matching" as replay jobs (bounded, throttled, cancellable); the page shows their progress."""
    if not can_replay(request.user):
        return HttpResponseForbidden("You may not replay failed events.")
    filters = read_filters(request.POST)
    rate_text = params.text(request.POST.get("rate", ""), "rate")
    reason = params.text(request.POST.get("reason", ""), "reason", max_chars=MAX_REASON + 1)
    typed = {"rate": rate_text, "reason": reason}
    try:
        rate = params.positive_number(rate_text, "rate", maximum=1_000_000)
    except params.BadParam as exc:
        return _bulk_replay_form(request, filters, replay_error=str(exc), **typed)
    if not reason or len(reason) > MAX_REASON:
        problem = "Say why: every replay is audited with its reason." if not reason else "The reason is too long."
        return _bulk_replay_form(request, filters, replay_error=problem, **typed)
    jobs = [
        replays.start(plan, consumer, topic, user=request.user, reason=reason, rate=rate)
        for consumer, topic, plan in _bulk_plans(filters)
    ]
    context = {"started": jobs, "count": sum(job.matched for job in jobs), **bulk_replays(request.user), "oob": True}
    return render(request, "dashboard/failed.html#bulk-started", context)


@staff_page
def discard_confirm(request: HttpRequest) -> HttpResponse:
    return _confirm(request, "discard", can_discard(request.user))


@staff_page
@require_POST
def discard_matching(request: HttpRequest) -> HttpResponse:
    if not can_discard(request.user):
        return HttpResponseForbidden("You may not discard failed events.")
    filters = read_filters(request.POST)
    return _bulk_result(request, filters, _discarded(failures.discard(matching(filters))))
