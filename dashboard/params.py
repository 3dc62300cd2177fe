"""Every value the dashboard reads from a URL, a query string or a form, parsed in one place.

Each parser takes the raw text and the parameter's name and returns a typed
value, or raises :class:`BadParam`, whose text names the parameter and says
what would fit. Dashboard pages answer a ``BadParam`` with a 400 and that text
(``views.security.staff_page``), so no hostile value reaches Redis or the
database as something they refuse with a server error: stream ids past 64 bits
or written in digits ``int()`` accepts and Redis does not (``١``, ``²``),
datetimes Python cannot move to UTC, integers past a 64-bit column, NUL bytes
PostgreSQL cannot store.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from eventflow.stream_ids import parse_id

MAX_TEXT_CHARS = 200  # filter text is cut here: no name, type or search term is longer
ROW_ID_MAX = 2**63 - 1  # primary keys are signed 64-bit columns
MAX_IDS = 1000  # rows one bulk action names at most
# Moments a filter may name: stream ids start at the epoch, and a year short of
# datetime's limit leaves room for any time zone offset.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


_DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?|\.[0-9]{1,20}")  # ASCII only: no "١", "1_0", "nan"
_MOMENT_FORM = "give the time as YYYY-MM-DDTHH:MM[:SS], e.g. 2026-01-31T12:00:05 (UTC unless it has an offset)"


class BadParam(ValueError):
    """A parameter the dashboard cannot use. ``str()`` is the message for the person who sent it."""

    def __init__(self, name: str, expected: str) -> None:
        super().__init__(f"{name}: {expected}")
        self.name = name


def text(value: str, name: str, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Free text (a name, a type, a search term), stripped and cut to ``max_chars``; no NUL."""
    if "\x00" in value:
        raise BadParam(name, "must not contain NUL characters")
    return value.strip()[:max_chars]


def choice(value: str, name: str, choices: Iterable[str]) -> str:
    """One of ``choices`` (the empty string counts only if it is one of them)."""
    allowed = list(choices)
    value = value.strip()
    if value not in allowed:
        raise BadParam(name, "must be one of " + ", ".join(repr(c) for c in allowed if c))
    return value


def stream_id(value: str, name: str) -> str:
    """A Redis stream id, ``<ms>`` or ``<ms>-<seq>``: ASCII digits, each part at most 2**64 - 1."""
    value = value.strip()
    if parse_id(value) is None:
        raise BadParam(name, "a stream id looks like 1712345678901-0 (two numbers below 2**64)")
    return value


def moment(value: str, name: str) -> dt.datetime | None:
    """An ISO 8601 date or datetime (UTC if it names no zone) between 1970 and 9998; empty: None."""
    value = value.strip()
    if not value:
        return None
    try:
        if not value.isascii():
            raise ValueError(value)
        parsed = dt.datetime.fromisoformat(value)
        parsed = parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # astimezone overflows past year 1 or 9999
        raise BadParam(name, _MOMENT_FORM) from None
    if not EARLIEST <= parsed < LATEST:
        raise BadParam(name, f"must be between {EARLIEST:%Y-%m-%d} and {LATEST - dt.timedelta(days=1):%Y-%m-%d}")
    return parsed


def row_id(value: str, name: str) -> int:
    """A database row id: ASCII digits, at most 2**63 - 1."""
    number = _uint(value.strip(), ROW_ID_MAX)
    if number is None:
        raise BadParam(name, f"must be a row id (digits 0-9, at most {ROW_ID_MAX})")
    return number


def row_ids(values: Iterable[str], name: str, *, limit: int = MAX_IDS) -> list[int]:
    """Row ids of a bulk action (a form's checked boxes), at most ``limit`` of them."""
    ids = [row_id(value, name) for value in values]
    if len(ids) > limit:
        raise BadParam(name, f"at most {limit} rows at once")
    return ids


def cursor(value: str, name: str) -> tuple[dt.datetime, int] | None:
    """A keyset page position, ``<iso datetime>|<row id>``; empty: None."""
    if not value.strip():
        return None
    when, bar, pk = value.strip().partition("|")
    if not bar:
        raise BadParam(name, "a cursor looks like 2026-01-31T12:00:00+00:00|42")
    moment_ = moment(when, name)
    if moment_ is None:
        raise BadParam(name, "a cursor looks like 2026-01-31T12:00:00+00:00|42")
    return moment_, row_id(pk, name)


def page_number(value: str, name: str, *, maximum: int) -> int:
    """A page of a list, from 1 to ``maximum`` (ASCII digits); empty: 1."""
    if not value.strip():
        return 1
    number = _uint(value.strip(), maximum)
    if not number:
        raise BadParam(name, f"must be a page number from 1 to {maximum}")
    return number


def stream_id_or_moment(value: str, name: str) -> str:
    """A stream id (as ``stream_id``) or an ISO 8601 time (as ``moment``, given back in UTC); empty: ""."""
    value = value.strip()
    if not value:
        return ""
    if value.isascii() and value.replace("-", "").isdigit() and ("-" not in value or value.count("-") == 1):
        return stream_id(value, name)
    parsed = moment(value, name)
    return parsed.isoformat() if parsed else ""


def positive_number(value: str, name: str, *, maximum: float) -> float | None:
    """A decimal number above 0 and at most ``maximum`` (ASCII digits, e.g. ``2.5``); empty: None."""
    value = value.strip()
    if not value:
        return None
    if not _DECIMAL.fullmatch(value):
        raise BadParam(name, f"must be a number above 0, at most {maximum:,g}")
    number = float(value)
    if not 0 < number <= maximum:
        raise BadParam(name, f"must be a number above 0, at most {maximum:,g}")
    return number


def _uint(text: str, largest: int) -> int | None:
    """``text`` as a number if it is 1-20 ASCII digits worth at most ``largest``, else None.

    ``str.isdigit()`` alone is not enough: it is True for ``²`` and ``١``, which
    ``int()`` refuses or reads, and which Redis and SQL refuse.
    """
    if not (0 < len(text) <= 20 and text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= largest else None
