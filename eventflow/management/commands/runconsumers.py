"""``manage.py runconsumers [--consumer NAME ...]``: run consumer handlers until stopped.

Start as many as you like on as many machines: the workers of one consumer
compete for its events. SIGTERM or Ctrl-C finishes in-flight events first.
"""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand, CommandError

from eventflow.models import Consumer
from eventflow.worker import Worker


class Command(BaseCommand):
    help = "Run the workers of all consumers, or of the named ones."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--consumer", action="append", default=[], dest="consumers", help="run only this consumer (repeatable)"
        )

    def handle(self, *args, consumers: list[str], **options) -> None:
        unknown = set(consumers) - set(Consumer.objects.filter(name__in=consumers).values_list("name", flat=True))
        if unknown:
            raise CommandError(f"unknown consumer(s): {', '.join(sorted(unknown))}")
        worker = Worker(consumers)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: worker.stop())
        which = ", ".join(consumers) if consumers else "all consumers"
        self.stdout.write(f"Worker {worker.id} running {which}. Ctrl-C to stop.")
        worker.run()
        self.stdout.write(f"Worker {worker.id} stopped cleanly.")
