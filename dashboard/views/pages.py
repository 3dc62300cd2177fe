"""Overview, topic, event and consumer pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from eventflow import inspection, keys, topics
from eventflow.connection import get_redis
from eventflow.errors import PublishError
from eventflow.models import Consumer, FailedEvent, FailedEventEdit, Topic
from eventflow.publishing import publish

from .. import params
from ..failed_rows import consumer_failed
from ..live_pages import PAGES
from .demo import switch_context
from .replays import form_context
from .security import can_edit_and_replay, staff_page
from .stuck import stuck_context

TAIL_ROWS = 50  # rows a topic page starts with (the live tail keeps at most a few hundred)
BROWSE_ROWS = 25


@staff_page
def overview(request: HttpRequest) -> HttpResponse:
    page = PAGES["overview"]
    focus = page.live_name("", request.META.get("QUERY_STRING", ""))
    context = page.context(focus) or {}
    context["ws_path"] = page.socket_path(query=urlencode({"focus": focus}) if focus else "")
    return page.respond(request, context)


@staff_page
def topic_page(request: HttpRequest, name: str) -> HttpResponse:
    topic = get_object_or_404(Topic, name=name)
    page = PAGES["topic"]
    context = page.context(name) or {"topic": {"name": name}}
    tail = _first_tail(name)
    newest = tail[0]["stream_id"] if tail else "0-0"
    context.update(
        topic_name=name,
        topic_obj=topic,
        ws_path=page.socket_path(name, query=f"after={newest}"),
        tail=tail,
        browse=_browse(name, request.GET),
        publish=_publish_form({}),
    )
    return page.respond(request, context)


def _first_tail(topic: str) -> list[dict]:
    events, _ = inspection.read_tail(get_redis(), topic, None, TAIL_ROWS)
    return [{"stream_id": sid, "event": envelope} for sid, envelope in events]


def _browse(topic: str, query: Any) -> dict:
    """A page of stored events: back from a stream id (newest first), or forward from a time or id.

    ``from`` (an id, inclusive) or ``before`` (exclusive) page back, newest
    first, as the newest page does; ``at`` (a time to the second, UTC,
    inclusive) or ``after`` (an id, exclusive) page forward, oldest first. A
    value it cannot use is said in the form (htmx swaps only 2xx answers in).
    """
    stream = keys.stream(topics.stream_name(topic))  # a renamed topic keeps its stream
    try:
        start, before, forward_from, at = _browse_bounds(query)
        error = ""
    except params.BadParam as exc:
        start, before, forward_from, at, error = "", "", "", str(query.get("at", "")).strip(), str(exc)
    common = {"from": query.get("from", ""), "at": at, "error": error}
    if forward_from:
        return {**common, **_browse_forward(stream, forward_from)}
    return {**common, **_browse_back(stream, start or (f"({before}" if before else "+"), paged=bool(start or before))}


def _browse_bounds(query: Any) -> tuple[str, str, str, str]:
    """The ids to page back from (``from``, ``before``) or forward from, and the ``at`` text."""
    ids = {}
    for name in ("from", "before", "after"):
        value = params.text(str(query.get(name, "")), name).strip()
        ids[name] = params.stream_id(value, name) if value else ""
    at = params.text(str(query.get("at", "")), "at").strip()
    if moment := params.moment(at, "at"):
        return ids["from"], ids["before"], f"{int(moment.timestamp() * 1000)}-0", at
    return ids["from"], ids["before"], (f"({ids['after']}" if ids["after"] else ""), at


def _browse_back(stream: str, highest: str, *, paged: bool) -> dict:
    entries = get_redis().xrevrange(stream, max=highest, min="-", count=BROWSE_ROWS + 1)
    rows = _browse_rows(entries)
    older = rows[BROWSE_ROWS]["stream_id"] if len(rows) > BROWSE_ROWS else ""
    rows = rows[:BROWSE_ROWS]
    newer = rows[0]["stream_id"] if paged and rows else ""
    return {"rows": rows, "older": older, "before": "", "newer": newer, "forward": False}


def _browse_forward(stream: str, lowest: str) -> dict:
    entries = get_redis().xrange(stream, min=lowest, max="+", count=BROWSE_ROWS + 1)
    rows = _browse_rows(entries)
    more = len(rows) > BROWSE_ROWS
    rows = rows[:BROWSE_ROWS]
    newer = rows[-1]["stream_id"] if more else ""
    before = rows[0]["stream_id"] if rows else ""
    return {"rows": rows, "older": "", "before": before, "newer": newer, "forward": True}


def _browse_rows(entries: list) -> list[dict]:
    return [{"stream_id": sid.decode(), "event": orjson.loads(f[b"e"])} for sid, f in entries if b"e" in f]


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
    try:
        stream_id = params.stream_id(stream_id, "stream id")
    except params.BadParam as exc:  # a path no event can have: not found, as for any other path
        raise Http404(str(exc)) from None
    page, page_name = PAGES["event"], f"{name}/{stream_id}"
    context = page.context(page_name)
    if context is None:
        raise Http404("this event is no longer in the stream")
    context["ws_path"] = page.socket_path(page_name)
    event_id = str(context["event"].get("id", ""))
    context["failed_rows"] = _failed_deliveries(name, event_id)
    context["edits"] = _edits(name, event_id)
    context["can_edit"] = can_edit_and_replay(request.user)
    return page.respond(request, context)


def _edits(topic: str, event_id: str) -> list[FailedEventEdit]:
    """The corrected copies of one event that were replayed (newest first), with who, why and the diff."""
    edits = FailedEventEdit.objects.filter(failed_event__topic__name=topic, failed_event__event_id=event_id)
    return list(edits.select_related("failed_event__consumer", "replay__requested_by")[:50])


def _failed_deliveries(topic: str, event_id: str) -> list[FailedEvent]:
    """The failed-event rows of one event, one per consumer that gave up on it."""
    rows = FailedEvent.objects.filter(topic__name=topic, event_id=event_id).select_related("consumer")
    return list(rows.order_by("consumer__name"))


@staff_page
def consumer_page(request: HttpRequest, name: str) -> HttpResponse:
    consumer = get_object_or_404(Consumer.objects.prefetch_related("topics"), name=name)
    page = PAGES["consumer"]
    context = page.context(name) or {}
    context.update(form_context(consumer, {}))
    context.update(stuck_context(consumer, request.user))
    context.update(consumer_name=name, consumer_obj=consumer, ws_path=page.socket_path(name))
    context.update(consumer_failed(name, request.user), **switch_context(consumer.handler))
    return page.respond(request, context)
