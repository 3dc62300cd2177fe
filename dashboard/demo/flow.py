"""The demo flow: a shop's topics, producers and consumers, created idempotently.

    shop ──▶ orders ───┬──▶ billing, analytics, email (slow), fraud-check (flaky)
         └─▶ payments ─┤──▶ billing, analytics
                       └──▶ shipping ──(warehouse)──▶ shipments ──▶ analytics, email
    web ──▶ cart.*, search.*, users.* ──▶ recommendations, search-index, crm (quiet)
    (warehouse) inventory.* (quiet)

Running it again updates the same rows; it never duplicates them, and it
leaves failed events and stream contents alone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from eventflow.models import Consumer, Producer, Topic

from .handlers import WAREHOUSE

ADMIN_USERNAME = "admin"

TOPICS: dict[str, str] = {
    "orders": "Orders placed, paid and cancelled in the web shop.",
    "payments": "Payment authorisations, captures and refusals from the payment provider.",
    "shipments": "Parcels handed to a carrier by the warehouse.",
}

# The rest of a shop's back office, quiet in the demo: enough topics for the overview's
# graph to fold them into named groups ("cart.* (6)") beside the busy ones.
QUIET_TOPICS: dict[str, list[str]] = {
    "cart": ["viewed", "item-added", "item-removed", "abandoned", "restored", "checked-out"],
    "search": ["query", "clicked", "no-results", "suggested", "filtered"],
    "users": ["signed-up", "logged-in", "password-reset", "deleted", "verified"],
    "inventory": ["reserved", "released", "restocked", "low-stock", "counted"],
}
TOPICS.update(
    {
        f"{group}.{name}": f"{group.capitalize()} events: {name.replace('-', ' ')}."
        for group, names in QUIET_TOPICS.items()
        for name in names
    }
)

PRODUCERS: dict[str, tuple[str, list[str]]] = {
    "shop": ("The web shop (the demo's simulator publishes as it over HTTP).", ["orders", "payments"]),
    WAREHOUSE: (
        "The warehouse; the shipping consumer publishes as it from Python.",
        ["shipments"] + [f"inventory.{name}" for name in QUIET_TOPICS["inventory"]],
    ),
    "web": (
        "The shop's front end (quiet in the demo).",
        [t for t in TOPICS if t.split(".")[0] in ("cart", "search", "users")],
    ),
}

CONSUMERS: list[dict] = [
    {
        "name": "billing",
        "description": "Books orders and payments into the ledger.",
        "handler": "dashboard.demo.handlers.billing",
        "topics": ["orders", "payments"],
    },
    {
        "name": "shipping",
        "description": "Ships paid orders; publishes shipment.dispatched.",
        "handler": "dashboard.demo.handlers.shipping",
        "topics": ["orders"],
        "event_types": "order.paid",
    },
    {
        "name": "analytics",
        "description": "Counts everything that happens.",
        "handler": "dashboard.demo.handlers.analytics",
        "topics": ["orders", "payments", "shipments"],
    },
    {
        "name": "fraud-check",
        "description": "Scores new orders against a flaky risk service; some orders always time out.",
        "handler": "dashboard.demo.handlers.fraud_check",
        "topics": ["orders"],
        "event_types": "order.created",
        "max_attempts": 3,
        "retry_initial": 0.5,
        "retry_factor": 2.0,
        "retry_max": 5.0,
    },
    {
        "name": "email",
        "description": "Sends customers confirmation e-mails, slowly: its backlog grows.",
        "handler": "dashboard.demo.handlers.email",
        "topics": ["orders", "shipments"],
        "event_types": "order.created, shipment.dispatched",
        "stall_threshold": 60.0,
    },
    {
        "name": "recommendations",
        "description": "Learns what customers look at (quiet in the demo).",
        "handler": "dashboard.demo.handlers.analytics",
        "topics": [f"cart.{name}" for name in QUIET_TOPICS["cart"]] + ["search.clicked"],
    },
    {
        "name": "search-index",
        "description": "Keeps the product search up to date (quiet in the demo).",
        "handler": "dashboard.demo.handlers.analytics",
        "topics": [f"search.{name}" for name in QUIET_TOPICS["search"]] + ["inventory.restocked"],
    },
    {
        "name": "crm",
        "description": "Tells the customer database about accounts (quiet in the demo).",
        "handler": "dashboard.demo.handlers.analytics",
        "topics": [f"users.{name}" for name in QUIET_TOPICS["users"]],
    },
]


@dataclass(frozen=True, slots=True)
class DemoFlow:
    shop_token: str


@transaction.atomic
def ensure_demo_flow() -> DemoFlow:
    """Create or update the demo's topics, producers and consumers; rotate the shop's token."""
    topics = {name: _topic(name, description) for name, description in TOPICS.items()}
    tokens = {
        name: _producer(name, description, [topics[t] for t in allowed])
        for name, (description, allowed) in PRODUCERS.items()
    }
    for options in CONSUMERS:
        _consumer(dict(options), topics)
    return DemoFlow(shop_token=tokens["shop"])


def ensure_admin(username: str = ADMIN_USERNAME) -> str:
    """Create the demo's superuser, or give it a new password; return the password."""
    password = secrets.token_urlsafe(12)
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(password)
    user.save()
    return password


def _topic(name: str, description: str) -> Topic:
    topic, _ = Topic.objects.update_or_create(name=name, defaults={"description": description, "active": True})
    return topic


def _producer(name: str, description: str, topics: list[Topic]) -> str:
    """Create or update a producer with a fresh token; return the token."""
    producer = Producer.objects.filter(name=name).first() or Producer(name=name)
    producer.description = description
    token = producer.set_new_token()
    producer.save()
    producer.topics.set(topics)
    return token


def _consumer(options: dict, topics: dict[str, Topic]) -> Consumer:
    names = options.pop("topics")
    consumer, _ = Consumer.objects.update_or_create(name=options.pop("name"), defaults=options)
    consumer.full_clean()
    consumer.topics.set([topics[n] for n in names])
    return consumer
