"""Exactly-once effects for handlers whose effects live in the database.

Delivery is at least once: a worker that dies after a handler's effects but
before its ack leads to a second delivery. A handler wrapped in
``@idempotent`` records the event's identity, CloudEvents' ``source`` + ``id``,
in the same transaction as its effects, so a second delivery of the same
event finds the mark and does nothing (two producers that both use id
``1001`` publish two events, and both are handled)::

    from eventflow import idempotent

    @idempotent
    def bill(event):
        Invoice.objects.create(order=event.data["order"], amount=event.data["amount"])

Effects outside the database (an e-mail, an HTTP call) stay at least once;
key them by ``event.source`` + ``event.id`` on the receiving side where you can
(webhook consumers get that as ``webhook-id``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction

from .events import Event
from .models import HandledEvent


def idempotent(handler: Callable[[Event], Any] | None = None, *, scope: str | None = None) -> Any:
    """Run ``handler`` at most once per event (``source`` + ``id``; per ``scope``, default: its dotted path)."""

    def wrap(func: Callable[[Event], Any]) -> Callable[[Event], Any]:
        name = scope or f"{func.__module__}.{func.__qualname__}"

        @functools.wraps(func)
        def run_once(event: Event) -> Any:
            mark = {"scope": name[:100], "source": event.source, "event_id": event.id}
            try:
                with transaction.atomic():
                    HandledEvent.objects.create(**mark)
                    return func(event)
            except IntegrityError:
                if HandledEvent.objects.filter(**mark).exists():
                    return None  # handled before: its effects are already committed
                raise

        return run_once

    return wrap(handler) if handler is not None else wrap

