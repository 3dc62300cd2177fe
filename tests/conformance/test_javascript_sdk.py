"""The CloudEvents JavaScript SDK (npm ``cloudevents``, on the machine's Node) publishes and reads back."""

from __future__ import annotations

import base64

import pytest

from tests.conformance.conftest import run_node

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def test_the_js_sdk_sends_every_mode_and_reads_every_webhook_body_back(flow):
    answers = run_node("client.mjs", "send", {"url": flow.publish_url, "token": flow.token})

    assert {mode: a["status"] for mode, a in answers.items()} == dict.fromkeys(
        ["structured", "binary", "blob", "batch"], 202
    ), answers
    assert answers["batch"]["body"]["ids"] == ["js batch 0", "js batch 1"]
    assert answers["binary"]["body"]["ids"] == ["js binary"], "a percent-encoded ce-id is decoded"
    stored = {e["id"]: e for e in flow.stored()}
    assert stored["js binary"]["subject"] == "Ünï subject"

    requests = flow.deliver()
    read = run_node(
        "client.mjs", "read", [{"headers": r.headers, "body": base64.b64encode(r.body).decode()} for r in requests]
    )

    by_id = {e["id"]: e for e in read}
    assert set(by_id) == {"js structured", "js binary", "js blob", "js batch 0", "js batch 1"}
    assert by_id["js binary"]["data"] == {"order": "js binary"}
    assert by_id["js blob"]["data"] == [0, 1, 98, 255], "data_base64 reads back as the bytes sent"
    assert by_id["js structured"]["partitionkey"] == "c-1"
    assert {e["subject"] for e in read} == {"Ünï subject"} and {e["source"] for e in read} == {"shop"}
