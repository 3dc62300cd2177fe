"""A whole flow travels as a fixture: dumpdata, flush, loaddata (natural keys by name)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from eventflow import keys
from eventflow.models import Consumer, Producer, Topic
from tests.helpers import make_consumer

MODELS = ["eventflow.Topic", "eventflow.Producer", "eventflow.Consumer"]


@pytest.fixture
def flow(orders, payments, shop, billing, shipping):
    """shop → orders → billing, shipping; billing also reads payments, and filters types."""
    billing.topics.add(payments)
    billing.event_types = "order.*, payment.captured"
    billing.max_attempts = 3
    billing.save()
    orders.data_schema = {"type": "object"}
    orders.save()
    make_consumer("audit", "tests.handlers.billing", payments, paused=True)


def dump() -> str:
    out = StringIO()
    call_command("dumpdata", *MODELS, natural_foreign=True, natural_primary=True, indent=2, stdout=out)
    return out.getvalue()


def test_the_fixture_names_things_instead_of_numbering_them(flow):
    rows = json.loads(dump())

    assert all("pk" not in row for row in rows)
    consumers = {row["fields"]["name"]: row["fields"] for row in rows if row["model"] == "eventflow.consumer"}
    assert sorted(consumers["billing"]["topics"]) == [["orders"], ["payments"]]
    producers = [row["fields"] for row in rows if row["model"] == "eventflow.producer"]
    assert producers[0]["topics"] == [["orders"]]
    models = [row["model"] for row in rows]
    assert models.index("eventflow.topic") < models.index("eventflow.producer")
    assert models.index("eventflow.topic") < models.index("eventflow.consumer")


def flush_inside_the_test_transaction() -> None:
    """``manage.py flush``, rolled back with the test.

    PostgreSQL refuses TRUNCATE while the transaction has deferred foreign-key
    checks pending (the fixtures' inserts), so those run first.
    """
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    call_command("flush", interactive=False, verbosity=0)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_flush_and_loaddata_recreate_the_flow_with_its_subscriptions(
    flow, tmp_path: Path, client, shop_token, redis_client
):
    fixture = tmp_path / "flow.json"
    fixture.write_text(dump())

    flush_inside_the_test_transaction()
    redis_client.delete(keys.stream("orders"), keys.stream("payments"))  # a fresh Redis, too
    assert not Topic.objects.exists() and not Consumer.objects.exists() and not Producer.objects.exists()
    call_command("loaddata", str(fixture), verbosity=0)

    assert sorted(Topic.objects.values_list("name", flat=True)) == ["orders", "payments"]
    assert Topic.objects.get(name="orders").data_schema == {"type": "object"}
    billing = Consumer.objects.get(name="billing")
    assert sorted(billing.topics.values_list("name", flat=True)) == ["orders", "payments"]
    assert billing.event_types == "order.*, payment.captured" and billing.max_attempts == 3
    assert list(Consumer.objects.get(name="shipping").topics.values_list("name", flat=True)) == ["orders"]
    assert Consumer.objects.get(name="audit").paused
    assert list(Producer.objects.get(name="shop").topics.values_list("name", flat=True)) == ["orders"]
    # The token's hash travelled with the producer, so its holder can still publish.
    response = client.post(
        "/api/v1/topics/orders/events",
        b'{"type": "order.created", "data": {}}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {shop_token}"},
    )
    assert response.status_code == 202
    # Loading the subscriptions created their consumer groups before the event arrived.
    groups = {g["name"].decode(): g["lag"] for g in redis_client.xinfo_groups(keys.stream("orders"))}
    assert groups == {"billing": 1, "shipping": 1}


def test_loading_the_fixture_twice_updates_rather_than_duplicates(flow, tmp_path: Path):
    fixture = tmp_path / "flow.json"
    fixture.write_text(dump())
    Consumer.objects.filter(name="billing").update(max_attempts=9)

    call_command("loaddata", str(fixture), verbosity=0)

    assert Consumer.objects.filter(name="billing").count() == 1
    assert Consumer.objects.get(name="billing").max_attempts == 3
    assert Topic.objects.count() == 2
