from __future__ import annotations

import pytest

from eventflow import connection


def test_it_reports_redis_and_its_durability_without_login(client, db):
    reply = client.get("/api/v1/health")

    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["redis"]["reachable"] is True
    assert body["redis"]["durability"] in {"none", "everysec", "always", "no", "snapshots", "unknown"}


def test_it_answers_503_when_redis_is_unreachable(client, db, settings):
    settings.EVENTFLOW_REDIS_URL = "redis://127.0.0.1:1/0"
    connection.reset()

    reply = client.get("/api/v1/health")

    assert reply.status_code == 503
    assert reply.json()["redis"]["reachable"] is False


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_it_answers_only_get_and_head_with_a_json_405_otherwise(client, db, method):
    reply = getattr(client, method)("/api/v1/health")

    assert reply.status_code == 405 and reply["Allow"] == "GET, HEAD"
    assert reply.json()["error"]["code"] == "method_not_allowed"
    assert client.head("/api/v1/health").status_code in (200, 503)
