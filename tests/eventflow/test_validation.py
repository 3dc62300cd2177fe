"""eventflow.validation: what a CloudEvents envelope may hold, shared by HTTP and Python."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from eventflow.errors import InvalidEvent, TooLarge
from eventflow.topics import TopicSpec
from eventflow.validation import check_schema, compile_schema, from_simple, from_structured, new_event_ids, seal


def spec(schema: object = None, max_event_bytes: int = 4096) -> TopicSpec:
    return TopicSpec(
        id=1,
        name="orders",
        active=True,
        max_event_bytes=max_event_bytes,
        validate_data=compile_schema(schema) if schema is not None else None,
    )


def sealed(index: int | None = None, topic: TopicSpec | None = None, **attributes) -> dict:
    return seal({"type": "x", **attributes}, topic=topic or spec(), source="shop", index=index)[0]


# --- time ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "time",
    [
        "2026-01-31T12:00:00Z",
        "2026-01-31T12:00:00.123Z",
        "2026-01-31T12:00:00.123456789Z",
        "2026-01-31T12:00:00+05:30",
        "2026-01-31T12:00:00-00:00",
        "2026-01-31t12:00:00z",
        "2016-12-31T23:59:60Z",
    ],
    ids=["utc", "millis", "nanos", "offset", "negative-zero-offset", "lowercase", "leap-second"],
)
def test_it_accepts_rfc3339_times(time):
    assert sealed(time=time)["time"] == time


@pytest.mark.parametrize(
    "time",
    [
        "2026-01-31T12:00:00",
        "2026-01-31",
        "2026-01-31T12:00Z",
        "2026-01-31T12Z",
        "2026-W05-6T12:00:00Z",
        "20260131T120000Z",
        "2026-01-31T12:00:00,5Z",
        "2026-01-31 12:00:00Z",
        "2026-02-30T12:00:00Z",
        "2026-01-31T25:00:00Z",
        "2026-01-31T12:00:00+0530",
        "2026-01-31T12:00:00Z\n",
        "٢٠٢٦-01-31T12:00:00Z",
        1769860800,
        "",
    ],
    ids=[
        "no-zone",
        "date-only",
        "no-seconds",
        "hour-only",
        "iso-week",
        "basic-format",
        "comma-fraction",
        "space",
        "feb-30",
        "hour-25",
        "offset-without-colon",
        "trailing-newline",
        "arabic-digits",
        "epoch-number",
        "empty",
    ],
)
def test_it_refuses_times_that_are_not_rfc3339_with_a_zone(time):
    with pytest.raises(InvalidEvent, match="RFC 3339") as caught:
        sealed(time=time)
    assert caught.value.code == "invalid_time"


def test_it_stamps_the_current_utc_time_when_none_is_given():
    before = datetime.now(UTC)
    time = sealed()["time"]
    after = datetime.now(UTC)
    assert time.endswith("Z") and len(time) == len("2026-01-31T12:00:00.000Z")
    assert before - timedelta(milliseconds=1) <= datetime.fromisoformat(time) <= after


def test_generated_ids_are_distinct_random_uuids():
    ids = new_event_ids(1000) + [sealed()["id"] for _ in range(100)]
    parsed = [uuid.UUID(text) for text in ids]
    assert len(set(ids)) == len(ids)
    assert {(u.version, u.variant) for u in parsed} == {(4, uuid.RFC_4122)}
    assert [str(u) for u in parsed] == ids


# --- attributes ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["traceparent", "a", "x1", "a" * 20])
def test_it_keeps_well_named_extension_attributes(name):
    assert from_simple({"type": "x", name: "v"})[name] == "v"


@pytest.mark.parametrize("name", ["Trace", "trace_parent", "trace-parent", "a" * 21, "traceparent\n", "é", ""])
def test_it_refuses_badly_named_extension_attributes(name):
    with pytest.raises(InvalidEvent, match="extension names are 1–20 lowercase letters or digits"):
        from_simple({"type": "x", name: "v"})


@pytest.mark.parametrize("value", ["s", "", True, False, 0, 2**31 - 1, -(2**31), "a" * 2048])
def test_it_accepts_extension_values_cloudevents_allows(value):
    assert from_simple({"type": "x", "ext": value})["ext"] == value


@pytest.mark.parametrize("value", [1.5, None, [1], {"a": 1}, 2**31, -(2**31) - 1, "a" * 2049])
def test_it_refuses_extension_values_cloudevents_does_not_allow(value):
    with pytest.raises(InvalidEvent, match="extension 'ext' must be"):
        from_simple({"type": "x", "ext": value})


@pytest.mark.parametrize("name", ["specversion", "source", "topic", "datacontenttype", "dataschema", "data_base64"])
def test_it_refuses_attributes_the_broker_sets_in_the_plain_form(name):
    with pytest.raises(InvalidEvent, match=f"'{name}' is set by the broker"):
        from_simple({"type": "x", name: "v"})


def test_the_broker_names_the_source_and_topic_whatever_the_producer_sent():
    attributes = from_structured({"specversion": "1.0", "id": "1", "source": "/forged", "type": "x"})

    envelope = seal(attributes, topic=spec(), source="shop")[0]

    assert envelope["source"] == "shop" and envelope["topic"] == "orders"


def test_a_structured_event_cannot_name_its_own_topic():
    with pytest.raises(InvalidEvent, match="'topic'"):
        from_structured({"specversion": "1.0", "id": "1", "source": "/x", "type": "x", "topic": "payments"})


@pytest.mark.parametrize("name", ["id", "type", "key", "subject"])
@pytest.mark.parametrize("value", ["", "a" * 201, 7, ["a"]])
def test_it_refuses_text_attributes_that_are_not_short_strings(name, value):
    with pytest.raises(InvalidEvent, match=f"'{name}' must be a non-empty string of at most 200"):
        sealed(**{name: value})


def test_it_accepts_text_attributes_of_200_characters():
    envelope = sealed(id="i" * 200, key="k" * 200, subject="s" * 200, type="t" * 200)
    assert len(envelope["id"]) == 200


def test_it_refuses_a_missing_type_in_both_forms():
    with pytest.raises(InvalidEvent) as plain:
        from_simple({"data": 1})
    with pytest.raises(InvalidEvent) as structured:
        from_structured({"specversion": "1.0", "id": "1", "source": "/x"})
    assert plain.value.code == structured.value.code == "missing_type"


def test_it_names_the_event_of_a_batch_in_every_message():
    with pytest.raises(InvalidEvent) as caught:
        sealed(index=7, time="noon")
    assert caught.value.index == 7 and caught.value.message.startswith("event 7: ")
    assert caught.value.as_dict()["error"]["index"] == 7


# --- sizes --------------------------------------------------------------------------------


def test_it_measures_the_whole_envelope_against_the_topic_limit():
    topic = spec(max_event_bytes=300)
    envelope, payload = seal({"type": "x", "data": ""}, topic=topic, source="shop")
    room = 300 - len(payload)

    seal({"type": "x", "data": "a" * room}, topic=topic, source="shop")
    with pytest.raises(TooLarge, match="event 3: 301 bytes is over the topic's limit of 300 bytes"):
        seal({"type": "x", "data": "a" * (room + 1)}, topic=topic, source="shop", index=3)


def test_it_counts_bytes_not_characters():
    topic = spec(max_event_bytes=300)
    _, payload = seal({"type": "x", "data": ""}, topic=topic, source="shop")
    room = 300 - len(payload)

    with pytest.raises(TooLarge):
        seal({"type": "x", "data": "é" * (room // 2 + 1)}, topic=topic, source="shop")


def test_the_stored_bytes_are_the_envelope():
    envelope, payload = seal({"type": "x", "data": {"n": 1}}, topic=spec(), source="shop")
    assert orjson.loads(payload) == envelope


def test_it_refuses_data_nested_deeper_than_it_can_store():
    data: list = []
    for _ in range(300):
        data = [data]
    with pytest.raises(InvalidEvent, match="cannot be stored as JSON") as caught:
        sealed(data=data)
    assert caught.value.code == "unstorable_data"


def test_it_refuses_python_data_that_is_not_json():
    with pytest.raises(InvalidEvent, match="cannot be stored as JSON"):
        sealed(data={1, 2})


# --- structured mode ----------------------------------------------------------------------


def test_it_maps_partitionkey_to_key_and_keeps_data_descriptors():
    attributes = from_structured(
        {
            "specversion": "1.0",
            "id": "1",
            "source": "/x",
            "type": "x",
            "partitionkey": "c-1",
            "datacontenttype": "text/plain",
            "dataschema": "https://example.com/s",
            "data": "hi",
        }
    )
    assert attributes["key"] == "c-1" and attributes["datacontenttype"] == "text/plain"
    assert "specversion" not in attributes and "source" not in attributes


@pytest.mark.parametrize("value", ["AP9y", "AP9yYXc=", ""])
def test_it_accepts_base64_data(value):
    raw = {"specversion": "1.0", "id": "1", "source": "/x", "type": "x", "data_base64": value}
    assert from_structured(raw)["data_base64"] == value


@pytest.mark.parametrize("value", ["not base64!", "AP9", 12])
def test_it_refuses_data_base64_that_is_not_base64(value):
    raw = {"specversion": "1.0", "id": "1", "source": "/x", "type": "x", "data_base64": value}
    with pytest.raises(InvalidEvent, match="'data_base64' must be a base64 string"):
        from_structured(raw)


# --- schemas ------------------------------------------------------------------------------


def test_it_says_where_data_fails_the_schema():
    topic = spec({"type": "object", "properties": {"items": {"type": "array", "items": {"type": "integer"}}}})

    with pytest.raises(InvalidEvent, match=r"event 0: fails the topic's schema: data at items/1: 'b'") as caught:
        sealed(index=0, topic=topic, data={"items": [1, "b"]})
    assert caught.value.code == "schema_mismatch"


def test_missing_data_is_checked_as_null():
    with pytest.raises(InvalidEvent, match="data at \\(root\\)"):
        sealed(topic=spec({"type": "object"}))


def test_binary_data_cannot_satisfy_a_schema():
    with pytest.raises(InvalidEvent, match="binary data cannot satisfy a JSON Schema"):
        seal({"type": "x", "data_base64": "AA=="}, topic=spec({"type": "object"}), source="shop")


@pytest.mark.parametrize(
    "schema", [{"type": "object"}, True, {"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"}]
)
def test_it_accepts_valid_schemas(schema):
    check_schema(schema)


@pytest.mark.parametrize(
    "schema, message",
    [
        (5, "must be a JSON object"),
        ("string", "must be a JSON object"),
        ([1], "must be a JSON object"),
        (None, "must be a JSON object"),
        ({"type": "nonsense"}, "not a valid JSON Schema"),
        ({"pattern": "("}, "not a valid JSON Schema"),
        ({"$ref": "https://example.com/elsewhere.json"}, "cannot resolve"),
    ],
)
def test_it_refuses_invalid_schemas_with_a_reason(schema, message):
    with pytest.raises(ValueError, match=message):
        check_schema(schema)


def test_a_schema_saved_past_the_admin_refuses_events_with_the_reason():
    validate = compile_schema(5)
    with pytest.raises(ValueError, match="the topic's schema is unusable"):
        validate({"a": 1})


def test_an_unresolvable_ref_deep_in_a_schema_refuses_events_with_the_reason():
    topic = spec({"properties": {"a": {"$ref": "https://example.com/elsewhere.json"}}})

    with pytest.raises(InvalidEvent, match="unresolvable"):
        sealed(topic=topic, data={"a": 1})
