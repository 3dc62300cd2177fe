"""A producer's events/s limit is answered 429 with Retry-After, and nothing past it is stored."""

from __future__ import annotations

from unittest import mock

from eventflow import keys


def post(client, token: str, n: int):
    events = [{"type": "order.created", "data": {"n": i}} for i in range(n)]
    return client.post(
        "/api/v1/topics/orders/events",
        {"events": events},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_events_past_the_limit_are_refused_with_429_and_retry_after(client, shop, shop_token, redis_client):
    shop.max_events_per_second = 10
    shop.save()

    with mock.patch("eventflow.tokens.time.time", return_value=1_000_000.5):
        accepted = post(client, shop_token, 8)
        refused = post(client, shop_token, 3)
        still_room = post(client, shop_token, 2)

    assert accepted.status_code == 202 and still_room.status_code == 202
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["error"]["code"] == "rate_limited"
    assert redis_client.xlen(keys.stream("orders")) == 10


def test_the_limit_is_per_second(client, shop, shop_token):
    shop.max_events_per_second = 5
    shop.save()

    with mock.patch("eventflow.tokens.time.time", return_value=2_000_000.0):
        assert post(client, shop_token, 5).status_code == 202
    with mock.patch("eventflow.tokens.time.time", return_value=2_000_001.0):
        assert post(client, shop_token, 5).status_code == 202


def test_a_producer_without_a_limit_is_not_counted(client, shop_token, redis_client):
    assert post(client, shop_token, 50).status_code == 202
    assert not list(redis_client.scan_iter(keys.rate_window("shop", 0).rsplit(":", 1)[0] + ":*"))
