"""The thin ASGI publish path answers exactly what the Django view answers.

Every test of the publishing contract (``test_publish_api``) runs again here,
with its POSTs sent through ``eventflow.asgi_publish`` instead of Django's
stack; plus what only the cache can get wrong.
"""

from __future__ import annotations

import orjson
import pytest
from asgiref.sync import async_to_sync

from eventflow import asgi_publish
from tests.eventflow.test_publish_api import *  # noqa: F403 - the same contract, through the thin path
from tests.eventflow.test_publish_api import URL, assert_error, stored

API_PREFIX = "/api/v1/"  # where URL puts the API, as the project's urls.py does


class Answer:
    """What a test reads from a response: status, body, headers."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], content: bytes) -> None:
        self.status_code = status
        self.content = content
        self.headers = {name.decode().lower(): value.decode() for name, value in headers}

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]

    def json(self):
        return orjson.loads(self.content)


class ThinClient:
    """Sends publish POSTs through the thin ASGI path; anything else to Django's test client."""

    def __init__(self, django_client) -> None:
        self.django_client = django_client
        self.app = asgi_publish.PublishRouter(self._not_for_us, prefix=API_PREFIX)

    async def _not_for_us(self, scope, receive, send):
        raise AssertionError(f"the thin path passed on {scope['method']} {scope['path']}")

    def get(self, *args, **kwargs):
        return self.django_client.get(*args, **kwargs)

    def post(self, path: str, data: bytes = b"", content_type: str = "application/json", headers=None, **extra):
        from django.conf import settings

        if settings.EVENTFLOW_SYNC if hasattr(settings, "EVENTFLOW_SYNC") else False:
            return self.django_client.post(path, data, content_type=content_type, headers=headers, **extra)
        header_list = [(b"content-type", extra.get("CONTENT_TYPE", content_type).encode("latin1"))]
        header_list.append((b"content-length", str(len(data)).encode()))
        for name, value in (headers or {}).items():
            header_list.append((name.lower().encode("latin1"), value.encode("latin1")))
        return async_to_sync(self._send)(path, data, header_list)

    async def _send(self, path: str, body: bytes, headers: list) -> Answer:
        scope = {"type": "http", "method": "POST", "path": path, "headers": headers, "query_string": b""}
        sent = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            sent.append(message)

        await self.app(scope, receive, send)
        start, chunk = sent[0], sent[1]
        return Answer(start["status"], start["headers"], chunk["body"])


@pytest.fixture
def client(client):
    return ThinClient(client)


def test_a_token_revoked_after_it_was_cached_is_refused_at_once(post, shop, redis_client):
    assert post({"type": "x"}).status_code == 202  # now cached

    shop.revoke()

    assert_error(post({"type": "x"}), 401, "revoked_token")
    assert len(stored(redis_client)) == 1


def test_a_topic_taken_away_after_it_was_cached_is_refused_at_once(post, shop, orders):
    assert post({"type": "x"}).status_code == 202

    shop.topics.remove(orders)

    assert_error(post({"type": "x"}), 403, "topic_not_allowed")


def test_a_revocation_in_another_process_is_seen_through_redis(post, shop, redis_client, monkeypatch):
    assert post({"type": "x"}).status_code == 202
    # Another process revoked it: this process's cache was not cleared, only Redis was told.
    monkeypatch.setattr(asgi_publish, "clear_cache", lambda *a, **k: None)
    shop.revoke()

    assert_error(post({"type": "x"}), 401, "revoked_token")


def test_it_publishes_again_at_once_after_the_database_connection_broke(transactional_db, post, shop):
    from django.db import connection

    assert post({"type": "x"}).status_code == 202
    asgi_publish.clear_cache()  # the next token check goes to the database
    connection.ensure_connection()
    connection.connection.close()  # what a database restart leaves behind: a dead connection

    response = post({"type": "x"})

    assert response.status_code == 202, response.content
    assert post({"type": "x"}).status_code == 202


def test_it_hands_other_requests_to_the_wrapped_app():
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope["path"])

    router = asgi_publish.PublishRouter(inner, prefix=API_PREFIX)
    async_to_sync(router)({"type": "http", "method": "GET", "path": URL.format("orders"), "headers": []}, None, None)
    async_to_sync(router)({"type": "http", "method": "POST", "path": "/api/v1/health", "headers": []}, None, None)

    assert seen == [URL.format("orders"), "/api/v1/health"]


def test_it_takes_only_the_publish_route_under_the_prefix_it_is_given():
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope["path"])

    router = asgi_publish.PublishRouter(inner, prefix="/broker/")
    async_to_sync(router)({"type": "http", "method": "POST", "path": URL.format("orders"), "headers": []}, None, None)

    assert seen == [URL.format("orders")]
    assert router.route.fullmatch("/broker/topics/orders/events")
