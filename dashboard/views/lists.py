"""The topics and consumers lists, and the header's search across everything named."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from eventflow import monitor
from eventflow.models import Consumer, FailedEvent, Producer, Topic

from .. import listing
from .pages import render_region
from .security import staff_page

SEARCH_ROWS = 8  # matches shown per kind in the header's search


@staff_page
def consumers_index(request: HttpRequest) -> HttpResponse:
    query = listing.ListQuery.from_params(request.GET, listing.CONSUMER_SORTS, listing.CONSUMER_STATUSES)
    context = listing.consumers_page(monitor.load_snapshot(), query.canonical())
    context["ws_path"] = _socket_path("consumers", query)
    return render_region(request, "dashboard/consumers.html", context, (listing.CONSUMER_LIST,))


@staff_page
def topics_index(request: HttpRequest) -> HttpResponse:
    query = listing.ListQuery.from_params(request.GET, listing.TOPIC_SORTS, listing.TOPIC_STATUSES)
    context = listing.topics_page(monitor.load_snapshot(), query.canonical())
    context["ws_path"] = _socket_path("topics", query)
    return render_region(request, "dashboard/topics.html", context, (listing.TOPIC_LIST,))


def _socket_path(page: str, query: listing.ListQuery) -> str:
    """The list's socket: its query names the rows the monitor pushes to it."""
    canonical = query.canonical()
    return f"/ws/live/{page}/" + (f"?{canonical}" if canonical else "")


def find(text: str, limit: int = SEARCH_ROWS) -> dict:
    """Topics, consumers and producers whose name contains ``text``; failed rows of an event id.

    Names that start with the text come first. An event is found by its
    CloudEvents id or its stream id, among the failed events (which keep both).
    """
    text = text.strip()[:200]
    if not text:
        return {"q": "", "groups": [], "count": 0}
    groups = [
        ("Topics", _named(Topic.objects, text, limit)),
        ("Consumers", _named(Consumer.objects, text, limit)),
        ("Producers", _named(Producer.objects, text, limit)),
    ]
    events = (
        FailedEvent.objects.filter(event_id=text).select_related("topic", "consumer")[:limit]
        or FailedEvent.objects.filter(stream_id=text).select_related("topic", "consumer")[:limit]
    )
    results = {"q": text, "groups": [(title, rows) for title, rows in groups if rows], "events": list(events)}
    results["count"] = sum(len(rows) for _, rows in results["groups"]) + len(results["events"])
    return results


def _named(manager, text: str, limit: int) -> list[str]:
    first = list(manager.filter(name__istartswith=text).order_by("name").values_list("name", flat=True)[:limit])
    if len(first) < limit:
        others = manager.filter(name__icontains=text).exclude(name__in=first).order_by("name")
        first += list(others.values_list("name", flat=True)[: limit - len(first)])
    return first


@staff_page
def search(request: HttpRequest) -> HttpResponse:
    results = find(str(request.GET.get("q", "")))
    if request.htmx and request.htmx.target == "search-results":
        return render(request, "dashboard/search.html#search-results", {"results": results})
    return render(request, "dashboard/search.html", {"results": results})
