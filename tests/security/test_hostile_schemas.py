"""Issue 9, case 8: a hostile topic schema cannot freeze the server or turn into a 500.

``^(a+)+$`` backtracks exponentially in Python's ``re`` (about 2.5× per
character: a 40-byte string takes hours). Topic schemas run their patterns on
RE2, which never backtracks, so the same string is refused in microseconds,
through ``pattern``, ``patternProperties`` and ``additionalProperties``
alike; a pattern RE2 cannot run (backreferences, lookaround) is a field error
in the admin. Schemas nested past ``MAX_SCHEMA_DEPTH`` (10,000 ``items``
deep) are a field error too, never a ``RecursionError``; event data nested past
``MAX_DATA_DEPTH`` gets a 422 JSON answer (``schema_mismatch``). A schema whose
``$ref``s multiply the work (each definition ``allOf`` the next, twice) is
stopped after a number of keyword steps linear in the event's size.
"""

from __future__ import annotations

import html
import subprocess
import sys
import time

import httpx
import orjson
import pytest
from django.core.exceptions import ValidationError

from eventflow.models import Topic
from eventflow.schemas import (
    MAX_DATA_DEPTH,
    MAX_SCHEMA_BYTES,
    MAX_SCHEMA_DEPTH,
    SCHEMA_STEPS,
    SCHEMA_STEPS_PER_VALUE,
    check_schema,
    compile_schema,
)
from tests.helpers import ROOT

EVIL = "^(a+)+$"
FORTY_BYTES = "a" * 39 + "!"
EVIL_SCHEMAS = {
    "pattern": {"type": "object", "properties": {"name": {"type": "string", "pattern": EVIL}}},
    "patternProperties": {"type": "object", "patternProperties": {EVIL: {"type": "integer"}}},
    "additionalProperties": {"type": "object", "patternProperties": {EVIL: {}}, "additionalProperties": False},
}
EVIL_DATA = {"pattern": {"name": FORTY_BYTES}, "patternProperties": {FORTY_BYTES: "x"}}
EVIL_DATA["additionalProperties"] = EVIL_DATA["patternProperties"]
REFUSED = {"pattern": True, "patternProperties": False, "additionalProperties": True}  # the key matches no pattern


def nested(depth: int, key: str = "items") -> dict:
    schema: dict = {}
    for _ in range(depth):
        schema = {key: schema}
    return schema


def nested_list(depth: int) -> list:
    data: list = []
    for _ in range(depth):
        data = [data]
    return data


@pytest.mark.parametrize("keyword", sorted(EVIL_SCHEMAS))
def test_a_backtracking_pattern_checks_a_40_byte_value_in_milliseconds(keyword):
    """Run in a child process with a deadline: on a backtracking engine this never ends."""
    script = (
        "import time, django, orjson; django.setup()\n"
        "from eventflow.schemas import compile_schema\n"
        f"schema = orjson.loads({orjson.dumps(EVIL_SCHEMAS[keyword])!r})\n"
        f"data = orjson.loads({orjson.dumps(EVIL_DATA[keyword])!r})\n"
        "validate = compile_schema(schema)\n"
        "started = time.perf_counter()\n"
        "try:\n    validate(data)\nexcept ValueError as exc:\n    print('refused', exc)\n"
        "print('took', time.perf_counter() - started)\n"
    )
    env = {"DJANGO_SETTINGS_MODULE": "dashboard.settings", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    try:
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"checking 40 bytes against {EVIL!r} through {keyword} took over 20 s")
    assert done.returncode == 0, done.stderr
    assert ("refused" in done.stdout) is REFUSED[keyword]
    assert float(done.stdout.split("took")[-1]) < 0.05


def test_the_server_keeps_answering_while_a_producer_sends_the_hostile_value(asgi_server, orders, shop_token):
    Topic.objects.filter(pk=orders.pk).update(data_schema=EVIL_SCHEMAS["pattern"])
    headers = {"Authorization": f"Bearer {shop_token}"}
    body = {"type": "t", "data": EVIL_DATA["pattern"]}

    started = time.monotonic()
    reply = httpx.post(f"{asgi_server}/api/v1/topics/orders/events", json=body, headers=headers, timeout=10)

    assert time.monotonic() - started < 2
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "schema_mismatch"
    assert httpx.get(f"{asgi_server}/api/v1/health", timeout=2).status_code in (200, 503)


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=a)b", r"(?!a)b", r"(?<=a)b", r"(?<!a)b"])
def test_a_pattern_re2_cannot_run_is_a_field_error_saying_why(orders, pattern):
    for schema in ({"type": "string", "pattern": pattern}, {"patternProperties": {pattern: {}}}):
        orders.data_schema = schema
        with pytest.raises(ValidationError) as refused:
            orders.full_clean()
        message = " ".join(refused.value.message_dict["data_schema"])
        assert pattern in message and "RE2" in message


def test_patterns_re2_can_run_still_match_as_before(orders):
    validate = compile_schema({"type": "string", "pattern": r"^\d{3}-[a-z]+$"})
    validate("123-abc")
    with pytest.raises(ValueError, match="does not match"):
        validate("12-abc")


@pytest.mark.parametrize("depth", [MAX_SCHEMA_DEPTH + 1, 500, 10_000])
def test_a_schema_nested_too_deeply_is_a_field_error_not_a_recursion_error(orders, depth):
    orders.data_schema = nested(depth)
    with pytest.raises(ValidationError) as refused:
        orders.full_clean()

    assert f"nested more than {MAX_SCHEMA_DEPTH} levels" in " ".join(refused.value.message_dict["data_schema"])


def test_a_schema_at_the_nesting_limit_is_accepted(orders):
    orders.data_schema = nested(MAX_SCHEMA_DEPTH - 1)
    orders.full_clean()


def test_a_schema_over_the_size_limit_is_a_field_error(orders):
    orders.data_schema = {"enum": ["x" * 1000] * (MAX_SCHEMA_BYTES // 1000 + 1)}
    with pytest.raises(ValidationError, match="bytes"):
        orders.full_clean()


def test_references_nested_too_deeply_are_a_field_error():
    chain = {f"a{n}": {"$ref": f"#/$defs/a{n + 1}"} for n in range(2000)}
    with pytest.raises(ValueError, match="nest"):
        check_schema({"$defs": chain, "$ref": "#/$defs/a0"})


def test_the_admin_answers_a_10000_level_schema_with_a_field_error(admin_client, orders):
    text = '{"items": ' * 10_000 + "{}" + "}" * 10_000
    form = {"name": "orders", "active": "on", "max_event_bytes": "262144", "retention_max_events": "100000"}
    reply = admin_client.post(f"/admin/eventflow/topic/{orders.pk}/change/", {**form, "data_schema": text})

    assert reply.status_code == 200
    assert "nested more than" in reply.content.decode()


def test_the_admin_shows_and_refuses_a_deep_schema_saved_past_it(admin_client, orders):
    Topic.objects.filter(pk=orders.pk).update(data_schema=nested(500))
    url = f"/admin/eventflow/topic/{orders.pk}/change/"
    shown = admin_client.get(url).content.decode()
    form = {"name": "orders", "active": "on", "max_event_bytes": "262144", "retention_max_events": "100000"}

    text = html.unescape(shown.split('name="data_schema"')[1].split(">", 1)[1].split("</textarea>")[0])

    reply = admin_client.post(url, {**form, "data_schema": text})

    assert reply.status_code == 200
    assert "nested more than" in reply.content.decode()


def test_the_admin_answers_a_lookaround_pattern_with_a_field_error(admin_client, orders):
    form = {"name": "orders", "active": "on", "max_event_bytes": "262144", "retention_max_events": "100000"}
    schema = '{"type": "object", "properties": {"sku": {"type": "string", "pattern": "^(?!x)\\\\w+$"}}}'
    reply = admin_client.post(f"/admin/eventflow/topic/{orders.pk}/change/", {**form, "data_schema": schema})

    assert reply.status_code == 200
    assert "RE2" in reply.content.decode()
    orders.refresh_from_db()
    assert orders.data_schema is None


@pytest.fixture
def post(client, shop_token):
    def send(data) -> httpx.Response:
        headers = {"Authorization": f"Bearer {shop_token}"}
        body = b'{"type": "t", "data": ' + orjson.dumps(data) + b"}"
        return client.post("/api/v1/topics/orders/events", body, content_type="application/json", headers=headers)

    return send


def test_a_deep_schema_saved_past_the_admin_refuses_events_with_a_4xx(post, orders):
    Topic.objects.filter(pk=orders.pk).update(data_schema=nested(500))

    reply = post([])

    assert reply.status_code == 422
    assert "nested more than" in reply.json()["error"]["message"]


@pytest.mark.parametrize("depth", [MAX_DATA_DEPTH + 1, 240])
def test_data_nested_past_the_limit_gets_a_422_on_a_topic_with_a_schema(post, orders, depth):
    Topic.objects.filter(pk=orders.pk).update(data_schema={"$defs": {"x": {"items": {"$ref": "#/$defs/x"}}}})

    reply = post(nested_list(depth))

    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "schema_mismatch"
    assert f"nested more than {MAX_DATA_DEPTH} levels" in reply.json()["error"]["message"]


def test_data_at_the_nesting_limit_is_checked_and_accepted(post, orders):
    Topic.objects.filter(pk=orders.pk).update(data_schema={"$defs": {"x": {"items": {"$ref": "#/$defs/x"}}}})

    assert post(nested_list(MAX_DATA_DEPTH - 1)).status_code == 202


def ref_bomb(levels: int) -> dict:
    """``levels`` definitions, each ``allOf`` the next twice: 2**levels checks of the last one."""
    defs = {f"a{n}": {"allOf": [{"$ref": f"#/$defs/a{n + 1}"}] * 2} for n in range(levels)}
    return {**defs, f"a{levels}": {"type": "object"}}


def test_a_schema_whose_refs_multiply_the_work_is_refused_in_the_admin_at_once():
    started = time.perf_counter()
    with pytest.raises(ValueError, match="multiply"):
        check_schema({"$defs": ref_bomb(30), "$ref": "#/$defs/a0"})  # 2**30 checks: hours, unchecked

    assert time.perf_counter() - started < 2


def test_a_multiplying_schema_the_admin_cannot_see_stops_after_its_steps(post, orders):
    hidden = {"type": "object", "properties": {"x": {"$ref": "#/$defs/a0"}}, "$defs": ref_bomb(18)}  # unchecked: ~20 s
    check_schema(hidden)  # an empty event never reaches "x"
    Topic.objects.filter(pk=orders.pk).update(data_schema=hidden)

    started = time.perf_counter()
    reply = post({"x": {}})

    assert time.perf_counter() - started < 2
    assert reply.status_code == 422
    steps = SCHEMA_STEPS + 2 * SCHEMA_STEPS_PER_VALUE  # {"x": {}} holds two values
    assert f"takes over {steps:,} steps" in reply.json()["error"]["message"]


def test_a_realistic_schema_checks_a_large_event_within_its_steps():
    fields = {
        "sku": {"type": "string", "pattern": "^[A-Z0-9-]+$"},
        "qty": {"type": "integer", "minimum": 1},
        "price": {"type": "number"},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}},
    }
    item = {"type": "object", "required": ["sku", "qty"], "properties": fields}
    schema = {
        "type": "object",
        "required": ["id", "lines"],
        "properties": {"id": {"type": "string"}, "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}}},
        "anyOf": [{"required": ["id"]}, {"required": ["ref"]}],
        "$defs": {"line": {"oneOf": [item, {"type": "null"}]}},
    }
    validate = compile_schema(schema)
    validate({"id": "o-1", "lines": [{"sku": "AB-1", "qty": 2, "price": 1.5, "tags": ["a", "b"]}] * 2000})
