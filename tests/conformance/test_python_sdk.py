"""The CloudEvents Python SDK, both its APIs, publishes every mode and reads every webhook body.

``cloudevents`` 2.x ships the 1.x API as ``cloudevents.v1.http`` (``cloudevents.http``
on 1.x) beside the new ``cloudevents.core``; each is used as its README shows.
"""

from __future__ import annotations

import orjson
import pytest

try:
    from cloudevents.v1 import conversion, http as sdk1
except ImportError:  # a 1.x release: the same API at its old home
    from cloudevents import conversion, http as sdk1
from cloudevents.core.bindings import http as sdk2
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as CloudEvent2

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

SUBJECT = "Ünï subject"
BLOB = b"\x00\x01binary\xff"


def attributes(event_id: str, **extra) -> dict:
    return {"id": event_id, "source": "/py-sdk", "type": "order.created", "subject": SUBJECT, **extra}


def test_the_1x_api_sends_every_mode_and_reads_every_webhook_body_back(flow):
    events = {
        "structured": sdk1.CloudEvent(attributes("py1 structured", partitionkey="c-1"), {"order": 1}),
        "binary": sdk1.CloudEvent(attributes("py1 binary"), {"order": 2}),  # no datacontenttype: no Content-Type
        "blob": sdk1.CloudEvent(attributes("py1 blob", datacontenttype="application/octet-stream"), BLOB),
    }
    messages = [
        conversion.to_structured(events["structured"]),
        conversion.to_binary(events["binary"]),
        conversion.to_binary(events["blob"]),
        batch(conversion.to_json(sdk1.CloudEvent(attributes(f"py1 batch {n}"), {"n": n})) for n in range(2)),
    ]

    assert "content-type" not in {name.lower() for name in messages[1][0]}, "the SDK sends no Content-Type"
    answers = [flow.post(headers, body) for headers, body in messages]

    assert [a.status_code for a in answers] == [202] * 4, [a.text for a in answers]
    assert [a.json()["ids"] for a in answers] == [["py1 structured"], ["py1 binary"], ["py1 blob"],
                                                  ["py1 batch 0", "py1 batch 1"]]  # fmt: skip
    read = {e["id"]: e for e in (sdk1_read(r) for r in flow.deliver())}
    assert read["py1 binary"]["data"] == {"order": 2}, "binary mode without Content-Type is JSON"
    assert read["py1 blob"]["data"] == BLOB, "data_base64 reads back as the bytes sent"
    assert read["py1 structured"]["partitionkey"] == "c-1"
    assert {e["subject"] for e in read.values()} == {SUBJECT}
    assert {e["source"] for e in read.values()} == {"shop"}, "the broker names the producer as the source"


def test_the_2x_api_sends_every_mode_and_reads_every_webhook_body_back(flow):
    fmt = JSONFormat()
    json_event = CloudEvent2(attributes("py2 binary"), {"order": 2})
    blob_event = CloudEvent2(attributes("py2 blob", datacontenttype="application/octet-stream"), BLOB)
    messages = [
        sdk2.to_structured(CloudEvent2(attributes("py2 structured"), {"order": 1}), fmt),
        sdk2.to_binary(json_event, fmt),
        sdk2.to_binary(blob_event, fmt),
        batch(fmt.write(CloudEvent2(attributes(f"py2 batch {n}"), {"n": n})) for n in range(2)),
    ]

    assert "content-type" not in {name.lower() for name in messages[1].headers}, "the SDK sends no Content-Type"
    answers = [flow.post(*message) if isinstance(message, tuple) else flow.post(message.headers, message.body)
               for message in messages]  # fmt: skip

    assert [a.status_code for a in answers] == [202] * 4, [a.text for a in answers]
    received = flow.deliver()
    read = {}
    for request in received:
        event = sdk2.from_http(sdk2.HTTPMessage(request.headers, request.body), fmt)
        read[event.get_id()] = event
    assert set(read) == {"py2 structured", "py2 binary", "py2 blob", "py2 batch 0", "py2 batch 1"}
    assert read["py2 binary"].get_data() == {"order": 2}
    assert read["py2 blob"].get_data() == BLOB
    assert {e.get_subject() for e in read.values()} == {SUBJECT}


def batch(documents) -> tuple[dict[str, str], bytes]:
    """A CloudEvents JSON batch: the SDKs write single events; the batch format is their array."""
    return {"content-type": "application/cloudevents-batch+json"}, b"[" + b",".join(
        d if isinstance(d, bytes) else d.encode() for d in documents
    ) + b"]"


def sdk1_read(request) -> dict:
    event = sdk1.from_http(request.headers, request.body)
    return {**event.get_attributes(), "data": event.get_data()}


def test_what_the_sdk_reads_is_what_was_stored(flow):
    flow.post(*conversion.to_binary(sdk1.CloudEvent(attributes("order 42"), {"order": 42})))

    [request] = flow.deliver()
    [stored] = flow.stored()
    assert stored["id"] == "order 42" and stored["subject"] == SUBJECT, "headers were percent-decoded"
    assert orjson.loads(request.body) == stored
