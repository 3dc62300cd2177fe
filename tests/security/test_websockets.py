"""Issue 4, item 9: the dashboard's sockets refuse strangers before accepting, and cap messages.

Every socket route (``dashboard/routing.py``) is tried with a foreign, a
missing and a ``null`` Origin, and with anonymous and non-staff sessions:
each is refused during the handshake. A staff socket that sends a message over
the size limit (or a binary one) is closed: with 1009 where the server lets an
application send it (uvicorn, the server ``serve`` runs: tested through it with the
``websockets`` client), with 4009 under daphne, which refuses 1009 (issue 9, case 8).
"""

from __future__ import annotations

import base64
import os
import socket
import struct

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings

from dashboard.asgi import application
from dashboard.consumers import CLOSE_TOO_BIG_PRIVATE, MAX_MESSAGE_BYTES
from dashboard.live_pages import PAGES

# Every socket route's pattern, with a path it serves (test_deployment checks that none is missing).
SAMPLE_NAMES = {"topic": "orders", "consumer": "billing", "event": "orders/1-0"}  # pages named by their path
SOCKET_PATHS = {page.socket_route: [page.socket_path(SAMPLE_NAMES.get(page.page, ""))] for page in PAGES.values()}
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
            application,
            PAGES["topic"].socket_path("orders"),
            headers=[(b"origin", GOOD_ORIGIN), (b"cookie", staff_cookie)],
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


@pytest.mark.parametrize(
    "path",
    [
        PAGES["consumers"].socket_path(query="sort=nonsense"),
        PAGES["topics"].socket_path(query="page=%C2%B2"),
        PAGES["overview"].socket_path(query="focus=planet:mars"),
    ],
)
def test_a_list_socket_whose_query_the_page_would_refuse_is_refused(staff_cookie, path):
    assert handshake(path, GOOD_ORIGIN, staff_cookie) is False
    assert handshake(path.partition("?")[0] + "?sort=-rate", GOOD_ORIGIN, staff_cookie) is True


# -- through daphne itself ---------------------------------------------------------------


def close_code_after(base_url: str, cookie: bytes, opcode: int, payload: bytes) -> int:
    """Open the topic page's socket, send one frame, and return the code of the close frame that follows."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        key = base64.b64encode(os.urandom(16)).decode()
        conn.sendall(
            (
                f"GET {PAGES['topic'].socket_path('orders')} HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: http://localhost\r\nCookie: {cookie.decode()}\r\n\r\n"
            ).encode()
        )
        reader = conn.makefile("rb")
        assert reader.readline().split()[1] == b"101"
        while reader.readline() not in (b"\r\n", b""):
            pass
        _read_frame(reader)  # the page's snapshot
        conn.sendall(_masked_frame(opcode, payload))
        while True:
            code, body = _read_frame(reader)
            if code == 0x8:
                return struct.unpack("!H", body[:2])[0]


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    size = len(payload)
    length = bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + struct.pack("!H", size)
    return bytes([0x80 | opcode]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _read_frame(reader) -> tuple[int, bytes]:
    first, second = reader.read(2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", reader.read(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", reader.read(8))[0]
    return first & 0x0F, reader.read(size)


@pytest.mark.parametrize(("opcode", "payload"), [(0x1, b"x" * (MAX_MESSAGE_BYTES + 1)), (0x2, b"\x00" * 10)])
def test_under_daphne_an_oversize_or_binary_message_closes_with_4009_not_a_crash(
    asgi_server, staff_cookie, opcode, payload
):
    """Daphne refuses 1009 from an application; before, the consumer raised and the socket got 1011."""
    assert close_code_after(asgi_server, staff_cookie, opcode, payload) == CLOSE_TOO_BIG_PRIVATE


# -- through uvicorn, the server ``manage.py serve`` runs -----------------------------------


@pytest.mark.parametrize("message", ["x" * (MAX_MESSAGE_BYTES + 1), b"\x00" * 10])
def test_under_the_product_server_an_oversize_or_binary_message_closes_with_1009(product_server, staff_cookie, message):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    url = product_server.replace("http://", "ws://") + PAGES["topic"].socket_path("orders")
    headers = {"Origin": "http://localhost", "Cookie": staff_cookie.decode()}
    with connect(url, additional_headers=headers, open_timeout=10) as socket_:
        socket_.recv(timeout=10)  # the page's snapshot
        socket_.send(message)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                socket_.recv(timeout=10)

    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


@pytest.mark.parametrize("stream_id", ["١-٠", "99999999999999999999-0", "1-99999999999999999999"])
def test_an_event_socket_for_a_stream_id_redis_cannot_hold_gets_a_snapshot_not_a_crash(staff_cookie, stream_id):
    """The route's ``\\d`` matches any Unicode digit; Redis refuses them and ids past 64 bits."""

    async def attempt() -> str:
        headers = [(b"origin", GOOD_ORIGIN), (b"cookie", staff_cookie)]
        socket = WebsocketCommunicator(application, PAGES["event"].socket_path(f"orders/{stream_id}"), headers=headers)
        connected, _ = await socket.connect(timeout=5)
        assert connected
        snapshot = await socket.receive_from(timeout=5)
        await socket.disconnect()
        return snapshot

    assert async_to_sync(attempt)() == ""  # nothing to show, as for an event trimmed from the stream
