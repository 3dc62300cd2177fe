"""Small formatting filters for the dashboard: rates, ages, stream ids, statuses."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from django import template

from eventflow.health import SEVERITY
from eventflow.stream_ids import id_time

register = template.Library()


@register.filter
def rate(value: Any) -> str:
    """Events per second, short: ``0``, ``3.4/s``, ``12/s``, ``4.8k/s``."""
    number = float(value or 0)
    if number == 0:
        return "0/s"
    if number >= 1000:
        return f"{number / 1000:.1f}k/s"
    if number >= 10:
        return f"{number:.0f}/s"
    return f"{number:.1f}/s"


@register.filter
def age(seconds: Any) -> str:
    """A duration in the largest unit that keeps it readable: ``0.4 s``, ``34 s``, ``3 min``, ``2 h``."""
    value = float(seconds or 0)
    if value <= 0:
        return "—"
    if value < 10:
        return f"{value:.1f} s"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.0f} h"


@register.filter
def status_class(status: Any) -> str:
    """A health status's CSS class: its name in lower case ("lagging"), or "unknown"."""
    return str(status).lower() if str(status) in SEVERITY else "unknown"


@register.simple_tag
def tail_rows() -> int:
    """How many rows a topic page's live tail keeps (the page says it; eventflow.js trims to it)."""
    from ..live import TAIL_PAGE_ROWS  # imported here: live imports these filters

    return TAIL_PAGE_ROWS


@register.filter
def stream_time(stream_id: str) -> dt.datetime | None:
    """The time a stream entry was added, from its id (``<ms>-<seq>``)."""
    return id_time(str(stream_id))


@register.filter
def as_json(value: Any) -> str:
    """Pretty JSON for display (autoescaped by the template like any other text)."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


@register.filter
def compact_json(value: Any, limit: int = 160) -> str:
    text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


@register.filter
def get(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def num(value: Any) -> str:
    """A count with thousands separators: ``12,345``."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "—"


@register.filter
def sort_link(query: Any, column: str) -> str:
    """The query string that sorts a list by ``column`` (a ``listing.ListQuery``)."""
    return query.sort_link(column)


@register.filter
def sort_dir(query: Any, column: str) -> str:
    """``asc`` or ``desc`` if the list is sorted by ``column``, else empty (for the header's arrow)."""
    if query.sort == column:
        return "asc"
    return "desc" if query.sort == f"-{column}" else ""


@register.filter
def percent(share: Any) -> str:
    """A share as a percentage: ``0.05`` → ``5 %``."""
    return f"{float(share or 0) * 100:g} %"


@register.filter
def tail_text(event: Any) -> str:
    """What the live tail's text filter searches in an event (the browser and the socket alike)."""
    text = f"{event.get('type', '')} {event.get('key', '')} {event.get('data', '')}"
    return text[:2000].lower()


DRIFT_KINDS = {
    "silent_producer": "silent producer",
    "undeclared_group": "undeclared consumer group",
    "undeclared_stream": "undeclared topic stream",
    "no_worker": "consumer without a worker",
}


@register.filter
def drift_kind(kind: str) -> str:
    """A drift finding's kind in words (``eventflow.drift``)."""
    return DRIFT_KINDS.get(kind, kind.replace("_", " "))
