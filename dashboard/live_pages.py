"""Each live page described once: its template, its partials, its socket, its context.

The page's view renders it (``Page.respond``), the monitor pushes its live
partials (``Page.render_partials``), the socket route is drawn from it
(``Page.socket_route``) and pages and tests open its socket by
``Page.socket_path``. A page's *name* says which instance it is: a topic's
or consumer's name, an event's "<topic>/<stream id>", a list's canonical
query, the overview's graph focus ("topic:orders"), or empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import parse_qsl

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string

from eventflow import monitor
from eventflow.snapshot import Snapshot

from . import graph, listing, state

NAME = r"(?P<name>[a-z0-9][a-z0-9._-]{0,99})/"  # a topic's or consumer's name in a socket path
EVENT = r"(?P<name>[a-z0-9][a-z0-9._-]{0,99}/\d{1,20}-\d{1,20})/"  # "<topic>/<stream id>"
_UNREAD = cast(Snapshot, {})  # what pages not built from a snapshot are given: they never read it


@dataclass(frozen=True, slots=True)
class Page:
    """One live page.

    ``partials`` are its live regions (each partial's root ``id`` is its name),
    built by ``build(snapshot, name)``, None if the name is gone; a page not
    ``from_snapshot`` (built from the database or a stream) ignores the
    snapshot. ``htmx_only`` are further partials an htmx request may ask for
    alone, never pushed. A page named by its path has a ``route`` pattern; a
    list page is named by its query, which ``name_from_query`` reads as its
    view does.
    """

    page: str
    template: str
    partials: tuple[str, ...]
    build: Callable[[Snapshot, str], dict | None]
    route: str = ""
    name_from_query: Callable[[str], str] | None = None
    htmx_only: tuple[str, ...] = ()
    from_snapshot: bool = True

    @property
    def socket_route(self) -> str:
        """The socket's URL pattern, for ``dashboard.routing``."""
        return rf"^ws/live/(?P<page>{self.page})/{self.route}$"

    def socket_path(self, name: str = "", query: str = "") -> str:
        """The socket of one instance: its name in the path (a topic, an event) or its ``query`` (a list)."""
        path = f"/ws/live/{self.page}/" + (f"{name}/" if name and self.route else "")
        return path + (f"?{query}" if query else "")

    def live_name(self, path_name: str, query_string: str) -> str:
        """A socket's page name: from its path, or for a list page from its query (``params.BadParam`` as its view)."""
        return self.name_from_query(query_string) if self.name_from_query else path_name

    def context(self, name: str, snapshot: Snapshot | None = None) -> dict | None:
        """The live partials' context; the stored snapshot is loaded only if none is given and the page needs it."""
        if snapshot is None:
            snapshot = monitor.load_snapshot() if self.from_snapshot else _UNREAD
        return self.build(snapshot, name)

    def render_partials(self, name: str, snapshot: Snapshot | None = None, *, oob: bool = True) -> str:
        """Every live partial, rendered for an out-of-band swap (empty if the name is gone)."""
        context = self.context(name, snapshot)
        if context is None:
            return ""
        context["oob"] = oob
        return "".join(render_to_string(f"{self.template}#{partial}", context) for partial in self.partials)

    def respond(self, request: HttpRequest, context: dict) -> HttpResponse:
        """The whole page, or only the partial an htmx request targets."""
        target = request.htmx.target if request.htmx else None
        if target in self.partials or target in self.htmx_only:
            return render(request, f"{self.template}#{target}", context)
        return render(request, self.template, context)


def overview_focus(query_string: str) -> str:
    """The overview's graph focus from its query ("topic:orders"), read as its view reads it."""
    return graph.focus_param(dict(parse_qsl(query_string)).get("focus", ""))


def _list_query(sorts: tuple, statuses: tuple) -> Callable[[str], str]:
    def canonical(query_string: str) -> str:
        return listing.ListQuery.from_params(dict(parse_qsl(query_string)), sorts, statuses).canonical()

    return canonical


PAGES: dict[str, Page] = {
    page.page: page
    for page in (
        Page(
            "overview",
            "dashboard/overview.html",
            ("headline", "topology", "topic-table", "consumer-table", "drift"),
            state.overview,
            name_from_query=overview_focus,
        ),
        Page("topic", "dashboard/topic.html", ("topic-stats",), state.topic, route=NAME, htmx_only=("browse",)),
        Page(
            "consumer",
            "dashboard/consumer.html",
            ("consumer-health", "consumer-charts", "consumer-workers"),
            state.consumer,
            route=NAME,
            htmx_only=("consumer-failed",),  # rendered per user by the socket (buttons), not pushed
        ),
        Page(
            "failed",
            "dashboard/failed.html",
            ("failed-summary",),
            lambda snapshot, name: state.failed_summary(),
            htmx_only=("failed-table",),
            from_snapshot=False,
        ),
        Page(
            "event",
            "dashboard/event.html",
            ("delivery-matrix", "causal-tree"),
            lambda snapshot, name: state.event(name),
            route=EVENT,
            from_snapshot=False,
        ),
        Page(
            "topics",
            "dashboard/topics.html",
            (listing.TOPIC_LIST,),
            listing.topics_page,
            name_from_query=_list_query(listing.TOPIC_SORTS, listing.TOPIC_STATUSES),
        ),
        Page(
            "consumers",
            "dashboard/consumers.html",
            (listing.CONSUMER_LIST,),
            listing.consumers_page,
            name_from_query=_list_query(listing.CONSUMER_SORTS, listing.CONSUMER_STATUSES),
        ),
    )
}
