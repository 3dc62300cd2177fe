"""``manage.py createproducer NAME --topic T``: a producer from the command line."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from eventflow.models import Producer, hash_token
from tests.helpers import publish_status


def create(*args: str) -> list[str]:
    out = StringIO()
    call_command("createproducer", *args, stdout=out)
    return out.getvalue().splitlines()


def test_it_prints_a_working_token_as_the_last_line(client, orders):
    lines = create("shop2", "--topic", "orders")

    token = lines[-1]
    assert token.startswith("ef_") and " " not in token
    assert publish_status(client, token, "orders") == 202


def test_it_stores_only_the_tokens_hash(orders):
    token = create("shop2", "--topic", "orders")[-1]

    producer = Producer.objects.get(name="shop2")
    assert producer.token_hash == hash_token(token)
    assert token not in {producer.token_hint, producer.token_hash, producer.description}


def test_it_allows_every_topic_given_and_no_other(client, orders, payments, db):
    from eventflow.models import Topic

    Topic.objects.create(name="refunds")

    token = create("shop2", "--topic", "orders", "--topic", "payments", "--description", "the till")[-1]

    producer = Producer.objects.get(name="shop2")
    assert sorted(producer.topics.values_list("name", flat=True)) == ["orders", "payments"]
    assert producer.description == "the till"
    assert publish_status(client, token, "payments") == 202
    assert publish_status(client, token, "refunds") == 403


def test_it_refuses_an_unknown_topic_and_creates_nothing(orders):
    with pytest.raises(CommandError, match="unknown topic\\(s\\): nope, other"):
        create("shop2", "--topic", "orders", "--topic", "nope", "--topic", "other")
    assert not Producer.objects.filter(name="shop2").exists()


def test_it_refuses_a_name_that_is_taken(shop, orders):
    with pytest.raises(CommandError, match="a producer named 'shop' exists; rotate its token in the admin"):
        create("shop", "--topic", "orders")
    assert Producer.objects.filter(name="shop").count() == 1


def test_it_refuses_a_producer_without_a_topic(db):
    with pytest.raises(CommandError, match="give at least one --topic"):
        create("shop2")
    assert not Producer.objects.exists()


@pytest.mark.parametrize("name", ["Shop", "has space", "_shop", "a" * 101])
def test_it_refuses_a_name_that_is_not_url_safe(orders, name):
    with pytest.raises(CommandError, match="name: "):
        create(name, "--topic", "orders")
    assert not Producer.objects.exists()


def test_two_producers_get_different_tokens(orders):
    assert create("a", "--topic", "orders")[-1] != create("b", "--topic", "orders")[-1]
