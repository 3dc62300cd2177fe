"""POST /api/v1/topics/<topic>/events: the publishing contract, every answer."""

from __future__ import annotations

import gzip
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest
import redis

from eventflow import connection, keys, tokens
from eventflow.models import Producer

URL = "/api/v1/topics/{}/events"


@pytest.fixture
def post(client, shop_token):
    """POST to a topic as the shop producer; ``body`` may be a JSON-able value or bytes."""

    def send(
        body, topic: str = "orders", content_type: str = "application/json", token: str | None = shop_token, **headers
    ):
        if not isinstance(body, bytes):
            body = orjson.dumps(body)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        # CONTENT_TYPE again: the test client drops the header of an empty body; real clients don't.
        return client.post(
            URL.format(topic), body, content_type=content_type, headers=headers, CONTENT_TYPE=content_type
        )

    return send


def stored(redis_client, topic: str = "orders") -> list[dict]:
    """The envelopes in a topic's stream, oldest first."""
    return [orjson.loads(fields[b"e"]) for _, fields in redis_client.xrange(keys.stream(topic))]


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert set(error) >= {"code", "message"} and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def cloudevent(**attributes) -> dict:
    return {"specversion": "1.0", "id": "ce-1", "source": "/anywhere", "type": "order.created", **attributes}


@pytest.fixture
def orders_with_schema(orders):
    orders.data_schema = {"type": "object", "required": ["order"], "properties": {"order": {"type": "integer"}}}
    orders.save()
    return orders


# --- success ----------------------------------------------------------------------


def test_it_answers_202_with_the_id_after_the_event_is_in_redis(post, redis_client):
    response = post({"type": "order.created", "data": {"order": 1}, "key": "c-7"})

    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1 and len(body["ids"]) == 1
    [event] = stored(redis_client)
    assert event["id"] == body["ids"][0]
    assert event["data"] == {"order": 1} and event["key"] == "c-7"
    assert event["source"] == "shop" and event["topic"] == "orders" and event["specversion"] == "1.0"


def test_it_keeps_the_producers_own_id_and_time(post, redis_client):
    response = post({"type": "order.created", "id": "o-1", "time": "2026-01-31T12:00:00Z", "data": None})

    assert response.json()["ids"] == ["o-1"]
    assert stored(redis_client)[0]["time"] == "2026-01-31T12:00:00Z"


def test_it_stores_a_batch_in_order_and_answers_every_id(post, redis_client):
    events = [{"type": "order.created", "data": {"n": n}} for n in range(5)]

    response = post({"events": events})

    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 5
    assert [e["id"] for e in stored(redis_client)] == body["ids"]
    assert [e["data"]["n"] for e in stored(redis_client)] == [0, 1, 2, 3, 4]


def test_it_accepts_a_structured_cloudevent(post, redis_client):
    event = cloudevent(data={"order": 3}, partitionkey="c-9", traceparent="00-abc-01", subject="o/3")

    response = post(event, content_type="application/cloudevents+json")

    assert response.status_code == 202 and response.json()["ids"] == ["ce-1"]
    [stored_event] = stored(redis_client)
    assert stored_event["key"] == "c-9" and stored_event["traceparent"] == "00-abc-01"
    assert stored_event["source"] == "shop", "the broker names the producer as the source"


def test_it_accepts_a_cloudevents_batch(post, redis_client):
    batch = [cloudevent(id="a", data=1), cloudevent(id="b", data=2)]

    response = post(batch, content_type="application/cloudevents-batch+json")

    assert response.status_code == 202 and response.json() == {"accepted": 2, "ids": ["a", "b"]}
    assert [e["data"] for e in stored(redis_client)] == [1, 2]


def test_it_accepts_a_binary_mode_cloudevent_with_a_json_body(post, redis_client):
    response = post(
        {"order": 4},
        **{"ce-specversion": "1.0", "ce-id": "bin-1", "ce-source": "/x", "ce-type": "order.created"},
        **{"ce-time": "2026-01-31T12:00:00+01:00"},
    )

    assert response.status_code == 202 and response.json()["ids"] == ["bin-1"]
    [event] = stored(redis_client)
    assert event["data"] == {"order": 4} and event["datacontenttype"] == "application/json"
    assert event["time"] == "2026-01-31T12:00:00+01:00"


def test_it_keeps_a_binary_mode_text_body_as_text_and_other_bodies_as_base64(post, redis_client):
    headers = {"ce-specversion": "1.0", "ce-source": "/x", "ce-type": "blob"}

    text = post(b"hello: world", content_type="text/plain", **headers, **{"ce-id": "t"})
    blob = post(b"\x00\xffraw", content_type="application/octet-stream", **headers, **{"ce-id": "b"})

    assert text.status_code == 202 and blob.status_code == 202
    first, second = stored(redis_client)
    assert first["data"] == "hello: world"
    assert second["data_base64"] == "AP9yYXc=" and second["datacontenttype"] == "application/octet-stream"


BINARY = {"ce-specversion": "1.0", "ce-source": "/x", "ce-type": "order.created"}


def test_it_reads_a_binary_mode_body_without_content_type_as_json_as_the_sdks_do(post, redis_client, orders_with_schema):
    response = post(b'{"order": 5}', content_type="", **BINARY, **{"ce-id": "no-ct"})

    assert response.status_code == 202, response.content
    [event] = stored(redis_client)
    assert event["data"] == {"order": 5} and "data_base64" not in event


def test_it_percent_decodes_binary_mode_header_values(post, redis_client):
    headers = {**BINARY, "ce-id": "order%2042", "ce-subject": "%C3%9Cn%C3%AF%20subject"}

    response = post({"order": 42}, **headers)

    assert response.status_code == 202 and response.json()["ids"] == ["order 42"]
    [event] = stored(redis_client)
    assert (event["id"], event["subject"]) == ("order 42", "Ünï subject")


def test_it_refuses_a_percent_encoded_header_that_is_not_utf8(post):
    assert_error(post({"order": 1}, **BINARY, **{"ce-id": "bad%FF"}), 400, "invalid_encoding")


def test_it_keeps_the_binary_mode_content_type_with_its_parameters(post, redis_client):
    response = post(b"hello", content_type="text/plain; charset=utf-8", **BINARY, **{"ce-id": "t"})

    assert response.status_code == 202
    [event] = stored(redis_client)
    assert event["datacontenttype"] == "text/plain; charset=utf-8" and event["data"] == "hello"


def test_it_never_stores_data_null_beside_data_base64(post, redis_client):
    post(b"\x00\x01", content_type="application/octet-stream", **BINARY, **{"ce-id": "b"})
    post(cloudevent(id="s", data_base64="AAE="), content_type="application/cloudevents+json")

    first, second = stored(redis_client)
    assert "data" not in first and first["data_base64"] == "AAE="
    assert "data" not in second and second["data_base64"] == "AAE="


def test_it_accepts_a_structured_event_that_also_carries_ce_headers(post, redis_client):
    response = post(cloudevent(id="s-1", data=1), content_type="application/cloudevents+json", **BINARY)

    assert response.status_code == 202, response.content
    assert [e["id"] for e in stored(redis_client)] == ["s-1"]


def test_it_keeps_partitionkey_as_the_extension_and_as_the_ordering_key(post, redis_client):
    post(cloudevent(partitionkey="c-9"), content_type="application/cloudevents+json")

    [event] = stored(redis_client)
    assert event["partitionkey"] == "c-9" and event["key"] == "c-9"


def test_it_decodes_a_gzip_body(post, redis_client):
    response = post(gzip.compress(orjson.dumps({"type": "order.created", "data": 7})), **{"Content-Encoding": "gzip"})

    assert response.status_code == 202, response.content
    assert [e["data"] for e in stored(redis_client)] == [7]


def test_it_refuses_a_gzip_body_that_inflates_past_the_body_limit(post, settings, redis_client):
    settings.EVENTFLOW_MAX_BODY_BYTES = 4096
    bomb = gzip.compress(b'{"type": "x", "data": "' + b"a" * 100_000 + b'"}')
    assert len(bomb) < 4096

    assert_error(post(bomb, **{"Content-Encoding": "gzip"}), 413, "too_large")
    assert stored(redis_client) == []


def test_it_refuses_a_content_encoding_it_cannot_decode_with_415(post):
    error = assert_error(post({"type": "x"}, **{"Content-Encoding": "br"}), 415, "unsupported_encoding")
    assert "gzip" in error["message"]


def test_it_refuses_a_broken_gzip_body_with_400(post):
    assert_error(post(b"\x1f\x8bnot really", **{"Content-Encoding": "gzip"}), 400, "malformed_gzip")


def test_it_refuses_an_empty_batch_saying_why(post):
    error = assert_error(post({"events": []}), 422, "empty_batch")
    assert "at least one" in error["message"]


def test_it_stores_an_id_published_twice_once_and_says_so(post, redis_client):
    event = {"type": "order.created", "id": "dup-1", "data": {}}

    first = post(event)
    second = post({"events": [event, {"type": "order.created", "id": "new-1"}]})

    assert first.json() == {"accepted": 1, "ids": ["dup-1"]}
    assert second.status_code == 202
    assert second.json() == {"accepted": 1, "ids": ["dup-1", "new-1"], "duplicates": ["dup-1"]}
    assert [e["id"] for e in stored(redis_client)] == ["dup-1", "new-1"]


def test_it_marks_the_producer_as_seen(post, shop, monkeypatch):
    monkeypatch.setattr(tokens, "_last_seen_written", {})  # forget earlier tests' producers
    assert shop.last_seen_at is None
    post({"type": "order.created"})
    shop.refresh_from_db()
    assert shop.last_seen_at is not None


@contextmanager
def database_write_locked(producer: Producer) -> Iterator[None]:
    """Another connection holds the lock a write to ``producer``'s row needs, until the block ends."""
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        other = sqlite3.connect(settings["NAME"], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the database's one write lock
    else:
        import psycopg

        other = psycopg.connect(
            dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"], port=settings["PORT"] or 5432
        )
        other.execute("SELECT 1 FROM eventflow_producer WHERE id = %s FOR UPDATE", [producer.pk])
    try:
        yield
    finally:
        other.rollback()
        other.close()


def test_it_answers_fast_while_another_connection_holds_the_database_write_lock(
    transactional_db, post, shop, monkeypatch
):
    monkeypatch.setattr(tokens, "_last_seen_written", {})  # so this publish wants to write "last seen"
    with database_write_locked(shop):
        started = time.monotonic()
        response = post({"type": "order.created"})
        elapsed = time.monotonic() - started

    assert response.status_code == 202, response.content
    assert elapsed < 2.0, f"the publish waited {elapsed:.1f} s for the lock"


# --- 400 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, code",
    [
        (b"", "empty_body"),
        (b'{"type": "order.created",', "malformed_json"),
        (b'{"type": "\xff\xfe"}', "invalid_encoding"),
        (b"\xef\xbb\xbf{}", "malformed_json"),
        (b'{"type": "x", "data": NaN}', "malformed_json"),
        (b'{"type": "x", "data": Infinity}', "malformed_json"),
        (b'{"type": "x", "data": -Infinity}', "malformed_json"),
        (b"[" * 2000 + b"]" * 2000, "malformed_json"),
    ],
    ids=["empty", "truncated", "non-utf8", "bom", "nan", "infinity", "-infinity", "nested-2000"],
)
def test_it_answers_400_for_a_body_that_is_not_json(post, redis_client, body, code):
    assert_error(post(body), 400, code)
    assert stored(redis_client) == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "a", "type": "b"}',
        b'{"type": "a", "data": {"n": 1, "n": 2}}',
        b'{"events": [{"type": "a", "time": "2026-01-31T12:00:00Z", "id": "1", "id": "2"}]}',
        b'{"type" : "a" ,\n "type" : "b"}',
        b'{"type": "a", "data": {"k\\u003a": 1, "k:": 2}}',
    ],
    ids=["top-level", "in-data", "in-batch-with-colons-elsewhere", "spaced", "escaped-colon"],
)
def test_it_answers_400_for_an_object_that_repeats_a_key(post, redis_client, body):
    error = assert_error(post(body), 400, "duplicate_key")
    assert "repeats the key" in error["message"]
    assert stored(redis_client) == []


def test_it_accepts_colons_inside_strings_and_escaped_keys_that_differ(post, redis_client):
    body = b'{"type": "a:b", "data": {"url": "http://x:80/", "k\\u003a": 1, "k": 2}}'

    assert post(body).status_code == 202
    assert stored(redis_client)[0]["data"] == {"url": "http://x:80/", "k:": 1, "k": 2}


def test_it_answers_a_clean_4xx_for_data_nested_deeper_than_it_can_store(post, redis_client):
    nested = b"[" * 600 + b"]" * 600

    response = post(b'{"type": "x", "data": ' + nested + b"}")

    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)
    assert stored(redis_client) == []


def test_it_stores_data_nested_a_hundred_levels_deep(post, redis_client):
    nested = b'{"a":' * 100 + b"1" + b"}" * 100

    assert post(b'{"type": "x", "data": ' + nested + b"}").status_code == 202


# --- 401 / 403 / 404 / 405 ------------------------------------------------------------


def test_it_answers_401_for_a_missing_token(post):
    assert_error(post({"type": "x"}, token=None), 401, "missing_token")


def test_it_answers_401_for_a_header_that_is_not_bearer(client, orders):
    response = client.post(
        URL.format("orders"), b"{}", content_type="application/json", headers={"Authorization": "Basic abc"}
    )
    assert_error(response, 401, "missing_token")


def test_it_answers_401_for_an_unknown_token(post):
    assert_error(post({"type": "x"}, token="ef_not-a-token"), 401, "invalid_token")


def test_it_answers_401_for_a_revoked_token(post, shop, redis_client):
    shop.revoke()

    assert_error(post({"type": "x"}), 401, "revoked_token")
    assert stored(redis_client) == []


def test_it_answers_403_for_a_topic_the_producer_may_not_publish_to(post, payments, redis_client):
    error = assert_error(post({"type": "x"}, topic="payments"), 403, "topic_not_allowed")
    assert "payments" in error["message"]
    assert stored(redis_client, "payments") == []


def test_it_answers_403_for_an_inactive_topic(post, orders, redis_client):
    orders.active = False
    orders.save()

    assert_error(post({"type": "x"}), 403, "topic_inactive")
    assert stored(redis_client) == []


@pytest.mark.parametrize("topic", ["nope", "Orders", "a" * 300])
def test_it_answers_404_for_an_unknown_topic(post, topic):
    assert_error(post({"type": "x"}, topic=topic), 404, "unknown_topic")


def test_it_checks_the_token_before_saying_whether_a_topic_exists(post):
    assert_error(post({"type": "x"}, topic="nope", token=None), 401)


def test_it_answers_405_for_get(client, shop_token):
    response = client.get(URL.format("orders"), headers={"Authorization": f"Bearer {shop_token}"})

    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


# --- 413 ------------------------------------------------------------------------------


def test_it_answers_413_for_an_event_over_the_topics_size_limit(post, orders, redis_client):
    orders.max_event_bytes = 500
    orders.save()

    assert post({"type": "x", "data": "a" * 100}).status_code == 202
    error = assert_error(post({"events": [{"type": "x"}, {"type": "x", "data": "a" * 600}]}), 413, "too_large")
    assert "event 1" in error["message"] and "500" in error["message"]
    assert len(stored(redis_client)) == 1


def test_it_answers_413_for_a_body_over_the_limit(post, settings, redis_client):
    settings.EVENTFLOW_MAX_BODY_BYTES = 1000

    error = assert_error(post({"type": "x", "data": "a" * 1000}), 413, "too_large")
    assert "1000 bytes" in error["message"]
    assert stored(redis_client) == []


def test_it_answers_413_for_a_batch_over_the_event_limit(post, settings, redis_client):
    settings.EVENTFLOW_MAX_BATCH_EVENTS = 3

    assert post({"events": [{"type": "x"}] * 3}).status_code == 202
    error = assert_error(post({"events": [{"type": "x"}] * 4}), 413, "too_large")
    assert "limit of 3" in error["message"]
    batch = [cloudevent(id=str(n)) for n in range(4)]
    assert_error(post(batch, content_type="application/cloudevents-batch+json"), 413, "too_large")
    assert len(stored(redis_client)) == 3


# --- 415 ------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "", "application/json; charset=latin-1"])
def test_it_answers_415_for_an_unsupported_content_type(post, content_type):
    assert_error(post({"type": "x"}, content_type=content_type), 415, "unsupported_media_type")


def test_it_accepts_json_with_a_utf8_charset(post):
    assert post({"type": "x"}, content_type="application/json; charset=UTF-8").status_code == 202


# --- 422 ------------------------------------------------------------------------------


def test_it_answers_422_for_an_event_without_a_type(post):
    error = assert_error(post({"data": {}}), 422, "missing_type")
    assert "type" in error["message"]


@pytest.mark.parametrize("time", ["yesterday", "2026-01-31", "2026-01-31T12:00:00", "2026-02-30T12:00:00Z", 1700000000])
def test_it_answers_422_for_a_bad_time(post, time):
    error = assert_error(post({"type": "x", "time": time}), 422, "invalid_time")
    assert "RFC 3339" in error["message"]


def test_it_answers_422_naming_the_event_of_the_batch_and_why(post, redis_client):
    events = [{"type": "x"}, {"type": "x"}, {"type": "x", "time": "noon"}]

    error = assert_error(post({"events": events}), 422, "invalid_time")

    assert error["message"].startswith("event 2: ") and "'time'" in error["message"]
    assert error["index"] == 2
    assert stored(redis_client) == [], "a batch with one bad event stores nothing"


def test_it_answers_422_for_data_failing_the_topic_schema(post, orders_with_schema, redis_client):
    events = [{"type": "x", "data": {"order": 1}}, {"type": "x", "data": {"order": "one"}}]

    error = assert_error(post({"events": events}), 422, "schema_mismatch")

    assert error["message"].startswith("event 1: fails the topic's schema")
    assert "data at order" in error["message"] and "integer" in error["message"]
    assert stored(redis_client) == []


def test_it_answers_422_for_binary_data_on_a_topic_with_a_schema(post, orders_with_schema):
    headers = {"ce-specversion": "1.0", "ce-id": "b", "ce-source": "/x", "ce-type": "blob"}
    assert_error(post(b"\x00\x01", content_type="application/octet-stream", **headers), 422, "schema_mismatch")


def test_it_validates_binary_mode_json_against_the_topic_schema(post, orders_with_schema):
    headers = {"ce-specversion": "1.0", "ce-id": "b", "ce-source": "/x", "ce-type": "x"}
    assert_error(post({"order": "one"}, **headers), 422, "schema_mismatch")
    assert post({"order": 1}, **headers).status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        ["not", "an", "object"],
        {"type": ""},
        {"type": "x", "id": 5},
        {"type": "x", "source": "someone-else"},
        {"type": "x", "Bad_Name": 1},
        {"events": {"type": "x"}},
        {"events": []},
        {"events": [{"type": "x"}], "extra": 1},
    ],
    ids=["array", "empty-type", "numeric-id", "source", "bad-extension", "events-object", "empty-batch", "extra-key"],
)
def test_it_answers_422_for_a_well_formed_but_invalid_event(post, redis_client, body):
    assert_error(post(body), 422)
    assert stored(redis_client) == []


@pytest.mark.parametrize(
    "event",
    [
        {"id": "1", "source": "/x", "type": "x"},
        cloudevent(specversion="0.3"),
        cloudevent(data=1, data_base64="AQ=="),
        cloudevent(data_base64="not base64!"),
        cloudevent(datacontenttype={"a": 1}),
    ],
    ids=["no-specversion", "old-specversion", "data-and-base64", "bad-base64", "non-string-contenttype"],
)
def test_it_answers_422_for_an_invalid_structured_cloudevent(post, event):
    assert_error(post(event, content_type="application/cloudevents+json"), 422)


def test_it_answers_422_for_a_cloudevents_batch_that_is_not_an_array(post):
    assert_error(post(cloudevent(), content_type="application/cloudevents-batch+json"), 422)


def test_it_answers_422_for_a_binary_mode_event_missing_a_required_header(post):
    assert_error(post({}, **{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x"}), 422, "missing_type")


def test_it_answers_422_for_data_sent_as_a_binary_mode_header(post):
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x", "ce-type": "x", "ce-data": "hi"}
    assert_error(post(b"", content_type="", **headers), 422)


# --- 503 ------------------------------------------------------------------------------


@pytest.fixture
def redis_down(settings, redis_url):
    """Point the engine at a port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EVENTFLOW_REDIS_URL = f"redis://127.0.0.1:{port}/0"
    connection.reset()
    yield
    settings.EVENTFLOW_REDIS_URL = redis_url
    connection.reset()


def test_it_answers_503_with_retry_after_when_redis_is_unreachable(post, redis_url, key_prefix, redis_down):
    response = post({"events": [{"type": "x", "id": "a"}, {"type": "x"}]})

    error = assert_error(response, 503, "broker_unavailable")
    assert int(response["Retry-After"]) > 0
    assert "nothing was accepted" in error["message"]
    assert redis.Redis.from_url(redis_url).exists(keys.stream("orders")) == 0


def test_it_accepts_again_once_redis_is_back(post, settings, redis_url, redis_client, redis_down):
    assert post({"type": "x", "id": "retry-me"}).status_code == 503

    settings.EVENTFLOW_REDIS_URL = redis_url
    connection.reset()

    assert post({"type": "x", "id": "retry-me"}).json() == {"accepted": 1, "ids": ["retry-me"]}
    assert [e["id"] for e in stored(redis_client)] == ["retry-me"]


def test_a_second_producer_is_not_deduplicated_against_the_first(client, orders, post, redis_client):
    other = Producer(name="pos")
    token = other.set_new_token()
    other.save()
    other.topics.add(orders)

    post({"type": "x", "id": "same"})
    response = post({"type": "x", "id": "same"}, token=token)

    assert response.json() == {"accepted": 1, "ids": ["same"]}
    assert [e["source"] for e in stored(redis_client)] == ["shop", "pos"]
