"""The demo flow's consumer handlers: small stand-ins for a shop's back office.

Each takes one ``eventflow.events.Event``. Returning acks the event; raising
schedules a retry, and after the consumer's ``max_attempts`` the event becomes
a FailedEvent that an operator can replay.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from decimal import Decimal

from eventflow import publish
from eventflow.events import Event

from . import switches

logger = logging.getLogger(__name__)

# The in-process producer of shipment events (registered by the demo flow).
WAREHOUSE = "warehouse"


class RiskServiceTimeout(Exception):
    """The (imaginary) risk-scoring service did not answer in time."""


class RiskServiceRejected(Exception):
    """The (imaginary) risk-scoring service refused the request."""


def billing(event: Event) -> None:
    """Book orders and payments into the ledger (here: check the amounts add up)."""
    data = event.data or {}
    if event.type == "order.created":
        total = sum(Decimal(str(line["price"])) * line["quantity"] for line in data.get("lines", []))
        if total != Decimal(str(data["total"])):
            raise ValueError(f"order {data['order_id']}: lines add up to {total}, total says {data['total']}")


def shipping(event: Event) -> None:
    """Ship paid orders: publish ``shipment.dispatched`` to the ``shipments`` topic.

    The shipment's event id is derived from the order event's id, so a retried
    delivery publishes the same shipment once (the topic deduplicates ids).
    """
    if event.type != "order.paid":
        return
    data = event.data
    publish(
        "shipments",
        {
            "shipment_id": "shp_" + _digest(event.id)[:12],
            "order_id": data["order_id"],
            "customer_id": data["customer_id"],
            "carrier": random.choice(["DHL", "UPS", "FedEx", "PostNL"]),
            "tracking_number": _digest(event.id + "tracking")[:16].upper(),
            "country": data.get("country", "NL"),
        },
        type="shipment.dispatched",
        key=data["order_id"],
        id=f"shipment-for-{event.id}",
        source=WAREHOUSE,
    )


def analytics(event: Event) -> None:
    """Count everything (the demo keeps no warehouse; the dashboard shows the rates)."""
    logger.debug("analytics: %s on %s", event.type, event.topic)


def fraud_check(event: Event) -> None:
    """Score new orders for fraud, against a flaky external service.

    About one order in twelve always times out (it ends as a FailedEvent after
    the consumer's attempts) until the service is fixed (``switches``: a
    button on fraud-check's page), and replays then succeed; about one in ten
    fails once and then succeeds.
    """
    if event.type != "order.created":
        return
    order_id = event.data["order_id"]
    bucket = int(_digest(order_id)[:8], 16) % 120
    if bucket < 10 and not switches.risk_service_fixed():
        raise RiskServiceTimeout(f"risk-scoring service timed out after 2.0s scoring order {order_id}")
    if bucket < 22 and event.attempt == 1:
        raise RiskServiceRejected(f"risk-scoring service answered 503 Service Unavailable for order {order_id}")


def email(event: Event) -> None:
    """Send the customer an e-mail: slow, so this consumer's backlog grows."""
    time.sleep(random.uniform(0.2, 0.5))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
