"""Redis stream ids (``<ms>-<seq>``): the one place that parses, orders and formats them."""

from __future__ import annotations

import datetime as dt

MAX_LENGTH = 41  # two 64-bit numbers and a dash: anything longer is not an id
UINT64_MAX = 2**64 - 1  # each half of an id is an unsigned 64-bit number


def parse_id(value: str | bytes) -> tuple[int, int] | None:
    """A stream id ("1712345678901-0", or "1712345678901") as (ms, seq); None if it is not one."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    if len(text) > MAX_LENGTH:
        return None
    ms, dash, seq = text.partition("-")
    millis, sequence = _uint64(ms), _uint64(seq) if dash else 0
    if millis is None or sequence is None:
        return None
    return millis, sequence


def _uint64(text: str) -> int | None:
    """``text`` as a number if it is ASCII digits (not just ``isdigit()``: ``²``, ``١``) up to 2**64 - 1."""
    if not (text and text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= UINT64_MAX else None


def id_order(value: str | bytes) -> tuple[int, int]:
    """Where an id sorts among others: its (ms, seq), or (0, 0) (before every id) if it is not one."""
    return parse_id(value) or (0, 0)


def format_id(parts: tuple[int, int]) -> str:
    return f"{parts[0]}-{parts[1]}"


def id_ms(value: str | bytes) -> int:
    """The Unix time in milliseconds at which the entry was added; 0 if ``value`` is not an id."""
    return id_order(value)[0]


def id_time(value: str | bytes) -> dt.datetime | None:
    """When an entry was added, from its id; None if ``value`` is not one."""
    parts = parse_id(value)
    return dt.datetime.fromtimestamp(parts[0] / 1000, tz=dt.UTC) if parts else None
