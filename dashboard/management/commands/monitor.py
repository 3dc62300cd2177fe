"""``manage.py monitor``: sample the flow about once a second and push it to open dashboards.

Web processes already do this by default (``EVENTFLOW_MONITOR = "auto"``,
``dashboard.sampler``); this command is for ``EVENTFLOW_MONITOR = "off"``
deployments or an extra standby. Safe to run several: one holds the leader
key and samples, the others wait and take over within seconds if it stops.
"""

from __future__ import annotations

import asyncio
import signal

from django.core.management.base import BaseCommand

from dashboard import sampler


class Command(BaseCommand):
    help = "Sample streams, consumer groups and workers; push live updates to dashboard pages."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=sampler.SAMPLE_INTERVAL,
            help="Seconds between full samples (under 1: every tab updates each second).",
        )
        parser.add_argument(
            "--tail-interval", type=float, default=sampler.TAIL_INTERVAL, help="Seconds between live-tail reads."
        )

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"monitor: sampling every {options['interval']:g}s; Ctrl-C stops")
        asyncio.run(self._loop(options["interval"], options["tail_interval"]))
        self.stdout.write("monitor: stopped")

    async def _loop(self, interval: float, tail_interval: float) -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await sampler.run(stopping, interval, tail_interval)
