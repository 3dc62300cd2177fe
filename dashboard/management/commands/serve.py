"""``manage.py serve [--demo]``: run the whole product in one command.

1. Refuse a port that is already taken, before starting anything.
2. Start the embedded Valkey when no ``REDIS_URL`` is set (and stop it at the end).
3. Apply migrations; with ``--demo``, create the admin login and the demo flow.
4. Start the ASGI web server (daphne), the workers and, with ``--demo``, the
   simulated shop, each as a child process sharing one Redis URL.
5. Run until Ctrl-C or SIGTERM, then stop every child (SIGTERM, then SIGKILL
   after a grace period). If a child dies on its own, say which and stop the rest.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from dashboard.processes import Child, Supervisor, describe, manage_py, port_problem
from eventflow import conf, embedded

STOP_GRACE = 20.0  # seconds; a worker finishes its in-flight batch first (EVENTFLOW_SHUTDOWN_GRACE)
WEB_START_TIMEOUT = 30.0
ASGI_APPLICATION = "dashboard.management.asgi_static:application"


class Command(BaseCommand):
    help = "Run EventFlow: Redis (embedded unless REDIS_URL is set), the web server and the workers."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--demo", action="store_true", help="also create an admin login, a demo flow and a shop")
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
        parser.add_argument("--workers", type=int, default=2, help="worker processes to run (default 2)")
        parser.add_argument("--rate", type=float, default=20.0, help="demo events a second (default 20)")

    def handle(self, *args, demo: bool, host: str, port: int, workers: int, rate: float, **options) -> None:
        if workers < 1 or rate <= 0:
            raise CommandError("--workers must be at least 1 and --rate above 0")
        if (problem := port_problem(host, port)) is not None:
            raise CommandError(problem)
        owns_redis = self._start_redis()
        try:
            failed = self._run(demo=demo, host=host, port=port, workers=workers, rate=rate)
        finally:
            if owns_redis:
                embedded.stop()
                self.stdout.write(f"Stopped the embedded Valkey ({embedded.socket_path()}).")
        if failed:
            sys.exit(1)
        self.stdout.write("EventFlow stopped cleanly.")

    def _start_redis(self) -> bool:
        """Start the embedded Valkey if needed; return True if this process owns it."""
        url = conf.get("REDIS_URL")
        if conf.get("EMBEDDED_REDIS"):
            owns = embedded.ensure_running()  # it ignores Ctrl-C: serve stops it last
            state = "started" if owns else "already running"
            self.stdout.write(f"Embedded Valkey {state} on {embedded.socket_path()} (append-only).")
            return owns
        try:
            redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
        except redis.RedisError as exc:
            raise CommandError(f"REDIS_URL {url} does not answer: {exc}") from None
        self.stdout.write(f"Using Redis at {url}.")
        return False

    def _run(self, *, demo: bool, host: str, port: int, workers: int, rate: float) -> bool:
        """Prepare the database, run the children until told to stop; return True if one failed."""
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write(f"Database ready ({_database_name()}).")
        local_url = f"http://{_local_host(host)}:{port}"
        children = self._children(host, port, workers, local_url, rate if demo else None)
        supervisor = Supervisor(self._child_env(), Path(settings.BASE_DIR), self.stdout.write)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, supervisor.request_stop)
        for child in children:
            supervisor.start(child)
        self._announce(supervisor, local_url, demo)
        dead = supervisor.watch()
        if dead is not None:
            self.stderr.write(f"{dead.name} (pid {dead.pid}) {_how_it_ended(dead.exit_code())}; stopping everything.")
        else:
            self.stdout.write("Stopping… (workers finish the events in hand first)")
        supervisor.stop_all(STOP_GRACE)
        return dead is not None

    def _children(self, host: str, port: int, workers: int, local_url: str, rate: float | None) -> list[Child]:
        web = Child("web", [sys.executable, "-m", "daphne", "-v", "0", "-b", host, "-p", str(port), ASGI_APPLICATION])
        children = [web] + [Child(f"worker-{n}", manage_py("runconsumers")) for n in range(1, workers + 1)]
        children.append(Child("monitor", manage_py("monitor")))
        if rate is not None:
            from dashboard.demo.flow import ensure_admin, ensure_demo_flow

            password = ensure_admin()
            token = ensure_demo_flow().shop_token
            self.stdout.write(f"Demo flow ready. Log in at {local_url}/login/ as: admin / {password}")
            self.stdout.write(f"The 'shop' producer's token (rotated just now): {token}")
            args = manage_py("demoproducer", "--url", local_url, "--rate", f"{rate:g}")
            children.append(Child("demo-producer", args, {"EVENTFLOW_DEMO_TOKEN": token}, stop_order=0))
        return children

    def _child_env(self) -> dict[str, str]:
        """Children share this process's settings and its (maybe embedded) Redis."""
        return {**os.environ, "REDIS_URL": conf.get("REDIS_URL"), "PYTHONUNBUFFERED": "1"}

    def _announce(self, supervisor: Supervisor, local_url: str, demo: bool) -> None:
        self.stdout.write("Started:")
        for line in describe(supervisor.children):
            self.stdout.write(line)
        if _wait_until_listening(local_url, supervisor):
            what = "the dashboard" if not demo else "the demo dashboard"
            self.stdout.write(self.style.SUCCESS(f"EventFlow is running: {local_url}/ ({what}). Ctrl-C to stop."))


def _wait_until_listening(url: str, supervisor: Supervisor) -> bool:
    """Poll the web server's port until it accepts connections; False if stopped or it died first."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    deadline = time.monotonic() + WEB_START_TIMEOUT
    while time.monotonic() < deadline and not supervisor.stopping and supervisor.dead_child() is None:
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def _how_it_ended(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited unexpectedly with code {code}"


def _local_host(host: str) -> str:
    """The address a local client should use for ``host`` (a wildcard means this machine)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _database_name() -> str:
    database = settings.DATABASES["default"]
    return f"{database['ENGINE'].rsplit('.', 1)[-1]}: {database['NAME']}"
