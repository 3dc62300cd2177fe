"""Replay jobs on the dashboard: the consumer page's "Replay history" form, and a job's page.

The form is the API's request (``eventflow.replay_api.read_request``) spelled
as form fields, each parsed by ``dashboard.params`` first (a value it cannot
use is said in the form, as the API's own refusals are: htmx swaps only 2xx
answers in): Preview is a dry run, Start plans it again (the range is
fixed when it starts) and opens the job's page, whose ``replay-progress``
partial htmx re-reads every second while the job runs.
"""

from __future__ import annotations

from typing import Any

import redis
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from eventflow import replays
from eventflow.errors import PublishError
from eventflow.models import Consumer, Replay
from eventflow.replay_api import MAX_REASON, plan_or_start, read_request

from .. import params
from ..failed_rows import bulk_replays
from .security import can_replay, staff_page

FORM_FIELDS = ("source", "topic", "from", "to", "types", "key", "rate", "reason")
RECENT = 10


def form_context(consumer: Consumer, values: dict[str, str], **extra: Any) -> dict[str, Any]:
    """What the ``replay-form`` partial shows: the values typed, and a preview or an error."""
    topics = [t.name for t in consumer.topics.all()]
    return {
        "consumer_name": consumer.name,
        "replay_topics": topics,
        "replay_values": {"source": "history", "topic": topics[0] if topics else "", **values},
        "replays": recent(consumer),
        **extra,
    }


def recent(consumer: Consumer) -> list[replays.Progress]:
    jobs = Replay.objects.filter(consumer=consumer).select_related("consumer", "topic", "requested_by", "cancelled_by")
    return [replays.progress(job) for job in jobs[:RECENT]]


def _values(request: HttpRequest) -> dict[str, str]:
    """The form's fields as typed (shown again in the form), as text without NULs; ``params.BadParam`` if not."""
    limits = {"reason": MAX_REASON + 1, "types": 2000}  # one past the reason's limit: the API says it is too long
    return {
        name: params.text(request.POST.get(name, ""), name, max_chars=limits.get(name, params.MAX_TEXT_CHARS))
        for name in FORM_FIELDS
    }


def _query(values: dict[str, str], *, dry_run: bool) -> dict[str, Any]:
    """The form's values as the API's JSON request; ``params.BadParam`` names a value it cannot use."""
    source = params.choice(values["source"], "source", ("", *Replay.Source.values)) or Replay.Source.HISTORY
    query: dict[str, Any] = {"topic": values["topic"], "source": source, "dry_run": dry_run}
    if source == Replay.Source.HISTORY:
        query["from"] = params.stream_id_or_moment(values["from"], "from")
        if to := params.stream_id_or_moment(values["to"], "to"):
            query["to"] = to
    if (rate := params.positive_number(values["rate"], "rate", maximum=1_000_000)) is not None:
        query["rate"] = rate
    for name in ("types", "key", "reason"):
        if values[name]:
            query[name] = values[name]
    return query


def _form(request: HttpRequest, consumer: Consumer, values: dict[str, str], **extra: Any) -> HttpResponse:
    context = form_context(consumer, values, can_replay=can_replay(request.user), **extra)
    return render(request, "dashboard/consumer.html#replay-form", context)


def _submit(request: HttpRequest, name: str, values: dict[str, str], *, dry_run: bool, unreachable: str) -> tuple:
    """Plan (``dry_run``) or start the form's replay: (plan, job, "") or (None, None, what to say in the form)."""
    try:
        plan, job = plan_or_start(read_request(name, _query(values, dry_run=dry_run)), request.user)
    except params.BadParam as exc:
        return None, None, str(exc)
    except PublishError as exc:
        return None, None, exc.message
    except redis.RedisError:
        return None, None, f"The event store is unreachable; {unreachable}"
    return plan, job, ""


@staff_page
@require_POST
def preview(request: HttpRequest, name: str) -> HttpResponse:
    """Preview: how many events match, from when to when, and what retention already cut."""
    if not can_replay(request.user):
        return HttpResponseForbidden("You may not replay events.")
    consumer = get_object_or_404(Consumer.objects.prefetch_related("topics"), name=name)
    values = _values(request)
    plan, _, error = _submit(request, name, values, dry_run=True, unreachable="try again.")
    if error:
        return _form(request, consumer, values, replay_error=error)
    return _form(request, consumer, values, preview=plan.as_dict())


@staff_page
@require_POST
def start(request: HttpRequest, name: str) -> HttpResponse:
    """Start: create the job and open its page."""
    if not can_replay(request.user):
        return HttpResponseForbidden("You may not replay events.")
    consumer = get_object_or_404(Consumer.objects.prefetch_related("topics"), name=name)
    values = _values(request)
    _, job, error = _submit(request, name, values, dry_run=False, unreachable="nothing was started.")
    if error:
        return _form(request, consumer, values, replay_error=error)
    url = reverse("replay", args=[job.pk])
    response = HttpResponse(status=204 if request.htmx else 303)
    response["HX-Redirect" if request.htmx else "Location"] = url
    return response


def _job_context(request: HttpRequest, job: Replay, error: str = "") -> dict[str, Any]:
    return {"job": replays.progress(job), "can_replay": can_replay(request.user), "cancel_error": error}


@staff_page
def replay_page(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Replay.objects.select_related("consumer", "topic", "requested_by", "cancelled_by"), pk=pk)
    template = "dashboard/replay.html"
    if request.htmx and request.htmx.target == "replay-progress":
        template += "#replay-progress"
    return render(request, template, _job_context(request, job))


@staff_page
@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    if not can_replay(request.user):
        return HttpResponseForbidden("You may not cancel replays.")
    job = get_object_or_404(Replay.objects.select_related("consumer", "topic", "requested_by", "cancelled_by"), pk=pk)
    error = ""
    try:
        job = replays.cancel(job, request.user)
    except PublishError as exc:
        error = exc.message
    return render(request, "dashboard/replay.html#replay-progress", _job_context(request, job, error))


@staff_page
@require_POST
def cancel_bulk(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel from the failed-events page: answer with its ``failed-replays`` partial."""
    if not can_replay(request.user):
        return HttpResponseForbidden("You may not cancel replays.")
    job = get_object_or_404(Replay.objects.select_related("consumer", "topic"), pk=pk)
    error = ""
    try:
        replays.cancel(job, request.user)
    except PublishError as exc:
        error = exc.message
    return render(request, "dashboard/failed.html#failed-replays", bulk_replays(request.user, error))
