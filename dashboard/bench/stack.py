"""A live deployment in the sandbox: the web process, the monitor and a worker.

``LiveStack`` runs daphne (the project's ASGI app, one process), ``manage.py
monitor`` and ``manage.py runconsumers`` for a no-op consumer of one topic,
and can start a paced publisher on that topic. It also logs a staff user in,
for the dashboard's pages and sockets.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from django.conf import settings
from django.test import Client

from eventflow import inspection, keys
from eventflow.connection import get_redis
from .http import Servers
from .sandbox import Sandbox, wait_until

WEB_APP = "dashboard.bench.webapp:application"  # the project's app with static files, as `serve` runs it
HEALTH = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class LiveStack:
    """Web, monitor and worker processes around the topic ``sandbox.name(label)``."""

    def __init__(self, sandbox: Sandbox, label: str) -> None:
        self.sandbox = sandbox
        self.label = label
        self.topic = sandbox.topic(label)
        self.consumer = sandbox.consumer(label, "dashboard.bench.handlers.noop", self.topic)
        self.servers: Servers | None = None
        self.monitor: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.publisher: subprocess.Popen | None = None
        self._session: tuple[str, str] | None = None

    def __enter__(self) -> LiveStack:
        self.servers = Servers(self.sandbox, WEB_APP, 1)
        self.monitor = self.sandbox.manage("monitor")
        self.worker = self.sandbox.manage("runconsumers", "--consumer", self.consumer.name)
        self.servers.wait_ready(lambda i: HEALTH)
        if not wait_until(lambda: get_redis().exists(keys.monitor_leader()), timeout=60, interval=0.05):
            raise RuntimeError("the monitor did not take the leader key within 60 s")
        return self

    def __exit__(self, *exc: Any) -> None:
        procs = [p for p in (self.publisher, self.worker, self.monitor) if p is not None]
        if self.servers is not None:
            procs += self.servers.procs
            self.servers.listener.close()
        self.sandbox.stop_all(procs)

    @property
    def port(self) -> int:
        assert self.servers is not None
        return self.servers.port

    @property
    def web_pid(self) -> int:
        assert self.servers is not None
        return self.servers.procs[0].pid

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_publishing(self, rate: float) -> None:
        """Publish ``rate`` events a second to the topic, from a process of its own."""
        self.stop_publishing()
        args = [sys.executable, "-m", "dashboard.bench.pacer", self.topic.name, str(rate)]
        before = self.published()
        self.publisher = self.sandbox.spawn(args)
        if not wait_until(lambda: self.published() > before, timeout=60, interval=0.02):
            raise RuntimeError("the publisher did not start within 60 s")

    def published(self) -> int:
        """Events published to the topic so far (the engine's own counter)."""
        return inspection.published_total(get_redis(), self.topic.name)

    def stop_publishing(self) -> None:
        if self.publisher is not None:
            self.sandbox.stop(self.publisher)
            self.publisher = None

    def staff_session(self) -> tuple[str, str]:
        """(cookie name, value) of a logged-in superuser's session (made once)."""
        from django.contrib.auth import get_user_model

        if self._session is not None:
            return self._session

        user = get_user_model().objects.create_superuser(self.sandbox.name(f"{self.label}-staff"), password=None)
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        name = settings.SESSION_COOKIE_NAME
        self._session = (name, client.cookies[name].value)
        return self._session

    def socket_headers(self) -> dict[str, str]:
        """What a staff user's browser sends when it opens a dashboard socket."""
        name, value = self.staff_session()
        return {"Origin": self.origin, "Cookie": f"{name}={value}"}
