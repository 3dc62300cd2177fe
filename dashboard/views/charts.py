"""Geometry for the server-rendered SVG pictures: topology graph, line charts, sparklines.

Functions here return plain numbers and strings; the templates draw them, so
every name that reaches the SVG is escaped like any other text.
"""

from __future__ import annotations

import time
from typing import Any

NODE_W, NODE_H, ROW = 188, 40, 56
COLUMNS = (16, 406, 796)  # x of producers, topics, consumers (viewBox width 1000)
MAX_NODES = 30  # per column; the rest are summarised as "+N more"
SEVERITY = {"STOPPED": 0, "FAILING": 1, "STALLED": 2, "LAGGING": 3, "OK": 4}


def sparkline(values: list[float], width: int = 120, height: int = 28, capacity: int = 60) -> dict:
    """Points for a small line of the last ``capacity`` values, newest at the right edge."""
    if not values:
        return {"points": "", "width": width, "height": height, "peak": 0}
    values = values[-capacity:]
    peak = max(values) or 1.0
    step = width / max(1, capacity - 1)
    offset = width - step * (len(values) - 1)
    points = " ".join(
        f"{offset + i * step:.1f},{height - 2 - (v / peak) * (height - 4):.1f}" for i, v in enumerate(values)
    )
    return {"points": points, "width": width, "height": height, "peak": max(values)}


def line_chart(
    series: list[tuple[float, float]], span: float, *, unit: str = "/s", width: int = 560, height: int = 170
) -> dict:
    """A time chart of ``(unix time, value)`` over the last ``span`` seconds."""
    now = time.time()
    start = now - span
    left, bottom = 56, 24
    plot_w, plot_h = width - left - 8, height - bottom - 8
    peak = max((v for _, v in series), default=0.0)
    top = _nice_ceiling(peak)
    points = [(left + (t - start) / span * plot_w, 8 + plot_h - (v / top) * plot_h) for t, v in series if t >= start]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    area = ""
    if points:
        area = f"M{points[0][0]:.1f},{8 + plot_h} L" + line.replace(" ", " L") + f" L{points[-1][0]:.1f},{8 + plot_h} Z"
    return {
        "width": width,
        "height": height,
        "line": line,
        "area": area,
        "left": left,
        "right": width - 8,
        "top_y": 8,
        "mid_y": 8 + plot_h / 2,
        "base_y": 8 + plot_h,
        "top_label": _label(top, unit),
        "mid_label": _label(top / 2, unit),
        "ticks": _time_ticks(span, left, plot_w, 8 + plot_h + 16),
        "empty": not points,
        "latest": series[-1][1] if series else 0.0,
    }


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _label(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:g} s"
    return f"{value / 1000:g}k{unit}" if value >= 1000 else f"{value:g}{unit}"


def _time_ticks(span: float, left: float, plot_w: float, y: float) -> list[dict]:
    ticks = []
    for i in range(5):
        ago = span - span * i / 4
        if ago >= 3600:
            text = f"−{ago / 3600:g} h"
        elif ago >= 60:
            text = f"−{ago / 60:g} min"
        else:
            text = "now" if ago == 0 else f"−{ago:g} s"
        ticks.append({"x": left + plot_w * i / 4, "y": y, "text": text})
    return ticks


# --- topology ------------------------------------------------------------------------


def topology(snapshot: dict) -> dict:
    """Nodes and edges of producers → topics → consumers, laid out in three columns."""
    producers = [p["name"] for p in snapshot["producers"]]
    topics = [t["name"] for t in snapshot["topics"]]
    consumers = sorted(snapshot["consumers"], key=lambda c: (SEVERITY.get(c["status"], 5), c["name"]))
    status = {c["name"]: c["status"] for c in consumers}
    columns = [
        _column(producers, COLUMNS[0], "producer"),
        _column(topics, COLUMNS[1], "topic"),
        _column([c["name"] for c in consumers], COLUMNS[2], "consumer"),
    ]
    at = {(n["kind"], n["name"]): n for column in columns for n in column["nodes"]}
    for node in columns[2]["nodes"]:
        node["status"] = status.get(node["name"], "OK")
    edges = _edges(snapshot, at)
    rows = max((len(c["nodes"]) + (1 if c["more"] else 0) for c in columns), default=1)
    return {"columns": columns, "edges": edges, "height": max(1, rows) * ROW + 40, "empty": not topics}


def _column(names: list[str], x: int, kind: str) -> dict:
    shown = names[:MAX_NODES]
    nodes = [
        {"name": name, "kind": kind, "x": x, "y": 36 + i * ROW, "tx": x + 12, "ty": 36 + i * ROW + 25}
        for i, name in enumerate(shown)
    ]
    more = len(names) - len(shown)
    return {"nodes": nodes, "more": more, "more_y": 36 + len(shown) * ROW + 20, "x": x, "kind": kind}


def _edges(snapshot: dict, at: dict) -> list[dict[str, Any]]:
    edges = []
    for key, rate in snapshot["edges"]["produce"].items():
        producer, topic = key.split("|", 1)
        edges.append(_edge(at.get(("producer", producer)), at.get(("topic", topic)), rate))
    for key, rate in snapshot["edges"]["consume"].items():
        topic, consumer = key.split("|", 1)
        edges.append(_edge(at.get(("topic", topic)), at.get(("consumer", consumer)), rate))
    return _place_labels([e for e in edges if e is not None])


def _edge(source: dict | None, target: dict | None, rate: float) -> dict | None:
    """A curve between two nodes; its rate label is placed by ``_place_labels``."""
    if source is None or target is None:
        return None
    x1, y1 = source["x"] + NODE_W, source["y"] + NODE_H / 2
    x2, y2 = target["x"], target["y"] + NODE_H / 2
    mid = (x1 + x2) / 2
    return {
        "path": f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}",
        "ends": (x1, y1, x2, y2),
        "anchor": "middle",
        "rate": rate,
        "active": rate > 0,
    }


LABEL_W, LABEL_H = 44, 15  # room one rate label takes ("4.8k/s")
LABEL_SPOTS = (0.5, 0.35, 0.65, 0.22, 0.78)  # where along its curve a label may sit, best first


def _place_labels(edges: list[dict]) -> list[dict]:
    """Put each edge's label on its own curve where it overlaps no label placed before.

    Curves into a column share their middle, so labels there would sit on top
    of each other; positions depend on the layout only, never on the rates,
    so labels do not jump as the numbers change.
    """
    placed: list[tuple[float, float]] = []
    for edge in edges:
        spots = [_on_curve(edge["ends"], t) for t in LABEL_SPOTS]
        free = [spot for spot in spots if all(not _overlap(spot, other) for other in placed)]
        edge["lx"], edge["ly"] = (free or spots)[0]
        placed.append((edge["lx"], edge["ly"]))
        edge["ly"] += 4  # the text's baseline, a little below the curve's point
    return edges


def _on_curve(ends: tuple[float, float, float, float], t: float) -> tuple[float, float]:
    """A point of the edge's cubic curve (control points at the horizontal middle)."""
    x1, y1, x2, y2 = ends
    mid = (x1 + x2) / 2
    x = (1 - t) ** 3 * x1 + 3 * (1 - t) * t * mid + t**3 * x2
    y = y1 + (y2 - y1) * (3 * t**2 - 2 * t**3)
    return round(x, 1), round(y, 1)


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) < LABEL_W and abs(a[1] - b[1]) < LABEL_H
