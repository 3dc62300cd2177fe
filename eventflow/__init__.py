"""EventFlow: an event broker on Redis Streams with a live monitor, as a Django app.

Public API::

    from eventflow import publish, publish_batch
    event_id = publish("orders", {"order": 42}, type="order.created", key="customer-7")
"""

from __future__ import annotations

from typing import Any

__all__ = ["publish", "publish_batch", "PublishResult", "Event", "idempotent"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that ``eventflow`` can be listed in INSTALLED_APPS.
    if name in ("publish", "publish_batch", "PublishResult"):
        from . import publishing

        return getattr(publishing, name)
    if name == "idempotent":
        from .idempotency import idempotent

        return idempotent
    if name == "Event":
        from .events import Event

        return Event
    raise AttributeError(name)
