"""The API's OpenAPI 3.1 description, and schemathesis run with it against the real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import jsonschema
import pytest
from django.contrib.auth.models import Permission

# Every answer a request that breaks the description may get; 413 is how limits (maxItems) refuse.
REFUSALS = [400, 401, 403, 404, 405, 409, 413, 415, 422, 429]
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
]


def test_the_description_is_public_and_names_every_operation_and_error(client, db):
    reply = client.get("/api/v1/openapi.json")

    assert reply.status_code == 200 and reply["Content-Type"] == "application/json"
    document = reply.json()
    assert document["openapi"].startswith("3.1") and document["servers"] == [{"url": "/api/v1"}]
    publish = document["paths"]["/topics/{topic}/events"]["post"]
    assert set(publish["responses"]) >= {"202", "400", "401", "403", "404", "413", "415", "422", "429", "503"}
    assert "Retry-After" in publish["responses"]["503"]["headers"]
    assert {"/failed-events/{id}/replay", "/failed-events/replay", "/health"} <= set(document["paths"])
    replays = {"/consumers/{name}/replays", "/replays/{id}", "/replays/{id}/cancel", "/failed-events/{id}/edits"}
    assert replays <= set(document["paths"])
    edit = document["paths"]["/failed-events/{id}/edits"]["post"]
    assert set(edit["responses"]) >= {"200", "202", "400", "403", "404", "409", "413", "422", "503"}


def conforms(document: dict, schema: str, body: dict) -> None:
    """Raise unless ``body`` is valid against the description's component ``schema``."""
    validator = jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{schema}", **document})
    validator.validate(body)


def test_the_replay_and_edit_answers_are_what_the_description_says(client, db, text_amount, django_user_model):
    operator = django_user_model.objects.create_user("editor", password="editor-pass-1", is_staff=True)
    operator.user_permissions.add(
        *Permission.objects.filter(codename__in=["replay_failedevent", "edit_failedevent_data"])
    )
    client.force_login(operator)
    document = client.get("/api/v1/openapi.json").json()
    post = lambda url, body=None: client.post(url, body or {}, content_type="application/json")  # noqa: E731
    preview = post("/api/v1/consumers/strict/replays", {"topic": "orders", "from": "0", "dry_run": True})
    started = post("/api/v1/consumers/strict/replays", {"topic": "orders", "from": "0", "reason": "r", "rate": 1})
    job = started.json()["replay"]
    read, cancelled = client.get(f"/api/v1/replays/{job}"), post(f"/api/v1/replays/{job}/cancel")
    edit = {"data": {"amount": 12.5, "customer": {"tier": "gold"}}, "reason": "amount as text"}
    diff = post(f"/api/v1/failed-events/{text_amount.pk}/edits", {**edit, "dry_run": True})
    sent = post(f"/api/v1/failed-events/{text_amount.pk}/edits", edit)
    refused = post(f"/api/v1/failed-events/{text_amount.pk}/edits", edit)

    answers = [(preview, 200, "ReplayPlan"), (started, 202, "ReplayPlan"), (read, 200, "ReplayProgress")]
    answers += [(cancelled, 200, "ReplayProgress"), (diff, 200, "Edit"), (sent, 202, "Edit"), (refused, 409, "Error")]
    for reply, status, schema in answers:
        assert reply.status_code == status, reply.content
        conforms(document, schema, reply.json())
    conforms(document, "ReplayProgress", client.get(f"/api/v1/replays/{sent.json()['replay']}").json())


def staff_session(url: str) -> tuple[str, str]:
    """Log the operator in over HTTP; return the session and CSRF cookies."""
    with httpx.Client(base_url=url) as client:
        client.get("/login/")
        csrf = client.cookies["csrftoken"]
        client.post(
            "/login/", data={"username": "operator", "password": "operator-pass-1", "csrfmiddlewaretoken": csrf}
        )
        return client.cookies["sessionid"], client.cookies["csrftoken"]


@pytest.mark.processes
def test_schemathesis_finds_no_server_error_and_no_answer_off_the_description(
    asgi_server, tokens, staff_user, tmp_path: Path
):
    staff_user.user_permissions.add(Permission.objects.get(codename="edit_failedevent_data"))
    session, csrf = staff_session(asgi_server)
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        '[parameters]\n"path.topic" = "orders"\n\n'  # the topic the shop's token may publish to
        f"[checks.negative_data_rejection]\nexpected-statuses = {REFUSALS}\n"
    )
    examples = "500" if os.environ.get("EVENTFLOW_LONG") == "1" else "50"
    command = [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config), "run"]
    command += [f"{asgi_server}/api/v1/openapi.json", "--checks", ",".join(CHECKS), "--max-examples", examples]
    command += [
        "--generation-with-security-parameters",
        "false",
        "--seed",
        "4",
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {tokens['shop']}",
    ]
    command += ["--header", f"Cookie: sessionid={session}; csrftoken={csrf}", "--header", f"X-CSRFToken: {csrf}"]
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"}
    )

    report = "\n".join(line for line in run.stdout.splitlines() if len(line) < 300)
    print(report[-2500:])
    assert run.returncode == 0, report[-8000:] + run.stderr[-2000:]
