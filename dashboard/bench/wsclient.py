"""A minimal WebSocket client (RFC 6455) for watching many dashboard sockets at once.

Only what the benchmark needs: the opening handshake with a cookie and an
Origin, reading text messages (answering pings), and noting when each message
arrived. No extensions are offered, so frames arrive uncompressed.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from dataclasses import dataclass, field

_TEXT, _BINARY, _CLOSE, _PING = 0x1, 0x2, 0x8, 0x9


class HandshakeRefused(Exception):
    """The server answered the upgrade with something other than 101."""


@dataclass(slots=True)
class Socket:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() per message
    sizes: list[int] = field(default_factory=list)


async def connect(port: int, path: str, headers: dict[str, str]) -> Socket:
    """Open ``ws://127.0.0.1:port/path`` and complete the handshake."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        writer.close()
        raise HandshakeRefused(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    return Socket(reader, writer)


async def read_message(socket: Socket) -> bytes | None:
    """The next text or binary message (None once the server closes)."""
    parts: list[bytes] = []
    while True:
        first, second = await socket.reader.readexactly(2)
        opcode, length = first & 0x0F, second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await socket.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await socket.reader.readexactly(8))
        mask = await socket.reader.readexactly(4) if second & 0x80 else b""
        payload = await socket.reader.readexactly(length)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if opcode == _CLOSE:
            return None
        if opcode == _PING:
            _send(socket, 0xA, payload)
            continue
        if opcode in (0, _TEXT, _BINARY):
            parts.append(payload)
            if first & 0x80:
                return b"".join(parts)


async def listen(socket: Socket, until: float) -> None:
    """Note every message's arrival until ``until`` (monotonic) or the server closes."""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return
        try:
            message = await asyncio.wait_for(read_message(socket), left)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return
        if message is None:
            return
        socket.arrivals.append(time.monotonic())
        socket.sizes.append(len(message))


def close(socket: Socket) -> None:
    try:
        _send(socket, _CLOSE, struct.pack("!H", 1000))
    except (ConnectionError, RuntimeError):
        pass
    socket.writer.close()


def _send(socket: Socket, opcode: int, payload: bytes) -> None:
    """A client frame must be masked (RFC 6455, 5.3)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    socket.writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)
