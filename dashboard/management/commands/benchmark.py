"""``manage.py benchmark [--quick] [--json PATH]``: EventFlow's hot paths beside their limits.

Runs against the configured Redis (``REDIS_URL``) or the embedded one, over
loopback only, in a throwaway namespace it removes afterwards. ``--quick`` is
a smoke run for CI (small counts; its figures mean little).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dashboard.bench import runner
from dashboard.bench.table import render


class Command(BaseCommand):
    help = "Measure publishing, delivery, latency and the monitor beside their limits; print one table."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--quick", action="store_true", help="a fast smoke run (small counts, for CI)")
        parser.add_argument("--json", metavar="PATH", help="also write the table as JSON to PATH")
        parser.add_argument(
            "--only",
            action="append",
            choices=runner.section_names(),
            metavar="SECTION",
            help=f"measure only this section (repeatable): {', '.join(runner.section_names())}",
        )

    def handle(self, *args, quick: bool, json: str | None, only: list[str] | None, **options) -> None:
        _require_migrated()
        started = time.time()
        rows = runner.run(quick, say=lambda line: self.stderr.write(line), only=only)
        scope = f"; only {', '.join(only)}" if only else ""
        title = (
            f"EventFlow benchmark ({'quick' if quick else 'full'}{scope}), {time.time() - started:.0f} s; "
            f"Redis {_redis_version()}, persistence: {redis_persistence()}"
        )
        self.stdout.write(render(rows, title))
        if json:
            _write_json(Path(json), rows, quick, started, only)


def _require_migrated() -> None:
    """The benchmark makes throwaway topics and consumers: the database must be ready."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise CommandError("the database has unapplied migrations: run `manage.py migrate` first")


def _write_json(path: Path, rows: list, quick: bool, started: float, only: list[str] | None) -> None:
    document = {
        "mode": "quick" if quick else "full",
        "sections": only or runner.section_names(),
        "started_at": started,
        "seconds": time.time() - started,
        "machine": {
            "python": platform.python_version(),
            "cpus": _cpus(),
            "redis": _redis_version(),
            "persistence": redis_persistence(),
        },
        "rows": [row.as_dict() for row in rows],
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False))


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _redis_version() -> str:
    from eventflow.connection import get_redis

    try:
        info = get_redis().info("server")
    except Exception:  # noqa: BLE001 - the version is a nicety
        return "unknown"
    return f"{info.get('redis_version', '?')} ({info.get('server_name', 'redis')})"


def redis_persistence() -> str:
    """What the measured Redis keeps on disk ("AOF everysec", "RDB only", "none"): figures depend on it."""
    from eventflow.connection import get_redis

    try:
        config = get_redis().config_get("appendonly", "appendfsync", "save")
    except Exception:  # noqa: BLE001 - managed servers may refuse CONFIG; say so rather than guess
        return "unknown (CONFIG GET refused)"
    if config.get("appendonly") == "yes":
        return f"AOF {config.get('appendfsync', '?')}"
    return "RDB snapshots only" if config.get("save") else "none"
