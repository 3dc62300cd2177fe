"""Exactly-once effects for handlers whose effects live in the database.

Delivery is at least once: a worker that dies after a handler's effects but
before its ack leads to a second delivery. A handler wrapped in
``@idempotent`` records the event id in the same transaction as its effects,
so a second delivery of the same event finds the mark and does nothing::

    from eventflow import idempotent

    @idempotent
    def bill(event):
        Invoice.objects.create(order=event.data["order"], amount=event.data["amount"])

Effects outside the database (an e-mail, an HTTP call) stay at least once;
key them by ``event.id`` on the receiving side where you can.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction

from .events import Event
from .models import HandledEvent


def idempotent(handler: Callable[[Event], Any] | None = None, *, scope: str | None = None) -> Any:
    """Run ``handler`` at most once per event id (per ``scope``, default: its dotted path)."""

    def wrap(func: Callable[[Event], Any]) -> Callable[[Event], Any]:
        name = scope or f"{func.__module__}.{func.__qualname__}"

        @functools.wraps(func)
        def run_once(event: Event) -> Any:
            try:
                with transaction.atomic():
                    HandledEvent.objects.create(scope=name[:100], event_id=event.id)
                    return func(event)
            except IntegrityError:
                if HandledEvent.objects.filter(scope=name[:100], event_id=event.id).exists():
                    return None  # handled before: its effects are already committed
                raise

        return run_once

    return wrap(handler) if handler is not None else wrap


def already_handled(event: Event, scope: str) -> bool:
    return HandledEvent.objects.filter(scope=scope, event_id=event.id).exists()
