"""Stream ids are parsed, ordered and dated in one place (eventflow.stream_ids)."""

from __future__ import annotations

import datetime as dt

import pytest

from eventflow.stream_ids import format_id, id_ms, id_order, id_time, parse_id


@pytest.mark.parametrize(
    ("value", "parts"),
    [("1712345678901-7", (1712345678901, 7)), ("1712345678901", (1712345678901, 0)), (b"5-1", (5, 1))],
)
def test_it_reads_an_id_with_or_without_its_sequence(value, parts):
    assert parse_id(value) == parts
    assert format_id(parts) == f"{parts[0]}-{parts[1]}"


TOO_BIG = str(2**64)  # past what either half of a Redis id holds


NOT_IDS = ["", "-", "1-", "abc-1", "1-x", "1-2-3", "1" * 42, f"{TOO_BIG}-0", f"0-{TOO_BIG}", "²-0", "١-0"]


@pytest.mark.parametrize("value", NOT_IDS)
def test_what_is_not_an_id_parses_to_none_and_sorts_first(value):
    assert parse_id(value) is None
    assert id_order(value) == (0, 0) < id_order("0-1")
    assert id_ms(value) == 0 and id_time(value) is None


def test_each_half_may_be_as_large_as_redis_holds():
    assert parse_id("18446744073709551615-18446744073709551615") == (2**64 - 1, 2**64 - 1)


def test_ids_sort_by_time_then_sequence_not_as_text():
    assert id_order("9-10") > id_order("9-9") and id_order("10-0") > id_order("9-99")


def test_an_id_says_when_its_entry_was_added():
    assert id_time("1700000000000-3") == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
