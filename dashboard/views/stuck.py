"""The consumer page's "Stuck work" card: reclaim, dead-letter now, skip the backlog, pause/resume.

Each button posts (CSRF token in the htmx headers) and gets the ``consumer-stuck``
partial back with a notice; the rules and the audit live in ``eventflow.stuck``.
"""

from __future__ import annotations

from typing import Any

import redis
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from eventflow import stuck
from eventflow.errors import PublishError
from eventflow.models import Consumer

from .. import params
from .security import can_operate, staff_page

TEMPLATE = "dashboard/consumer.html#consumer-stuck"


def stuck_context(consumer: Consumer, user: Any, **extra: Any) -> dict[str, Any]:
    """What the ``consumer-stuck`` partial shows."""
    try:
        entries = stuck.pending_entries(consumer, limit=20)
    except redis.RedisError:
        entries = []
    return {
        "consumer_name": consumer.name,
        "consumer_obj": consumer,
        "pending_entries": entries,
        "reclaimable": sum(1 for e in entries if e.overdue and not e.owner_alive),
        "can_operate": can_operate(user),
        **extra,
    }


def _answer(request: HttpRequest, consumer: Consumer, **extra: Any) -> HttpResponse:
    return render(request, TEMPLATE, stuck_context(consumer, request.user, **extra))


def _act(request: HttpRequest, name: str, action) -> HttpResponse:
    """Run ``action(consumer)`` (returning the notice) for a user who may operate the consumer."""
    if not can_operate(request.user):
        return HttpResponseForbidden("You may not change consumers.")
    consumer = get_object_or_404(Consumer.objects.prefetch_related("topics"), name=name)
    try:
        notice = action(consumer)
    except PublishError as exc:
        return _answer(request, consumer, stuck_error=exc.message)
    except redis.RedisError:
        return _answer(request, consumer, stuck_error="The event store is unreachable; nothing changed.")
    return _answer(request, consumer, stuck_notice=notice)


@staff_page
@require_POST
def reclaim(request: HttpRequest, name: str) -> HttpResponse:
    def act(consumer: Consumer) -> str:
        count = stuck.reclaim_now(consumer, request.user)
        return f"Reclaimed {count} pending event{'s' if count != 1 else ''} to a live worker."

    return _act(request, name, act)


@staff_page
@require_POST
def dead_letter(request: HttpRequest, name: str) -> HttpResponse:
    def act(consumer: Consumer) -> str:  # the values are read once the user may act (a 403 first)
        topic = params.text(request.POST.get("topic", ""), "topic")
        stream_id = params.stream_id(request.POST.get("stream_id", ""), "stream_id")
        row = stuck.dead_letter_now(consumer, topic, stream_id, request.user)
        if row is None:
            return f"Dead-lettered {stream_id}: its failed event is written once the database is back."
        return f"Dead-lettered {stream_id}: failed event {row.pk}."

    return _act(request, name, act)


@staff_page
def skip_confirm(request: HttpRequest, name: str) -> HttpResponse:
    """The confirmation for "skip backlog to now", stating how many events it skips."""
    consumer = get_object_or_404(Consumer.objects.prefetch_related("topics"), name=name)
    topic = params.text(request.GET.get("topic", ""), "topic")
    if params.text(request.GET.get("cancel", ""), "cancel") or topic not in {t.name for t in consumer.topics.all()}:
        return _answer(request, consumer)
    return _answer(request, consumer, skip_topic=topic, skip_count=stuck.backlog(consumer, topic))


@staff_page
@require_POST
def skip(request: HttpRequest, name: str) -> HttpResponse:
    def act(consumer: Consumer) -> str:
        topic = params.text(request.POST.get("topic", ""), "topic")
        count = stuck.skip_backlog(consumer, topic, request.user)
        return f"Skipped {count} event{'s' if count != 1 else ''} of {topic}: {consumer.name} goes on from now."

    return _act(request, name, act)


@staff_page
@require_POST
def pause(request: HttpRequest, name: str) -> HttpResponse:
    def act(consumer: Consumer) -> str:
        paused = params.choice(request.POST.get("paused", ""), "paused", ("0", "1")) == "1"
        stuck.set_paused(consumer, paused, request.user)
        return "Paused: its backlog waits." if paused else "Resumed."

    return _act(request, name, act)
