"""The topics and consumers lists: search, filter by status, sort by any column, page.

Rows come from the monitor's snapshot (every topic and consumer, already
measured), so a page of 1,000 costs one in-memory sort and no query. The
same ``ListQuery`` names a list in its URL, in its socket path and in the
live machinery (``dashboard.live``: the canonical query is the page's
"name"), so a pushed list is the very page the operator asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from eventflow.health import Status, rank
from eventflow.snapshot import Snapshot

from . import params

PAGE_ROWS = 50  # rows per page of a list
MAX_PAGE = 10_000  # pages a list has at most (500,000 rows)
SEARCH_CHARS = 100  # no topic or consumer name is longer
CONSUMER_LIST, TOPIC_LIST = "consumer-list", "topic-list"  # each list's live partial (its root's id)
TROUBLE = "trouble"  # any status but OK, or open failed events (as the graph draws trouble)
QUIET = "quiet"  # topics: nothing published now

CONSUMER_SORTS = ("name", "status", "lag", "pending", "oldest_pending", "rate", "failed", "skipped", "dead")
TOPIC_SORTS = ("name", "status", "rate", "published", "length", "backlog", "oldest_pending", "failed", "consumers")
CONSUMER_STATUSES = (TROUBLE, *(str(s) for s in Status))
TOPIC_STATUSES = (TROUBLE, QUIET, *(str(s) for s in Status))


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What one list shows: a search text, a status, a sort column ("-" first: descending), a page."""

    q: str = ""
    status: str = ""
    sort: str = "status"
    page: int = 1

    @classmethod
    def from_params(cls, values: Any, sorts: tuple[str, ...], statuses: tuple[str, ...]) -> ListQuery:
        """Read a query from GET parameters; raise ``params.BadParam`` for a value the list cannot use.

        Empty values are the defaults (the filter form sends them); a search text is cut at
        ``SEARCH_CHARS``, as every filter text is (no name is longer).
        """
        sort = str(values.get("sort", "")).strip() or "status"
        return cls(
            q=params.text(str(values.get("q", "")), "q", max_chars=SEARCH_CHARS),
            status=params.choice(str(values.get("status", "")), "status", ("", *statuses)),
            sort=params.choice(sort, "sort", (*sorts, *(f"-{column}" for column in sorts))),
            page=params.page_number(str(values.get("page", "")), "page", maximum=MAX_PAGE),
        )

    def canonical(self) -> str:
        """The query string of this list, defaults left out (also its live page name)."""
        values = {"q": self.q, "status": self.status, "sort": "" if self.sort == "status" else self.sort}
        values["page"] = "" if self.page == 1 else str(self.page)
        return urlencode({k: v for k, v in values.items() if v})

    def with_(self, **changes: Any) -> str:
        """The query string of this list with some values changed (a sort link, the next page)."""
        values = {"q": self.q, "status": self.status, "sort": self.sort, "page": self.page, **changes}
        return ListQuery(**values).canonical()

    def sort_link(self, column: str) -> str:
        """Sorting by a column: numbers biggest first, the name A to Z; again: the other way."""
        first = column if column in ("name", "status") else f"-{column}"
        if self.sort == first:
            first = first[1:] if first.startswith("-") else f"-{first}"
        return self.with_(sort=first, page=1)


def _sort_key(column: str) -> Any:
    if column == "name":
        return lambda row: row["name"]
    if column == "status":
        return lambda row: (rank(row["status"]), -float(row.get("rate") or 0), row["name"])
    return lambda row: (float(row.get(column) or 0), row["name"])


def _matches(row: Mapping[str, Any], query: ListQuery) -> bool:
    if query.q and query.q.lower() not in row["name"].lower():
        return False
    if query.status == TROUBLE:
        return row["status"] != "OK" or bool(row.get("failed"))
    if query.status == QUIET:
        return not row.get("rate")
    return not query.status or row["status"] == query.status


def page_of(rows: Sequence[Mapping[str, Any]], query: ListQuery) -> dict:
    """Filter, sort and cut one page; say how many matched and where the page is."""
    chosen = [row for row in rows if _matches(row, query)]
    column = query.sort.lstrip("-")
    chosen.sort(key=_sort_key(column), reverse=query.sort.startswith("-"))
    pages = max(1, -(-len(chosen) // PAGE_ROWS))
    page = min(query.page, pages)
    start = (page - 1) * PAGE_ROWS
    return {
        "rows": chosen[start : start + PAGE_ROWS],
        "matched": len(chosen),
        "total": len(rows),
        "page": page,
        "pages": pages,
        "first_row": start + 1 if chosen else 0,
        "last_row": min(start + PAGE_ROWS, len(chosen)),
        "newer": query.with_(page=page - 1) if page > 1 else None,
        "older": query.with_(page=page + 1) if page < pages else None,
        "query": query,
    }


def topic_rows(snapshot: Snapshot) -> list[dict]:
    """One row per topic: its own figures and the worst of its consumers'."""
    by_name = {c["name"]: c for c in snapshot["consumers"]}
    rows = []
    for topic in snapshot["topics"]:
        mine = [by_name[name] for name in topic["consumers"] if name in by_name]
        worst = min(mine, key=lambda c: rank(c["status"]), default=None)
        rows.append(
            {
                **topic,
                "status": worst["status"] if worst else "OK",
                "worst": worst["name"] if worst and worst["status"] != "OK" else "",
                "backlog": sum(c["backlog"] for c in mine),
                "oldest_pending": max((c["oldest_pending"] for c in mine), default=0.0),
                "failed": sum(c["failed"] for c in mine),
                "consumers": len(mine),
                "consumer_names": topic["consumers"],
            }
        )
    return rows


def consumers_page(snapshot: Snapshot, name: str) -> dict:
    """The live context of the consumers list named by its canonical query."""
    query = ListQuery.from_params(dict(parse_qsl(name)), CONSUMER_SORTS, CONSUMER_STATUSES)
    context = page_of(snapshot["consumers"], query)
    context.update(list_name=query.canonical(), statuses=CONSUMER_STATUSES, stale=not snapshot.get("live"))
    return context


def topics_page(snapshot: Snapshot, name: str) -> dict:
    """The live context of the topics list named by its canonical query."""
    query = ListQuery.from_params(dict(parse_qsl(name)), TOPIC_SORTS, TOPIC_STATUSES)
    context = page_of(topic_rows(snapshot), query)
    context.update(list_name=query.canonical(), statuses=TOPIC_STATUSES, stale=not snapshot.get("live"))
    return context
