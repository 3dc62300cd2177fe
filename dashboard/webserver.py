"""The ASGI server command lines: one place that says how the web tier is run.

``serve``, the documented production command, the benchmark and the browser
tests all build their server command here, so they run the same thing.

uvicorn (httptools + uvloop + websockets) is the default, chosen by measurement
on this project's 2-core machine: one event per POST, 2 processes, the same app
and the same run (see requirements.txt and the README's Performance section).
granian and daphne stay available for the benchmark's comparison.

uvicorn's ``--workers`` keeps N processes on one listening socket and starts a
new one when a process dies, so a crashed web process is replaced alone.
"""

from __future__ import annotations

import sys

DEFAULT = "uvicorn"
SERVERS = ("uvicorn", "granian", "daphne")
PROJECT_APP = "dashboard.asgi:application"


def command(
    app: str = PROJECT_APP,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    processes: int = 1,
    server: str = DEFAULT,
    fd: int | None = None,
) -> list[str]:
    """The command line that serves ``app`` on ``host:port`` (or the inherited socket ``fd``)
    with ``processes`` processes. daphne has no process manager: with ``processes`` > 1 the
    caller starts it that many times on a shared ``fd``."""
    if server == "uvicorn":
        return _uvicorn(app, host, port, processes, fd)
    if server == "granian":
        return _granian(app, host, port, processes)
    if server == "daphne":
        where = ["--fd", str(fd)] if fd is not None else ["-b", host, "-p", str(port)]
        return [sys.executable, "-m", "daphne", "-v", "0", *where, app]
    raise ValueError(f"unknown ASGI server {server!r} (one of {', '.join(SERVERS)})")


def _uvicorn(app: str, host: str, port: int, processes: int, fd: int | None) -> list[str]:
    where = ["--fd", str(fd)] if fd is not None else ["--host", host, "--port", str(port)]
    args = [sys.executable, "-m", "uvicorn", *where, "--loop", "uvloop", "--http", "httptools"]
    # lifespan on: each web process starts its share of the monitor (dashboard.sampler).
    args += ["--ws", "websockets-sansio", "--lifespan", "on", "--no-access-log", "--log-level", "warning"]
    if processes > 1:
        args += ["--workers", str(processes)]
    return [*args, app]


def _granian(app: str, host: str, port: int, processes: int) -> list[str]:
    args = ["--interface", "asgi", "--host", host, "--port", str(port), "--workers", str(processes)]
    return [sys.executable, "-m", "granian", *args, "--loop", "uvloop", "--log-level", "warning", app]
