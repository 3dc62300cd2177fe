"""Issue 4, item 8: producer tokens, held only as hashes and refused the moment they are revoked."""

from __future__ import annotations

import hashlib
from io import StringIO
from unittest import mock

import httpx
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from eventflow import tokens as token_auth
from eventflow.models import Producer


def every_value_in_the_database() -> str:
    """Every row of every table, as text: where a plaintext token would show."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks += [repr(row) for row in cursor.fetchall()]
    return "\n".join(chunks)


def test_no_plaintext_token_is_anywhere_in_the_database(orders, shop_token):
    out = StringIO()
    call_command("createproducer", "bank", "--topic", "orders", stdout=out)
    printed = out.getvalue().strip().splitlines()[-1]
    rotated = Producer.objects.get(name="shop")
    new_token = rotated.set_new_token()
    rotated.save()

    dump = every_value_in_the_database()
    for token in (shop_token, printed, new_token):
        assert token not in dump and token.removeprefix("ef_") not in dump
    assert hashlib.sha256(new_token.encode()).hexdigest() in dump  # what is kept instead


def test_the_lookup_is_by_hash_and_the_comparison_constant_time(shop_token):
    digest = hashlib.sha256(shop_token.encode()).hexdigest()
    with (
        CaptureQueriesContext(connection) as queries,
        mock.patch.object(token_auth.hmac, "compare_digest", wraps=token_auth.hmac.compare_digest) as compare,
    ):
        token_auth.authenticate(f"Bearer {shop_token}")

    lookup = queries.captured_queries[0]["sql"]
    assert digest in lookup and shop_token not in lookup
    compare.assert_called_once_with(digest, digest)


@pytest.mark.processes
def test_a_revoked_or_rotated_token_is_refused_at_once_by_the_running_server(asgi_server, shop_token):
    event = {"type": "order.created", "data": {}}
    with httpx.Client(base_url=asgi_server, headers={"Authorization": f"Bearer {shop_token}"}) as client:
        assert client.post("/api/v1/topics/orders/events", json=event).status_code == 202
        shop = Producer.objects.get(name="shop")
        shop.revoke()
        revoked = client.post("/api/v1/topics/orders/events", json=event)

        new_token = shop.set_new_token()
        shop.save()
        old = client.post("/api/v1/topics/orders/events", json=event)
        new = client.post("/api/v1/topics/orders/events", json=event, headers={"Authorization": f"Bearer {new_token}"})

    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "revoked_token"
    assert old.status_code == 401 and new.status_code == 202


@pytest.mark.processes
def test_a_producer_over_its_rate_gets_429_with_retry_after_from_the_running_server(asgi_server, shop_token):
    shop = Producer.objects.get(name="shop")
    shop.max_events_per_second = 5
    shop.save()  # as the admin does
    with httpx.Client(base_url=asgi_server, headers={"Authorization": f"Bearer {shop_token}"}) as client:
        replies = [client.post("/api/v1/topics/orders/events", json={"type": "t"}) for _ in range(12)]

    limited = [r for r in replies if r.status_code == 429]
    assert limited and all(r.headers["Retry-After"].isdigit() for r in limited)
    assert all(r.json()["error"]["code"] == "rate_limited" for r in limited)
    assert sum(r.status_code == 202 for r in replies) <= 10  # at most 5 in each of two wall-clock seconds
