"""``manage.py monitor``: sample the flow about once a second and push it to open dashboards.

Safe to run several: one holds the leader key and samples, the others wait
and take over within seconds if it stops.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from django.core.management.base import BaseCommand

from dashboard.live import Bridge

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Sample streams, consumer groups and workers; push live updates to dashboard pages."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=0.8,
            help="Seconds between full samples (under 1: every tab updates each second).",
        )
        parser.add_argument("--tail-interval", type=float, default=0.25, help="Seconds between live-tail reads.")

    def handle(self, *args, **options) -> None:
        self.stopping = asyncio.Event()
        self.stdout.write(f"monitor: sampling every {options['interval']:g}s; Ctrl-C stops")
        asyncio.run(self._loop(options["interval"], options["tail_interval"]))
        self.stdout.write("monitor: stopped")

    async def _loop(self, interval: float, tail_interval: float) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        bridge = Bridge(sample_interval=interval)
        failures = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                await bridge.run_once()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - the monitor outlives Redis and database hiccups
                failures += 1
                logger.warning("monitor step failed (%s); retrying", exc)
            pause = tail_interval if failures == 0 else min(5.0, 0.5 * 2**failures)
            if failures == 0:  # wake for the next full sample on time, not at the next tail step
                pause = min(pause, time.monotonic() - started + bridge.seconds_until_sample())
            try:
                await asyncio.wait_for(self.stopping.wait(), max(0.0, pause - (time.monotonic() - started)))
            except TimeoutError:
                pass
