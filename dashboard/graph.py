"""The overview's flow picture: producers → topics → consumers, readable at any size.

At a thousand topics and consumers a picture of everything is a grey mat, so
each column draws what an operator must see and folds the rest:

1. Trouble first: every consumer not OK (worst first) or with open failed
   events is drawn, then the busiest consumers; then the topics they read and the busiest topics; then
   the producers of those topics, busiest first. Each column holds at most
   ``MAX_NODES`` (trouble takes the room before busy does).
2. What is left folds into named groups by name prefix (``cart.*``, the part
   before the first dot), the largest ``MAX_GROUPS`` of them, each linking to
   the list filtered by that prefix; anything left after that is one
   "+N quiet …" node linking to the whole list.
3. Edges run between drawn nodes; an edge into a group carries the sum of
   the rates it stands for.
4. Focus (``"topic:orders"``): only the node's neighbourhood is considered —
   a topic's producers and consumers and their other topics, a consumer's
   topics and their producers, a producer's topics and their consumers.

Within a column drawn nodes are sorted by severity (a topic: its worst
consumer's) and name, not by rate, so trouble sits at the top with short
edges and the picture does not reshuffle as the numbers move. Rate labels sit where no
other label is; one with no free spot is left out (its rate stays in the
edge's tooltip), so labels never overlap.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from urllib.parse import quote

from eventflow.health import UNRANKED, Status, rank
from eventflow.snapshot import Snapshot

from . import params

NODE_W, NODE_H, ROW = 188, 40, 52
WIDTH = 1000  # of the viewBox
COLUMNS = (16, 406, 796)  # x of producers, topics, consumers
MAX_NODES = 18  # drawn nodes per column, groups aside
MAX_GROUPS = 5  # prefix groups per column; the rest is one "+N" node
KINDS = ("producer", "topic", "consumer")
PLURALS = {"producer": "producers", "topic": "topics", "consumer": "consumers"}
FOCUS_CHARS = 120  # a kind, a colon and a name
LABEL_W, LABEL_H = 44, 15  # room one rate label takes ("4.8k/s")
LABEL_SPOTS = (0.5, 0.35, 0.65, 0.22, 0.78)  # where along its curve a label may sit, best first


def parse_focus(value: str) -> tuple[str, str] | None:
    """``"topic:orders"`` → ``("topic", "orders")``; None if it names no kind."""
    kind, _, name = value.partition(":")
    return (kind, name) if kind in KINDS and name else None


def focus_param(value: str) -> str:
    """The overview's ``focus`` parameter: empty (the whole flow) or ``<kind>:<name>``; else ``params.BadParam``."""
    focus = params.text(value, "focus", max_chars=FOCUS_CHARS)
    if focus and not parse_focus(focus):
        raise params.BadParam("focus", f"names one node, e.g. topic:orders ({', '.join(KINDS)})")
    return focus


def topology(snapshot: Snapshot, focus: str = "") -> dict:
    """Nodes, groups and edges of the picture, laid out in three columns (see the module)."""
    flow = _Flow(snapshot)
    target = parse_focus(focus)
    if target and target[1] not in flow.names[target[0]]:
        target = None
    within = flow.neighbourhood(*target) if target else None
    chosen, pool = flow.choose(within), flow.pool(within)
    if target and target[1] not in chosen[target[0]]:
        chosen[target[0]] = [target[1], *chosen[target[0]][: MAX_NODES - 1]]  # the focused node is always drawn
    columns = [_column(flow, kind, x, chosen[kind], pool[kind]) for kind, x in zip(KINDS, COLUMNS)]
    place = {key: node for column in columns for key, node in column["index"].items()}
    edges = _edges(flow, place)
    rows = max((len(c["nodes"]) for c in columns), default=1)
    return {
        "columns": columns,
        "edges": _place_labels(edges),
        "width": WIDTH,
        "height": max(1, rows) * ROW + 44,
        "node_w": NODE_W,
        "node_h": NODE_H,
        "empty": not flow.names["topic"],
        "focus": {"kind": target[0], "name": target[1]} if target else None,
        "counts": {kind: len(flow.names[kind]) for kind in KINDS},
    }


class _Flow:
    """The snapshot's names, rates, statuses and links, by kind."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.produce: dict[str, float] = snapshot["edges"]["produce"]
        self.consume: dict[str, float] = snapshot["edges"]["consume"]
        self.status = {c["name"]: c.get("status", "OK") for c in snapshot["consumers"]}
        self.failed = {c["name"] for c in snapshot["consumers"] if c.get("failed")}  # open failed events
        self.rate: dict[str, dict[str, float]] = {kind: defaultdict(float) for kind in KINDS}
        self.links: dict[str, dict[str, set[str]]] = {kind: defaultdict(set) for kind in KINDS}
        for key, rate in self.produce.items():
            producer, topic = key.split("|", 1)
            self._link("producer", producer, "topic", topic, rate)
        for key, rate in self.consume.items():
            topic, consumer = key.split("|", 1)
            self._link("topic", topic, "consumer", consumer, rate)
        self.names = {
            "producer": [p["name"] for p in snapshot["producers"]],
            "topic": [t["name"] for t in snapshot["topics"]],
            "consumer": [c["name"] for c in snapshot["consumers"]],
        }
        for info in snapshot["topics"]:  # a topic's own rate is what is published to it
            self.rate["topic"][info["name"]] = max(self.rate["topic"][info["name"]], info.get("rate") or 0.0)

    def _link(self, kind_a: str, a: str, kind_b: str, b: str, rate: float) -> None:
        self.links[kind_a][a].add(b)
        self.links[kind_b][b].add(a)
        self.rate[kind_a][a] += rate
        self.rate[kind_b][b] += rate

    def neighbourhood(self, kind: str, name: str) -> dict[str, set[str]]:
        """The names near one node, by kind (the node itself included)."""
        near: dict[str, set[str]] = {k: set() for k in KINDS}
        near[kind].add(name)
        if kind == "topic":
            near["producer"] |= self.links["topic"][name] & set(self.names["producer"])
            near["consumer"] |= self.links["topic"][name] & set(self.names["consumer"])
            for consumer in near["consumer"]:
                near["topic"] |= self.links["consumer"][consumer]
        else:
            other = "consumer" if kind == "producer" else "producer"
            near["topic"] |= self.links[kind][name]
            for topic in near["topic"]:
                near[other] |= self.links["topic"][topic] & set(self.names[other])
        return near

    def choose(self, within: dict[str, set[str]] | None) -> dict[str, list[str]]:
        """The names each column draws, at most ``MAX_NODES`` (the module's steps 1 and 4)."""
        pool = self.pool(within)
        consumers = sorted(pool["consumer"], key=self._consumer_rank)
        trouble = [n for n in consumers if self.in_trouble(n)]
        wanted = [t for c in trouble[:MAX_NODES] for t in sorted(self.links["consumer"][c])]
        topics = [t for t in dict.fromkeys(wanted + sorted(pool["topic"], key=self._topic_rank)) if t in pool["topic"]]
        drawn_topics = set(topics[:MAX_NODES])
        producers = sorted(pool["producer"], key=lambda n: (-len(self.links["producer"][n] & drawn_topics), n))
        return {"consumer": consumers[:MAX_NODES], "topic": topics[:MAX_NODES], "producer": producers[:MAX_NODES]}

    def pool(self, within: dict[str, set[str]] | None) -> dict[str, list[str]]:
        """The names a picture considers: all, or a neighbourhood's."""
        return {k: [n for n in self.names[k] if within is None or n in within[k]] for k in KINDS}

    def severity(self, kind: str, name: str) -> float:
        """A consumer's trouble rank; a topic's, its worst consumer's (so trouble sits at the top, edges short).

        An OK consumer with open failed events ranks just above the other OK ones.
        """
        if kind == "consumer":
            status = self.status.get(name, Status.OK)
            return rank(status) - 0.5 if status == Status.OK and name in self.failed else rank(status)
        if kind == "topic":
            return min((self.severity("consumer", c) for c in self.links["topic"][name]), default=UNRANKED)
        return 0

    def in_trouble(self, name: str) -> bool:
        return self.status.get(name, "OK") != "OK" or name in self.failed

    def _consumer_rank(self, name: str) -> tuple:
        return (self.severity("consumer", name), -self.rate["consumer"][name], name)

    def _topic_rank(self, name: str) -> tuple:
        return (-self.rate["topic"][name], name)


def _prefix(name: str) -> str:
    return name.split(".", 1)[0] if "." in name else ""


def _column(flow: _Flow, kind: str, x: int, chosen: list[str], pool: list[str]) -> dict:
    """One column: the drawn nodes, then the groups, then the "+N" node; and where each name is."""
    drawn = sorted(chosen, key=lambda n: (flow.severity(kind, n), n))
    shown = set(chosen)
    hidden = [n for n in pool if n not in shown]
    by_prefix: dict[str, list[str]] = defaultdict(list)
    for name in hidden:
        by_prefix[_prefix(name)].append(name)
    named = sorted((p for p in by_prefix if p and len(by_prefix[p]) > 1), key=lambda p: (-len(by_prefix[p]), p))
    nodes, index = [], {}
    for name in drawn:
        node = _node(kind, x, len(nodes), name, name)
        node["status"] = flow.status.get(name, "OK") if kind == "consumer" else ""
        node["href"] = f"?focus={kind}:{quote(name)}"
        nodes.append(node)
        index[(kind, name)] = node
    rest = []
    for prefix in named[:MAX_GROUPS]:
        node = _group(kind, x, len(nodes), f"{prefix}.* ({len(by_prefix[prefix])})", _list_href(kind, f"{prefix}."))
        nodes.append(node)
        index.update({(kind, n): node for n in by_prefix[prefix]})
    for prefix in named[MAX_GROUPS:] + [p for p in by_prefix if p not in named]:
        rest += by_prefix[prefix]
    if rest:
        quiet = not any(flow.rate[kind][n] for n in rest)
        label = f"+{len(rest):,} {'quiet' if quiet else 'more'} {PLURALS[kind]}"
        node = _group(kind, x, len(nodes), label, _list_href(kind, "", quiet=quiet))
        nodes.append(node)
        index.update({(kind, n): node for n in rest})
    return {"nodes": nodes, "index": index, "x": x, "kind": kind, "title": PLURALS[kind].capitalize()}


def _node(kind: str, x: int, row: int, name: str, label: str) -> dict[str, Any]:
    y = 36 + row * ROW
    short = label if len(label) <= 24 else label[:23] + "…"
    return {"name": name, "label": short, "kind": kind, "x": x, "y": y, "tx": x + 12, "ty": y + 25, "group": False}


def _group(kind: str, x: int, row: int, label: str, href: str) -> dict[str, Any]:
    node = _node(kind, x, row, label, label)
    node.update(group=True, href=href, status="")
    return node


def _list_href(kind: str, prefix: str, *, quiet: bool = False) -> str:
    """Where a group leads: the list of its kind filtered by the prefix (producers: the admin)."""
    base = {"topic": "/topics/", "consumer": "/consumers/", "producer": "/admin/eventflow/producer/"}[kind]
    if prefix:
        return base + f"?q={quote(prefix)}"
    if kind == "producer":
        return base
    return base + ("?status=quiet" if quiet and kind == "topic" else "?sort=-rate")


def _edges(flow: _Flow, place: dict) -> list[dict[str, Any]]:
    """Edges between placed nodes; edges into the same pair of nodes (groups) add up."""
    summed: dict[tuple[int, int], list] = {}
    for kinds, rates in ((("producer", "topic"), flow.produce), (("topic", "consumer"), flow.consume)):
        for key, rate in rates.items():
            a, b = key.split("|", 1)
            source, target = place.get((kinds[0], a)), place.get((kinds[1], b))
            if source is None or target is None:
                continue
            entry = summed.setdefault((id(source), id(target)), [source, target, 0.0])
            entry[2] += rate
    return [_edge(source, target, rate) for source, target, rate in summed.values()]


def _edge(source: dict, target: dict, rate: float) -> dict:
    x1, y1 = source["x"] + NODE_W, source["y"] + NODE_H / 2
    x2, y2 = target["x"], target["y"] + NODE_H / 2
    mid = (x1 + x2) / 2
    return {
        "path": f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}",
        "ends": (x1, y1, x2, y2),
        "rate": round(rate, 1),
        "active": rate > 0,
        "title": f"{source['name']} → {target['name']}",
    }


def _place_labels(edges: list[dict]) -> list[dict]:
    """Give each edge's label a spot on its own curve that overlaps no label placed before.

    Edges are placed in a fixed order (by their ends), so labels do not jump as
    rates change; an edge with no free spot gets no label (``lx`` is None).
    """
    placed: list[tuple[float, float]] = []
    for edge in sorted(edges, key=lambda e: e["ends"]):
        spots = [on_curve(edge["ends"], t) for t in LABEL_SPOTS]
        free = [spot for spot in spots if all(not overlap(spot, other) for other in placed)]
        edge["lx"] = edge["ly"] = None
        if free:
            edge["lx"], edge["ly"] = free[0]
            placed.append(free[0])
            edge["ly"] += 4  # the text's baseline, a little below the curve's point
    return edges


def on_curve(ends: tuple[float, float, float, float], t: float) -> tuple[float, float]:
    """A point of the edge's cubic curve (control points at the horizontal middle)."""
    x1, y1, x2, y2 = ends
    mid = (x1 + x2) / 2
    x = (1 - t) ** 3 * x1 + 3 * (1 - t) * t * mid + t**3 * x2
    y = y1 + (y2 - y1) * (3 * t**2 - 2 * t**3)
    return round(x, 1), round(y, 1)


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) < LABEL_W and abs(a[1] - b[1]) < LABEL_H
