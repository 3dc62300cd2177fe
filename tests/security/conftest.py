"""Fixtures of the security suites: a real server with friends and foes of the shop producer."""

from __future__ import annotations

import pytest

from eventflow.models import Producer, Topic


def _producer(name: str, *topics: Topic, revoked: bool = False) -> str:
    producer = Producer(name=name)
    token = producer.set_new_token()
    producer.save()
    producer.topics.add(*topics)
    if revoked:
        producer.revoke()
    return token


@pytest.fixture
def tokens(shop_token, shop, orders, payments) -> dict[str, str]:
    """Named tokens: the shop's (orders, inactive), one revoked, one only for payments."""
    inactive = Topic.objects.create(name="inactive", active=False)
    shop.topics.add(inactive)
    return {
        "shop": shop_token,
        "revoked": _producer("gone", orders, revoked=True),
        "other": _producer("bank", payments),
    }
