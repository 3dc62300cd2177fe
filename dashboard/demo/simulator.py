"""A simulated web shop that publishes realistic events over the real HTTP API.

Customers arrive as a Poisson process at ``rate`` events a second on
average. Each order tells a small story over the next seconds: created, then
mostly paid (payment authorised and captured), sometimes refused or
cancelled. Events are sent in small batches, one request per topic, every
``flush_interval`` seconds. When the server is down the batch is kept and
sent again later with the same event ids, so nothing is stored twice.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

logger = logging.getLogger(__name__)

CATALOGUE: list[tuple[str, str, Decimal]] = [
    ("SKU-TEE-01", "Organic cotton T-shirt", Decimal("24.90")),
    ("SKU-MUG-07", "Enamel camping mug", Decimal("12.50")),
    ("SKU-BAG-03", "Waxed canvas backpack", Decimal("129.00")),
    ("SKU-SOCK-2", "Merino hiking socks", Decimal("18.00")),
    ("SKU-LAMP-5", "Rechargeable desk lamp", Decimal("54.95")),
    ("SKU-BOOK-9", "Field guide to mushrooms", Decimal("32.00")),
]
COUNTRIES: list[tuple[str, str]] = [("NL", "EUR"), ("DE", "EUR"), ("FR", "EUR"), ("GB", "GBP"), ("US", "USD")]
PAYMENT_METHODS = ["card", "ideal", "paypal", "klarna", "apple_pay"]
MAX_PENDING = 2000  # stop inventing events while this many wait for a server that is down


@dataclass(order=True)
class _Scheduled:
    due: float
    seq: int
    topic: str = field(compare=False)
    event: dict = field(compare=False)


class Shop:
    """Invents customers' orders and the events that follow them."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self._later: list[_Scheduled] = []
        self._seq = itertools.count()

    def new_order(self, now: float) -> list[tuple[str, dict]]:
        """Start one order's story; return the events due now (the rest come later)."""
        rng = self.rng
        order_id = f"ord_{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
        customer_id = f"cus_{rng.randrange(1, 5000):05d}"
        country, currency = rng.choice(COUNTRIES)
        lines = [
            {"sku": sku, "name": name, "quantity": rng.randint(1, 3), "price": str(price)}
            for sku, name, price in rng.sample(CATALOGUE, rng.randint(1, 3))
        ]
        total = sum(Decimal(line["price"]) * line["quantity"] for line in lines)
        order = {"order_id": order_id, "customer_id": customer_id, "currency": currency, "total": str(total)}
        created = {**order, "country": country, "lines": lines, "channel": rng.choice(["web", "ios", "android"])}
        self._story(now, order, country)
        return [("orders", _event("order.created", created, key=order_id))]

    def due(self, now: float) -> list[tuple[str, dict]]:
        """Return the follow-up events whose time has come."""
        events = []
        while self._later and self._later[0].due <= now:
            item = heapq.heappop(self._later)
            events.append((item.topic, item.event))
        return events

    def _story(self, now: float, order: dict, country: str) -> None:
        rng = self.rng
        key = order["order_id"]
        payment = {**order, "payment_id": f"pay_{rng.getrandbits(48):012x}", "method": rng.choice(PAYMENT_METHODS)}
        at = now + rng.uniform(0.5, 3.0)
        self._later_event(at, "payments", _event("payment.authorized", payment, key=key))
        roll = rng.random()
        if roll < 0.06:
            refused = {**payment, "reason": rng.choice(["insufficient_funds", "card_declined", "expired_card"])}
            self._later_event(at + 0.2, "payments", _event("payment.failed", refused, key=key))
            self._later_event(
                at + 1.0, "orders", _event("order.cancelled", {**order, "reason": "payment_failed"}, key=key)
            )
            return
        self._later_event(at + rng.uniform(0.2, 1.0), "payments", _event("payment.captured", payment, key=key))
        paid = {**order, "country": country, "payment_id": payment["payment_id"]}
        self._later_event(at + rng.uniform(1.0, 2.0), "orders", _event("order.paid", paid, key=key))

    def _later_event(self, due: float, topic: str, event: dict) -> None:
        heapq.heappush(self._later, _Scheduled(due, next(self._seq), topic, event))


def _event(event_type: str, data: dict, *, key: str) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "key": key,
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": data,
    }


class Simulator:
    """Publishes the shop's events at about ``rate`` events a second; one step at a time."""

    def __init__(self, base_url: str, token: str, rate: float, flush_interval: float = 0.25) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.rate = rate
        self.flush_interval = flush_interval
        self.shop = Shop()
        self.pending: dict[str, list[dict]] = {}
        self.sent = 0
        self._next_arrival = time.monotonic()
        self._server_down_since: float | None = None

    def run_once(self) -> bool:
        """Invent what happened since the last step and send it; return True if all was sent."""
        now = time.monotonic()
        if sum(len(batch) for batch in self.pending.values()) < MAX_PENDING:
            for topic, event in self._arrivals(now) + self.shop.due(now):
                self.pending.setdefault(topic, []).append(event)
        return all([self._send(topic) for topic in list(self.pending)])

    def _arrivals(self, now: float) -> list[tuple[str, dict]]:
        # Each order brings about 4 events (created, authorised, captured, paid).
        events = []
        while self._next_arrival <= now:
            events += self.shop.new_order(now)
            self._next_arrival += self.shop.rng.expovariate(self.rate / 4)
        return events

    def _send(self, topic: str) -> bool:
        batch = self.pending[topic]
        if not batch:
            return True
        try:
            self._post(topic, batch)
        except (urllib.error.URLError, OSError) as exc:
            self._note_server_down(exc)
            return False
        if self._server_down_since is not None:
            logger.warning("demo producer: server is back; sending again")
            self._server_down_since = None
        self.sent += len(batch)
        del self.pending[topic]
        return True

    def _post(self, topic: str, events: list[dict]) -> None:
        request = urllib.request.Request(
            f"{self.base_url}/api/v1/topics/{topic}/events",
            data=json.dumps({"events": events}).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    def _note_server_down(self, exc: Exception) -> None:
        if isinstance(exc, urllib.error.HTTPError) and exc.code < 500:
            # The server refused the batch itself (e.g. a revoked token): sending it again won't help.
            body = exc.read()[:300].decode(errors="replace")
            raise RuntimeError(f"the server refused the demo events ({exc.code}): {body}") from exc
        if self._server_down_since is None:
            self._server_down_since = time.monotonic()
            logger.warning("demo producer: cannot publish (%s); keeping the events and retrying", exc)
