"""Redis stream ids (``<ms>-<seq>``): the one place that parses, orders and formats them."""

from __future__ import annotations

import datetime as dt

MAX_LENGTH = 41  # two 64-bit numbers and a dash: anything longer is not an id


def parse_id(value: str | bytes) -> tuple[int, int] | None:
    """A stream id ("1712345678901-0", or "1712345678901") as (ms, seq); None if it is not one."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    ms, dash, seq = text.partition("-")
    if not ms.isdigit() or (dash and not seq.isdigit()) or len(text) > MAX_LENGTH:
        return None
    return int(ms), int(seq or 0)


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
