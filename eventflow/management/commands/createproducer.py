"""``manage.py createproducer NAME --topic T``: register a producer, print its token last."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from eventflow.models import Producer, Topic


class Command(BaseCommand):
    help = "Create a producer allowed on the given topics and print its token (shown only once) as the last line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--topic", action="append", default=[], dest="topics", help="a topic it may publish to (repeatable)"
        )
        parser.add_argument("--description", default="")

    def handle(self, *args, name: str, topics: list[str], description: str, **options) -> None:
        if not topics:
            raise CommandError("give at least one --topic")
        known = {t.name: t for t in Topic.objects.filter(name__in=topics)}
        missing = [t for t in topics if t not in known]
        if missing:
            raise CommandError(f"unknown topic(s): {', '.join(missing)} (create them in the admin first)")
        if Producer.objects.filter(name=name).exists():
            raise CommandError(f"a producer named {name!r} exists; rotate its token in the admin instead")
        producer = Producer(name=name, description=description)
        token = producer.set_new_token()
        try:
            producer.full_clean()
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        with transaction.atomic():
            producer.save()
            producer.topics.set(known.values())
        self.stdout.write(f"Created producer {name!r} for {', '.join(topics)}. Its token (shown only now):")
        self.stdout.write(token)
