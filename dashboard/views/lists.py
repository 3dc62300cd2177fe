"""The topics and consumers lists, and the header's search across everything named."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from eventflow.models import Consumer, FailedEvent, Producer, Topic

from ..live_pages import PAGES, Page
from .security import staff_page

SEARCH_ROWS = 8  # matches shown per kind in the header's search


@staff_page
def consumers_index(request: HttpRequest) -> HttpResponse:
    return _list_page(request, PAGES["consumers"])


@staff_page
def topics_index(request: HttpRequest) -> HttpResponse:
    return _list_page(request, PAGES["topics"])


def _list_page(request: HttpRequest, page: Page) -> HttpResponse:
    """A list named by its canonical query: the rows the monitor pushes to its socket."""
    canonical = page.live_name("", request.META.get("QUERY_STRING", ""))
    context = page.context(canonical) or {}
    context["ws_path"] = page.socket_path(query=canonical)
    return page.respond(request, context)


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
