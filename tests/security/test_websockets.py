"""Issue 4, item 9: the dashboard's sockets refuse strangers before accepting, and cap messages.

Every socket route (``dashboard/routing.py``) is tried with a foreign, a
missing and a ``null`` Origin, and with anonymous and non-staff sessions:
each is refused during the handshake. A staff socket that sends a message over
the size limit (or a binary one) is closed.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings

from dashboard.asgi import application
from dashboard.consumers import MAX_MESSAGE_BYTES

# Every socket route's pattern, with a path it serves (test_deployment checks that none is missing).
SOCKET_PATHS = {
    r"^ws/live/(?P<page>overview|failed|topics|consumers)/$": [
        "/ws/live/overview/",
        "/ws/live/failed/",
        "/ws/live/topics/",
        "/ws/live/consumers/",
    ],
    r"^ws/live/(?P<page>topic|consumer)/(?P<name>[a-z0-9][a-z0-9._-]{0,99})/$": [
        "/ws/live/topic/orders/",
        "/ws/live/consumer/billing/",
    ],
    r"^ws/live/(?P<page>event)/(?P<name>[a-z0-9][a-z0-9._-]{0,99})/(?P<stream_id>\d{1,20}-\d{1,20})/$": [
        "/ws/live/event/orders/1-0/",
    ],
}
PATHS = [path for paths in SOCKET_PATHS.values() for path in paths]
GOOD_ORIGIN = b"http://localhost"

pytestmark = pytest.mark.django_db(transaction=True)


def cookie_for(client, user) -> bytes:
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def handshake(path: str, origin: bytes | None, cookie: bytes | None) -> bool:
    headers = ([(b"origin", origin)] if origin is not None else []) + ([(b"cookie", cookie)] if cookie else [])

    async def attempt() -> bool:
        socket = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await socket.connect(timeout=5)
        await socket.disconnect()
        return connected

    return async_to_sync(attempt)()


@pytest.fixture
def staff_cookie(client, staff_user, orders, billing) -> bytes:
    return cookie_for(client, staff_user)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("origin", [b"https://evil.example", b"null", None, b"http://localhost.evil.example"])
def test_a_staff_session_from_a_foreign_missing_or_null_origin_is_refused(staff_cookie, path, origin):
    assert handshake(path, origin, staff_cookie) is False


@pytest.mark.parametrize("path", PATHS)
def test_anonymous_and_non_staff_sessions_are_refused(client, django_user_model, orders, billing, path):
    guest = django_user_model.objects.create_user("guest", password="guest-pass-1")

    assert handshake(path, GOOD_ORIGIN, None) is False
    assert handshake(path, GOOD_ORIGIN, cookie_for(client, guest)) is False


@pytest.mark.parametrize("path", PATHS)
def test_a_staff_session_from_the_site_itself_is_accepted(staff_cookie, path):
    assert handshake(path, GOOD_ORIGIN, staff_cookie) is True


@pytest.mark.parametrize("message", [{"text": "x" * (MAX_MESSAGE_BYTES + 1)}, {"bytes": b"\x00" * 10}])
def test_an_oversize_or_binary_message_closes_the_socket(staff_cookie, message):
    async def attempt() -> dict:
        socket = WebsocketCommunicator(
            application, "/ws/live/topic/orders/", headers=[(b"origin", GOOD_ORIGIN), (b"cookie", staff_cookie)]
        )
        connected, _ = await socket.connect(timeout=5)
        assert connected
        await socket.receive_from(timeout=5)  # the snapshot
        await socket.send_input({"type": "websocket.receive", **message})
        while True:
            output = await socket.receive_output(timeout=5)
            if output["type"] == "websocket.close":
                return output

    assert async_to_sync(attempt)()["code"] == 1009
