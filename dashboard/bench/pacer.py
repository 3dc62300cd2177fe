"""A steady publisher, run as its own process: ``python -m dashboard.bench.pacer TOPIC RATE``.

Publishes ``RATE`` events a second with Python ``publish_batch`` (a batch every
10 ms) until SIGTERM. Each event's data carries its send time (``t``, wall
clock seconds) so whoever sees it can tell how long it took.
"""

from __future__ import annotations

import signal
import sys
import time

TICK = 0.01  # seconds between batches


def run(topic: str, rate: float) -> None:
    from eventflow.publishing import publish_batch

    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    per_tick = max(1, round(rate * TICK))
    start, sent = time.perf_counter(), 0
    while not stopping:
        due = start + sent / rate
        ahead = due - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
        now = time.time()
        publish_batch(topic, [{"type": "tick", "data": {"t": now, "i": sent + n}} for n in range(per_tick)])
        sent += per_tick


if __name__ == "__main__":
    import django

    django.setup()
    run(sys.argv[1], float(sys.argv[2]))
