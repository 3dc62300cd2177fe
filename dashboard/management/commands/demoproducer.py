"""``manage.py demoproducer --url URL [--rate R]``: publish a simulated shop's events over HTTP.

The producer token comes from ``EVENTFLOW_DEMO_TOKEN`` (the ``shop`` producer's;
``serve --demo`` rotates it and passes it on), so it never shows in ``ps``.
"""

from __future__ import annotations

import os
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from dashboard.demo.simulator import Simulator

TOKEN_VARIABLE = "EVENTFLOW_DEMO_TOKEN"


class Command(BaseCommand):
    help = "Publish a simulated shop's orders and payments over the HTTP API until stopped."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the EventFlow server's base URL")
        parser.add_argument("--rate", type=float, default=20.0, help="events a second, on average (default 20)")

    def handle(self, *args, url: str, rate: float, **options) -> None:
        token = os.environ.get(TOKEN_VARIABLE, "")
        if not token:
            raise CommandError(f"set {TOKEN_VARIABLE} to the 'shop' producer's token")
        if rate <= 0:
            raise CommandError("--rate must be above 0")
        simulator = Simulator(url, token, rate)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"Demo producer publishing about {rate:g} events/s to {url} as 'shop'.")
        while not stop.is_set():
            try:
                simulator.run_once()
            except RuntimeError as exc:
                raise CommandError(str(exc)) from None
            stop.wait(simulator.flush_interval)
        self.stdout.write(f"Demo producer stopped after {simulator.sent} events.")
