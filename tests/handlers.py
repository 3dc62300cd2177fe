"""Handlers the tests configure consumers with; they record what they saw in Redis."""

from __future__ import annotations

import os
import time

import orjson

from eventflow import conf
from eventflow.connection import get_redis
from eventflow.events import Event
from eventflow.idempotency import idempotent


def _log_key(name: str) -> str:
    return f"{conf.get('KEY_PREFIX')}test:{name}"


def record(event: Event, name: str = "seen") -> None:
    get_redis().rpush(_log_key(name), f"{event.id}|{event.attempt}|{os.getpid()}")


def seen(name: str = "seen") -> list[tuple[str, int, int]]:
    rows = [r.decode().split("|") for r in get_redis().lrange(_log_key(name), 0, -1)]
    return [(r[0], int(r[1]), int(r[2])) for r in rows]


def billing(event: Event) -> None:
    record(event, "billing")


def shipping(event: Event) -> None:
    record(event, "shipping")


def fails_on_odd(event: Event) -> None:
    """Fails every event whose data has an odd ``n``, unless the fix flag is set."""
    if event.data.get("n", 0) % 2 == 1 and not get_redis().exists(_log_key("fixed")):
        raise ValueError(f"cannot handle odd n={event.data['n']}")
    record(event, "flaky")


def fix_flaky() -> None:
    get_redis().set(_log_key("fixed"), 1)


def slow(event: Event) -> None:
    time.sleep(float(event.data.get("sleep", 0.05)))
    record(event, "slow")


def always_fails(event: Event) -> None:
    raise RuntimeError("boom")


not_callable = 42


@idempotent
def count_once(event: Event) -> None:
    """A database effect that must happen once per event, however often it is delivered."""
    from django.contrib.auth.models import Group

    Group.objects.create(name=f"effect-{event.id}")
    if event.data.get("fail_after_effect"):
        raise RuntimeError("failed after the effect")


def hangs(event: Event) -> None:
    """Never returns in a test's lifetime: the worker holding it looks stuck."""
    time.sleep(float(event.data.get("sleep", 3600)))


def lineage(event: Event) -> None:
    """Records which replay job (if any) sent each delivery, and its stream id."""
    get_redis().rpush(_log_key("lineage"), f"{event.replay or ''}|{event.stream_id}")


def lineage_seen() -> list[tuple[int | None, str]]:
    rows = [r.decode().split("|") for r in get_redis().lrange(_log_key("lineage"), 0, -1)]
    return [(int(r[0]) if r[0] else None, r[1]) for r in rows]


def exits(event: Event) -> None:
    """Calls ``sys.exit`` on odd ``n`` (as a confused library might); handles the others."""
    if event.data.get("n", 0) % 2 == 1:
        raise SystemExit(f"handler exit on n={event.data['n']}")
    record(event, "exits")


def interrupts(event: Event) -> None:
    """Raises KeyboardInterrupt on odd ``n``; handles the others."""
    if event.data.get("n", 0) % 2 == 1:
        raise KeyboardInterrupt(f"handler interrupt on n={event.data['n']}")
    record(event, "interrupts")


def database_down_twice(event: Event) -> None:
    """Fails its first two calls per event as a handler whose database is down would, then works."""
    from django.db import OperationalError

    record(event, "db_calls")
    if get_redis().incr(_log_key(f"db_calls:{event.id}")) <= 2:
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
    record(event, "db_done")


def exits_on_poison(event: Event) -> None:
    """Ends its whole process on an event marked poison, as a crash or the OOM killer would."""
    if event.data.get("poison"):
        os._exit(1)
    record(event, "steady")


def needs_amount(event: Event) -> None:
    """Fails an event whose data has no numeric ``amount``; records what it handled and which replay sent it."""
    amount = event.data.get("amount") if isinstance(event.data, dict) else None
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise ValueError(f"no numeric amount in {event.data!r}")
    handled = {"id": event.id, "data": event.data, "replay": event.replay, "stream_id": event.stream_id}
    get_redis().rpush(_log_key("amounts"), orjson.dumps(handled))


def amounts_handled() -> list[dict]:
    return [orjson.loads(r) for r in get_redis().lrange(_log_key("amounts"), 0, -1)]
