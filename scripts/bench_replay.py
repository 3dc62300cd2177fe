"""Rewind vs normal delivery, one worker, in the same run: ``python scripts/bench_replay.py [--events N]``.

1. Publishes N events to a fresh topic and times one worker (``Worker.run``,
   its real threads) delivering them to a no-op consumer: the normal rate.
2. Starts a replay job of the whole range to that consumer (no rate limit)
   and times it from Start to done, on the same worker: the rewind rate.
3. Repeats both in turn (``--rounds``; normal delivery again by moving the
   group back to the start) and prints the medians: the machine is shared.

It uses ``REDIS_URL`` (default the local server) under a throwaway key prefix
and a throwaway SQLite database, and prints both rates and their ratio (the
issue's target: the rewind runs at ≥ 50 % of normal delivery).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def noop(event) -> None:
    """The consumer's handler: does nothing, so the figures are the broker's own cost."""


def _setup() -> None:
    folder = tempfile.mkdtemp(prefix="ef-bench-replay-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
    os.environ["EVENTFLOW_KEY_PREFIX"] = f"bench{uuid.uuid4().hex[:8]}:"
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _publish(count: int) -> None:
    from eventflow.publishing import publish_batch

    for low in range(0, count, 1000):
        publish_batch("bench", [{"type": "bench.tick", "data": {"n": n}} for n in range(low, min(count, low + 1000))])


def _acked(client) -> int:
    from eventflow import keys

    return int(client.hget(keys.counters("bench"), "acked:rewind") or 0)


def _wait(condition, timeout: float) -> float:
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise SystemExit("timed out")
        time.sleep(0.02)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="normal and rewind measured in turn, this many times")
    options = parser.parse_args()
    count = options.events
    _setup()
    from eventflow import conf, keys, replays
    from eventflow.connection import get_redis
    from eventflow.models import Consumer, Replay, Topic
    from eventflow.worker import Worker

    topic = Topic.objects.create(name="bench", retention_max_events=None)
    consumer = Consumer.objects.create(name="rewind", handler="__main__.noop")
    consumer.topics.add(topic)  # creates the group at the stream's end: it gets what comes next
    client = get_redis()
    _publish(count)
    worker = Worker(["rewind"])
    thread = threading.Thread(target=worker.run, daemon=True)
    normals, rewinds = [], []
    try:
        thread.start()
        for round_ in range(options.rounds):
            if round_:  # deliver the same backlog again: the group starts over
                client.xgroup_setid(keys.stream("bench"), "rewind", "0")
            target = _acked(client) + count
            normals.append(_wait(lambda target=target: _acked(client) >= target, 600))
            plan = replays.plan_history(consumer, topic, (0, 0), None, replays.Filters())
            started = time.perf_counter()
            job = replays.start(plan, consumer, topic, user=None, reason="benchmark", rate=None)
            done = Replay.objects.filter(pk=job.pk, state=Replay.State.DONE)
            _wait(done.exists, 900)
            rewinds.append(time.perf_counter() - started)
            job.refresh_from_db()
            assert job.handled == count, f"handled {job.handled} of {count}"
            print(f"round {round_ + 1}: normal {count / normals[-1]:,.0f} ev/s, rewind {count / rewinds[-1]:,.0f} ev/s")
    finally:
        worker.stop()
        thread.join(30)
        for key in client.scan_iter(match=conf.get("KEY_PREFIX") + "*", count=1000):
            client.delete(key)
    normal, rewind = statistics.median(normals), statistics.median(rewinds)
    print(f"normal delivery: {count:,} events, median {normal:.2f} s = {count / normal:,.0f} ev/s")
    print(f"rewind (replay job, no rate limit, from Start to done): median {rewind:.2f} s = {count / rewind:,.0f} ev/s")
    print(f"ratio rewind/normal: {normal / rewind:.2f} (target >= 0.50)")


if __name__ == "__main__":
    main()
