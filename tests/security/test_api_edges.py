"""Edges the fuzzing found: numbers JSON cannot carry exactly, and paths no route matches."""

from __future__ import annotations

import orjson
import pytest

from eventflow import keys

URL = "/api/v1/topics/orders/events"


@pytest.fixture
def post(client, shop_token):
    def send(body: bytes, url: str = URL):
        headers = {"Authorization": f"Bearer {shop_token}"}
        return client.post(url, body, content_type="application/json", headers=headers)

    return send


@pytest.mark.parametrize("number", [str(2**64), str(-(2**63) - 1), "1" + "0" * 40])
def test_an_integer_past_64_bits_is_refused_rather_than_rounded(post, number):
    reply = post(b'{"type": "t", "data": {"amount": ' + number.encode() + b"}}")

    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "number_out_of_range"


def test_the_largest_exact_integers_and_long_digit_strings_are_kept_exactly(post, redis_client):
    body = {"type": "t", "data": {"max": 2**64 - 1, "min": -(2**63), "digits": "1" * 40}}

    assert post(orjson.dumps(body)).status_code == 202
    [(_, fields)] = redis_client.xrange(keys.stream("orders"))
    assert orjson.loads(fields[b"e"])["data"] == body["data"]


@pytest.mark.parametrize(
    "path", ["/api/v1/topics//events", "/api/v1/topics/a/b/events", "/api/v1/nothing", "/api/v1/topics//%0A/events"]
)
def test_a_path_no_api_route_matches_gets_a_json_404_even_for_a_post(post, path):
    reply = post(b'{"type": "t"}', url=path)

    assert reply.status_code == 404
    assert reply["Content-Type"] == "application/json"
    assert reply.json()["error"]["code"] == "not_found"
