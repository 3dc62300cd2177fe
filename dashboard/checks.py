"""``manage.py check --deploy``: what would make a production deployment unsafe.

Errors refuse (the command exits non-zero): debug mode, the development secret
key, one SQLite file used from several hosts. Warnings name a risk the
operator may accept knowingly: a Redis that keeps nothing on disk, static
files not collected.
"""

from __future__ import annotations

import socket

import orjson
import redis
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from eventflow import keys
from eventflow.connection import get_redis
from eventflow.status import broker_status

from . import static_files

DEVELOPMENT_KEY_PREFIX = "django-insecure-"


@register(Tags.security, deploy=True)
def check_production_settings(app_configs, **kwargs) -> list:
    problems = []
    if settings.DEBUG:
        problems.append(Error("DEBUG is on: pages show tracebacks and settings to anyone", id="dashboard.E001"))
    if settings.SECRET_KEY.startswith(DEVELOPMENT_KEY_PREFIX):
        problems.append(
            Error(
                "SECRET_KEY is the development key: anyone can forge sessions and CSRF tokens",
                hint="set SECRET_KEY to a long random value, the same on every host",
                id="dashboard.E002",
            )
        )
    if not static_files.collected():
        problems.append(
            Warning(
                f"static files are not collected in {settings.STATIC_ROOT}: pages link unhashed files, served "
                "uncompressed and without long caching",
                hint="run `manage.py collectstatic --noinput` on every web host (`serve` does it)",
                id="dashboard.W001",
            )
        )
    return problems


@register(deploy=True)  # not Tags.database: those run only with --database
def check_database_shared_by_hosts(app_configs, **kwargs) -> list:
    """SQLite is one file on one machine: workers on other hosts would each see their own."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        return []
    hosts = _worker_hosts() | {socket.gethostname()}
    if len(hosts) < 2:
        return []
    return [
        Error(
            f"SQLite with processes on several hosts ({', '.join(sorted(hosts))}): each host has its own file, "
            "so configuration and failed events differ between them",
            hint="point DATABASE_URL at PostgreSQL on every host",
            id="dashboard.E003",
        )
    ]


@register(deploy=True)
def check_redis_persistence(app_configs, **kwargs) -> list:
    status = broker_status()
    if not status.get("reachable"):
        return [Warning("Redis does not answer: its persistence could not be checked", id="dashboard.W002")]
    if status.get("durability") != "none":
        return []
    return [
        Warning(
            "Redis keeps nothing on disk (no AOF, no snapshots): a Redis restart loses every accepted event "
            "not yet handled, the retry schedules and the consumer groups",
            hint="run Redis with `appendonly yes` (appendfsync everysec or always)",
            id="dashboard.W003",
        )
    ]


def _worker_hosts() -> set[str]:
    """Hosts of the workers whose heartbeats are live now."""
    try:
        client = get_redis()
        ids = client.zrange(keys.workers(), 0, -1)
        documents = client.mget([keys.worker(i.decode()) for i in ids]) if ids else []
    except redis.RedisError:
        return set()
    return {orjson.loads(d).get("host", "") for d in documents if d}
