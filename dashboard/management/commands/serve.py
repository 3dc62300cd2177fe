"""``manage.py serve [--demo] [--role all|web|workers]``: run the product, or one host's share of it.

1. Refuse a port that is already taken, before starting anything.
2. Start the embedded Valkey when no ``REDIS_URL`` is set (and stop it at the end).
3. ``--role all`` (the default) applies migrations; ``web`` and ``workers`` refuse
   to start on an unmigrated database instead (run ``migrate`` once per upgrade).
   With ``--demo``, create the admin login and the demo flow.
4. Roles ``all`` and ``web`` collect the static files (hashed, compressed) and start
   the ASGI server (``dashboard.webserver``: uvicorn, ``--web-processes`` processes,
   one per CPU by default); ``all`` and ``workers`` start ``--workers`` worker
   processes; ``--demo`` adds the simulated shop. Every web process runs a
   sampler of the monitor, one elected (``dashboard.sampler``).
5. Run until Ctrl-C or SIGTERM. A child that dies on its own is restarted alone,
   with backoff (``dashboard.processes``); then stop every child (SIGTERM, then
   SIGKILL after a grace period).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from dashboard import sampler, webserver
from dashboard.processes import Child, Supervisor, describe, manage_py, port_problem
from eventflow import conf, embedded

STOP_GRACE = 20.0  # seconds; a worker finishes its in-flight batch first (EVENTFLOW_SHUTDOWN_GRACE)
WEB_START_TIMEOUT = 60.0
ROLES = ("all", "web", "workers")


class Command(BaseCommand):
    help = "Run EventFlow: Redis (embedded unless REDIS_URL is set), the web server and the workers, or one role."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--demo", action="store_true", help="also create an admin login, a demo flow and a shop")
        parser.add_argument("--role", choices=ROLES, default="all", help="what this host runs (default all)")
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
        parser.add_argument(
            "--web-processes", type=int, default=os.cpu_count() or 1, help="web server processes (default: one per CPU)"
        )
        parser.add_argument("--workers", type=int, default=2, help="worker processes to run (default 2)")
        parser.add_argument("--rate", type=float, default=20.0, help="demo events a second (default 20)")

    def handle(self, *args, role: str, demo: bool, host: str, port: int, **options) -> None:
        if options["workers"] < 1 or options["web_processes"] < 1 or options["rate"] <= 0:
            raise CommandError("--workers and --web-processes must be at least 1 and --rate above 0")
        if demo and role != "all":
            raise CommandError("--demo runs the whole product: use it with --role all")
        if role != "workers" and (problem := port_problem(host, port)) is not None:
            raise CommandError(problem)
        owns_redis = self._start_redis()
        try:
            restarts = self._run(role=role, demo=demo, host=host, port=port, **options)
        finally:
            if owns_redis:
                embedded.stop()
                self.stdout.write(f"Stopped the embedded Valkey ({embedded.socket_path()}).")
        self.stdout.write(f"EventFlow stopped cleanly ({restarts} restarts of children that died).")

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

    def _run(self, *, role: str, demo: bool, host: str, port: int, **options) -> int:
        """Prepare, run the children until told to stop; return how many restarts there were."""
        self._prepare(role)
        local_url = f"http://{_local_host(host)}:{port}"
        children = self._children(role, host, port, local_url, options, demo)
        supervisor = Supervisor(self._child_env(), Path(settings.BASE_DIR), self.stdout.write)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, supervisor.request_stop)
        for child in children:
            supervisor.start(child)
        self._announce(supervisor, local_url if role != "workers" else None, demo)
        supervisor.watch()
        self.stdout.write("Stopping… (workers finish the events in hand first)")
        supervisor.stop_all(STOP_GRACE)
        return supervisor.restarts()

    def _prepare(self, role: str) -> None:
        """Migrate (role all) or insist on a migrated database; collect static files for a web role."""
        if role == "all":
            call_command("migrate", interactive=False, verbosity=0)
        elif _unapplied_migrations():
            raise CommandError("the database has unapplied migrations: run `manage.py migrate` once first")
        self.stdout.write(f"Database ready ({_database_name()}).")
        if role != "workers":
            call_command("collectstatic", interactive=False, verbosity=0)
            self.stdout.write(f"Static files collected in {settings.STATIC_ROOT} (hashed, compressed).")

    def _children(self, role: str, host: str, port: int, local_url: str, options: dict, demo: bool) -> list[Child]:
        children = []
        if role != "workers":
            args = webserver.command(host=host, port=port, processes=options["web_processes"])
            children.append(Child("web", args))
            if role == "all" and sampler.mode() == "off":  # the web processes do not sample: a monitor does
                children.append(Child("monitor", manage_py("monitor")))
        if role != "web":
            children += [Child(f"worker-{n}", manage_py("runconsumers")) for n in range(1, options["workers"] + 1)]
        if demo:
            children.append(self._demo_producer(local_url, options["rate"]))
        return children

    def _demo_producer(self, local_url: str, rate: float) -> Child:
        from dashboard.demo.flow import ensure_admin, ensure_demo_flow

        password = ensure_admin()
        token = ensure_demo_flow().shop_token
        self.stdout.write(f"Demo flow ready. Log in at {local_url}/login/ as: admin / {password}")
        self.stdout.write(f"The 'shop' producer's token (rotated just now): {token}")
        args = manage_py("demoproducer", "--url", local_url, "--rate", f"{rate:g}")
        return Child("demo-producer", args, {"EVENTFLOW_DEMO_TOKEN": token}, stop_order=0)

    def _child_env(self) -> dict[str, str]:
        """Children share this process's settings and its (maybe embedded) Redis."""
        return {**os.environ, "REDIS_URL": conf.get("REDIS_URL"), "PYTHONUNBUFFERED": "1"}

    def _announce(self, supervisor: Supervisor, local_url: str | None, demo: bool) -> None:
        self.stdout.write("Started:")
        for line in describe(supervisor.children):
            self.stdout.write(line)
        if local_url is None:
            self.stdout.write(self.style.SUCCESS("EventFlow workers are running. Ctrl-C to stop."))
        elif _wait_until_listening(local_url, supervisor):
            what = "the dashboard" if not demo else "the demo dashboard"
            self.stdout.write(self.style.SUCCESS(f"EventFlow is running: {local_url}/ ({what}). Ctrl-C to stop."))


def _wait_until_listening(url: str, supervisor: Supervisor) -> bool:
    """Poll the web server's port until it accepts connections; False if stopped first."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    deadline = time.monotonic() + WEB_START_TIMEOUT
    while time.monotonic() < deadline and not supervisor.stopping:
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=0.5).close()
            return True
        except OSError:
            supervisor.step()
            time.sleep(0.1)
    return False


def _unapplied_migrations() -> bool:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


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
