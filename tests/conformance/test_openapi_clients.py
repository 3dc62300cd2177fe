"""The OpenAPI document as outside tools read it: openapi-spec-validator, Ajv (on Node), and the server agrees.

schemathesis runs against the live server in ``tests/security/test_openapi.py``.
"""

from __future__ import annotations

import orjson
import pytest
from openapi_spec_validator import validate

from tests.conformance.conftest import run_node
from tests.eventflow.test_publish_api import post  # noqa: F401 - a fixture

# (schema, value, what the server answers) — the description and the server must agree on each.
SAMPLES = [
    ("Event", {"type": "order.created", "data": {"n": 1}}, 202),
    ("Event", {"type": "order.created", "source": "me"}, 422),  # the broker sets source
    ("Event", {"type": "order.created", "time": "yesterday"}, 422),
    ("Event", {"type": "order.created", "traceparent": "00-abc-01"}, 202),
    ("Event", {"type": ""}, 422),
    ("Batch", {"events": []}, 422),
    ("CloudEvent", {"specversion": "1.0", "id": "1", "source": "/x", "type": "t", "data_base64": "AAE="}, 202),
    ("CloudEvent", {"specversion": "1.0", "id": "1", "source": "/x", "type": "t", "topic": "other"}, 422),
    ("CloudEvent", {"specversion": "1.0", "id": "1", "source": "/x", "type": "t", "data": 1, "data_base64": ""}, 422),
    ("CloudEvent", {"specversion": "1.0", "id": "1", "source": "/x", "type": "t", "data_base64": "AAE"}, 422),
    ("CloudEvent", {"specversion": "1.0", "id": "1", "source": "/x", "type": "t", "partitionkey": 7}, 422),
]
MEDIA = {"Event": "application/json", "Batch": "application/json", "CloudEvent": "application/cloudevents+json"}


@pytest.fixture
def document(client, db) -> dict:
    return client.get("/api/v1/openapi.json").json()


def test_openapi_spec_validator_finds_the_document_valid(document):
    validate(document)  # raises OpenAPIValidationError


def test_ajv_compiles_every_schema_and_pattern_and_agrees_with_the_server(document, post):
    answers = [post(value, content_type=MEDIA[schema]).status_code for schema, value, _ in SAMPLES]
    assert answers == [status for _, _, status in SAMPLES]

    result = run_node(
        "openapi.mjs", "check", {"document": document, "samples": [{"schema": s, "value": v} for s, v, _ in SAMPLES]}
    )

    assert set(result["compiled"]) == set(document["components"]["schemas"])
    assert result["patterns"] and all(result["patterns"].values())
    assert result["topic"] == {"orders": True, "eu.orders-v2": True, "Orders": False, "orders\n": False, "": False}
    assert result["samples"] == [status == 202 for _, _, status in SAMPLES], orjson.dumps(SAMPLES).decode()
