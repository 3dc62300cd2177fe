"""eventflow.connection: the lean call paths against a real Redis."""

from __future__ import annotations

import pytest
import redis

from eventflow.connection import call, call_many


def test_call_many_answers_in_order_with_an_error_reply_in_its_place(redis_client, key_prefix):
    key = f"{key_prefix}counter"

    replies = call_many(redis_client, [("SET", key, "one"), ("INCR", key), ("GET", key), ("XLEN", key)])

    assert replies[0] is True or replies[0] == b"OK"
    assert isinstance(replies[1], redis.ResponseError) and "not an integer" in str(replies[1])
    assert replies[2] == b"one"
    assert isinstance(replies[3], redis.ResponseError)


def test_call_sends_bytes_numbers_and_text_as_redis_py_would(redis_client, key_prefix):
    key = f"{key_prefix}hash"

    call(redis_client, "HSET", key, "text", "é", "bytes", b"\x00\xff", "int", 7, "float", 2.5)

    assert redis_client.hgetall(key) == {b"text": "é".encode(), b"bytes": b"\x00\xff", b"int": b"7", b"float": b"2.5"}


def test_an_argument_redis_cannot_carry_is_refused_and_the_connection_stays_usable(redis_client, key_prefix):
    key = f"{key_prefix}k"

    with pytest.raises(redis.DataError):
        call_many(redis_client, [("SET", key, None)])

    assert call(redis_client, "SET", key, "v") in (True, b"OK")
    assert call(redis_client, "GET", key) == b"v"
