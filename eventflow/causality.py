"""An event's causal tree: who handled it, what their handlers published, and onwards.

Built from what ``eventflow.tracing`` notes while handlers run (``keys.caused``:
the events each handled event's handlers stored) and each event's delivery
state (``inspection.delivery_matrix``). Bounded: ``depth`` hops down and
``budget`` events in all, so a handler that publishes to its own topic cannot
make the page endless.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from . import inspection, keys
from .stream_ids import id_ms


@dataclass(slots=True)
class Hop:
    """One consumer of an event: its delivery state and the events its handler published."""

    consumer: str
    delivery: dict  # inspection.delivery_matrix's row: state, idle, ...
    children: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class Node:
    topic: str
    stream_id: str
    event: dict
    after_ms: int | None  # since the cause was stored; None for the root
    hops: list[Hop] = field(default_factory=list)
    unexpanded: int = 0  # events caused by this one left out (depth or budget reached)


def tree(client: redis.Redis, topic: str, stream_id: str, *, depth: int = 3, budget: int = 60) -> Node | None:
    """The causal tree under one stored event, or None once it has left its stream."""
    envelope = inspection.find_event(client, topic, stream_id)
    if envelope is None:
        return None
    left = [budget - 1]
    return _grow(client, Node(topic, stream_id, envelope, None), depth, left)


def _grow(client: redis.Redis, node: Node, depth: int, left: list[int]) -> Node:
    consumers = _subscribers(node.topic)
    event_id = str(node.event.get("id", ""))
    matrix = inspection.delivery_matrix(client, node.topic, node.stream_id, event_id, consumers)
    hops = {row["consumer"]: Hop(row["consumer"], row) for row in matrix}
    for consumer, topic, stream_id in caused(client, node.topic, event_id):
        if depth <= 1 or left[0] <= 0:
            node.unexpanded += 1
            continue
        child = _child(client, node, topic, stream_id, depth, left)
        if child is not None:
            hop = hops.setdefault(consumer, Hop(consumer, {"consumer": consumer, "state": "unsubscribed"}))
            hop.children.append(child)
    node.hops = list(hops.values())
    return node


def _child(client: redis.Redis, parent: Node, topic: str, stream_id: str, depth: int, left: list[int]) -> Node | None:
    envelope = inspection.find_event(client, topic, stream_id)
    if envelope is None:
        return None  # trimmed since
    left[0] -= 1
    after = id_ms(stream_id) - id_ms(parent.stream_id)
    return _grow(client, Node(topic, stream_id, envelope, after), depth - 1, left)


def caused(client: redis.Redis, topic: str, event_id: str) -> list[tuple[str, str, str]]:
    """(consumer, topic, stream id) of the events handlers of this event published, oldest first."""
    found = []
    for raw in client.lrange(keys.caused(topic, event_id), 0, -1):
        consumer, _, rest = raw.decode().partition("|")
        child_topic, _, stream_id = rest.rpartition("|")
        found.append((consumer, child_topic, stream_id))
    return found


def _subscribers(topic: str) -> list[str]:
    from .models import Consumer

    return list(Consumer.objects.filter(topics__name=topic).order_by("name").values_list("name", flat=True))

