"""New failed events for one open failed-events page: what it shows, what to push to it.

The page tells its socket its filter and its newest row (a hidden ``ws-send``
form in the ``failed-table`` partial, sent again whenever the table is
re-rendered). When the monitor says new failures happened, the socket asks
the database for the rows *this* page's filter matches, newer than what it
shows, and pushes them to the top of the table. Bounded: a page takes at most
``INSERT_LIMIT`` rows a push and ``PAGE_LIMIT`` in all; past that, and on
later pages, it gets a "N new failed events — show" notice that reloads the
table instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.template.loader import render_to_string

from eventflow.models import FailedEvent
from eventflow.permissions import can_discard, can_edit_and_replay, can_replay

from .failed_rows import bulk_replays, consumer_failed, filter_query, matching, parse_cursor, read_filters
from .params import BadParam

INSERT_LIMIT = 20  # rows pushed into a page at once; more at once turns into the notice
PAGE_LIMIT = 100  # rows a page takes in live before it only counts them
ROWS_LIMIT = 200  # rows whose status moved, re-rendered per push


def row_context(user: Any) -> dict:
    """What a row's buttons depend on: the user's permissions."""
    return {"can_replay": can_replay(user), "can_discard": can_discard(user), "can_edit": can_edit_and_replay(user)}


def rows_html(ids: list[int], user: Any) -> str:
    """Rows whose status moved, rendered for this user as out-of-band replacements."""
    rows = FailedEvent.objects.filter(pk__in=ids[:ROWS_LIMIT]).select_related("consumer", "topic")
    context = {**row_context(user), "oob": True}
    return "".join(render_to_string("dashboard/failed.html#failed-row", {**context, "row": row}) for row in rows)


@dataclass(slots=True)
class FailedWatch:
    filters: dict[str, str]
    newest: tuple[dt.datetime, int] | None  # the newest row the page shows (last failure, id)
    paged: bool  # an older page: new rows do not belong at its top
    inserted: int = 0
    waiting: int = 0  # new rows the notice counts
    shown: set[int] = field(default_factory=set)  # rows on the page: only these are replaced in place

    @classmethod
    def from_form(cls, form: dict[str, Any]) -> FailedWatch | None:
        """What the page's hidden form says it shows; None (watch nothing) if the form is not one it sent."""
        shown = {int(i) for i in str(form.get("shown") or "").split(",") if i.isdigit()}
        try:
            newest = parse_cursor(str(form.get("newest") or ""))
            return cls(read_filters(form), newest, bool(form.get("paged")), shown=shown)
        except BadParam:
            return None

    def on_page(self, ids: list[int]) -> list[int]:
        """The rows among ``ids`` this page shows (a swap of a row it lacks would have no target)."""
        return [i for i in ids if i in self.shown]

    def push(self, user: Any) -> str:
        """The HTML to send for new failures matching this page (empty if none)."""
        rows = self._newer().select_related("consumer", "topic")
        fresh = list(rows[: INSERT_LIMIT + 1])
        if not fresh:
            return ""
        self.newest = (fresh[0].last_failed_at, fresh[0].pk)
        if self.paged or self.waiting or len(fresh) > INSERT_LIMIT or self.inserted + len(fresh) > PAGE_LIMIT:
            self.waiting += rows.count() if len(fresh) > INSERT_LIMIT else len(fresh)
            return self._notice()
        self.inserted += len(fresh)
        self.shown.update(row.pk for row in fresh)
        context = row_context(user)
        html = "".join(render_to_string("dashboard/failed.html#failed-row", {**context, "row": r}) for r in fresh)
        return f'<tbody hx-swap-oob="afterbegin:#failed-rows">{html}</tbody>'

    def _newer(self) -> Any:
        rows = matching(self.filters)
        if self.newest is None:
            return rows
        moment, pk = self.newest
        return rows.filter(Q(last_failed_at__gt=moment) | Q(last_failed_at=moment, id__gt=pk))

    def _notice(self) -> str:
        context = {"waiting": self.waiting, "filter_query": filter_query(self.filters), "oob": True}
        return render_to_string("dashboard/failed.html#failed-new", context)


def consumer_failed_html(name: str, user: Any) -> str:
    """A consumer page's failed-events table, rendered for this user, as an out-of-band swap."""
    context = {**consumer_failed(name, user), "oob": True}
    return render_to_string("dashboard/consumer.html#consumer-failed", context)


def bulk_replays_html(user: Any) -> str:
    """The failed-events page's bulk replays with their progress, rendered for this user, out of band."""
    return render_to_string("dashboard/failed.html#failed-replays", {**bulk_replays(user), "oob": True})
