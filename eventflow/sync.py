"""Synchronous mode (``EVENTFLOW_SYNC = True``): handlers run inline at publish.

Meant for users' own tests: no worker and no Redis are needed, retries happen
at once without backoff, and events out of attempts still become FailedEvents.
Webhook consumers get their POSTs inline too, from the publishing thread.
"""

from __future__ import annotations

from .delivery import ConsumerSpec, Delivery
from .events import Event
from .handlers import invoke, resolve
from .topics import TopicSpec


def deliver_inline(spec: TopicSpec, envelopes: list[dict]):
    from . import failures
    from .models import Consumer
    from .publishing import PublishResult

    consumers = [
        ConsumerSpec.from_model(c)
        for c in Consumer.objects.filter(topics__pk=spec.id, paused=False).prefetch_related("topics")
    ]
    for envelope in envelopes:
        for consumer in consumers:
            if not consumer.accepts_type(envelope["type"]):
                continue
            handler = resolve(consumer)
            for attempt in range(1, consumer.max_attempts + 1):
                outcome = invoke(handler, Event.from_envelope(envelope, attempt=attempt))
                if outcome.ok:
                    break
            else:
                failures.record(
                    consumer.id,
                    Delivery(spec.stream, envelope, consumer.max_attempts, ""),
                    outcome.error,
                    outcome.traceback,
                )
    ids = [e["id"] for e in envelopes]
    return PublishResult(ids=ids, stream_ids=["" for _ in ids])
