"""Overview, topic, event and consumer pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from eventflow import inspection, keys, monitor, replays
from eventflow.connection import get_redis
from eventflow.errors import PublishError
from eventflow.models import Consumer, FailedEvent, Topic
from eventflow.publishing import publish

from . import state
from .replays import form_context
from .security import can_replay, staff_page
from .stuck import stuck_context

TAIL_ROWS = 50  # rows a topic page starts with (the live tail keeps at most a few hundred)
BROWSE_ROWS = 25


def render_region(request: HttpRequest, template: str, context: dict, partials: tuple[str, ...]) -> HttpResponse:
    """The whole page, or only the partial an htmx request targets (its id is its name)."""
    target = request.htmx.target if request.htmx else None
    if target in partials:
        return render(request, f"{template}#{target}", context)
    return render(request, template, context)


@staff_page
def overview(request: HttpRequest) -> HttpResponse:
    context = state.overview(monitor.load_snapshot())
    context["ws_path"] = "/ws/live/overview/"
    return render_region(request, "dashboard/overview.html", context, ("headline", "topology", "consumer-table"))


@staff_page
def topic_page(request: HttpRequest, name: str) -> HttpResponse:
    topic = get_object_or_404(Topic, name=name)
    context = state.topic(monitor.load_snapshot(), name) or {"topic": {"name": name}}
    tail = _first_tail(name)
    newest = tail[0]["stream_id"] if tail else "0-0"
    context.update(
        topic_name=name,
        topic_obj=topic,
        ws_path=f"/ws/live/topic/{name}/?after={newest}",
        tail=tail,
        browse=_browse(name, request.GET),
        publish=_publish_form({}),
    )
    return render_region(request, "dashboard/topic.html", context, ("topic-stats", "browse"))


def _first_tail(topic: str) -> list[dict]:
    events, _ = inspection.read_tail(get_redis(), topic, None, TAIL_ROWS)
    return [{"stream_id": sid, "event": envelope} for sid, envelope in events]


def _browse(topic: str, params: Any) -> dict:
    """A page of stored events, newest first, from a stream id or a time on."""
    start = params.get("from", "").strip()
    at = params.get("at", "").strip()
    error = ""
    if at:
        try:
            moment = dt.datetime.fromisoformat(at)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            start = f"{int(moment.timestamp() * 1000)}-99999"
        except ValueError:
            error = "Give the time as YYYY-MM-DDTHH:MM."
    if start and not _valid_id(start):
        start, error = "", "A stream id looks like 1712345678901-0."
    entries = get_redis().xrevrange(keys.stream(topic), max=start or "+", min="-", count=BROWSE_ROWS + 1)
    rows = [{"stream_id": sid.decode(), "event": orjson.loads(f[b"e"])} for sid, f in entries if b"e" in f]
    older = rows[BROWSE_ROWS]["stream_id"] if len(rows) > BROWSE_ROWS else ""
    return {"rows": rows[:BROWSE_ROWS], "older": older, "from": params.get("from", ""), "at": at, "error": error}


def _valid_id(value: str) -> bool:
    ms, _, seq = value.partition("-")
    return ms.isdigit() and (seq == "" or seq.isdigit())


def _publish_form(values: dict, *, message: str = "", error: str = "") -> dict:
    return {"values": values, "message": message, "error": error}


@staff_page
@require_POST
def publish_test_event(request: HttpRequest, name: str) -> HttpResponse:
    """Publish one event from the topic page's form, as the ``dashboard`` source."""
    if not request.user.has_perm("eventflow.publish_test_event"):
        raise PermissionDenied("publishing test events takes the 'Can publish test events' permission")
    get_object_or_404(Topic, name=name)
    values = {k: request.POST.get(k, "") for k in ("type", "key", "data")}
    try:
        data = orjson.loads(values["data"] or "{}")
        event_id = publish(
            name, data, type=values["type"].strip(), key=values["key"].strip() or None, source="dashboard"
        )
    except orjson.JSONDecodeError as exc:
        form = _publish_form(values, error=f"Data is not valid JSON: {exc}")
    except PublishError as exc:
        form = _publish_form(values, error=exc.message if hasattr(exc, "message") else str(exc))
    else:
        form = _publish_form({"type": values["type"], "key": "", "data": values["data"]}, message=event_id)
    return render(request, "dashboard/topic.html#publish-form", {"publish": form, "topic_name": name})


@staff_page
def event_detail(request: HttpRequest, name: str, stream_id: str) -> HttpResponse:
    get_object_or_404(Topic, name=name)
    if not _valid_id(stream_id):
        raise Http404("no such event")
    context = state.event(f"{name}/{stream_id}")
    if context is None:
        raise Http404("this event is no longer in the stream")
    context["ws_path"] = f"/ws/live/event/{name}/{stream_id}/"
    context["sent_again"] = replays.sent_again(name, stream_id, context["event"])
    return render_region(request, "dashboard/event.html", context, ("delivery-matrix",))


@staff_page
def consumer_page(request: HttpRequest, name: str) -> HttpResponse:
    consumer = get_object_or_404(Consumer.objects.prefetch_related("topics"), name=name)
    context = state.consumer(monitor.load_snapshot(), name) or {}
    context.update(form_context(consumer, {}))
    context.update(stuck_context(consumer, request.user))
    failed = FailedEvent.objects.filter(consumer=consumer).select_related("topic", "consumer")
    context.update(
        consumer_name=name,
        consumer_obj=consumer,
        ws_path=f"/ws/live/consumer/{name}/",
        failed_rows=failed.filter(status__in=monitor.REPLAYABLE + ("replaying",))[:20],
        can_replay=can_replay(request.user),
    )
    partials = ("consumer-health", "consumer-charts", "consumer-workers")
    return render_region(request, "dashboard/consumer.html", context, partials)
