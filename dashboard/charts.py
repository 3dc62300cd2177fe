"""Geometry for the server-rendered SVG charts: line charts and sparklines (the graph: ``dashboard.graph``).

Functions here return plain numbers and strings; the templates draw them, so
every name that reaches the SVG is escaped like any other text.
"""

from __future__ import annotations

import time


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
        "hovers": _hovers([(t, v) for t, v in series if t >= start], start, span, left, plot_w, unit),
    }


HOVER_SLICES = 60  # hover targets per chart, each a slice of time with its figures in a tooltip


def _hovers(
    series: list[tuple[float, float]], start: float, span: float, left: float, plot_w: float, unit: str
) -> list[dict]:
    """Up to ``HOVER_SLICES`` invisible columns whose tooltips give the values under the pointer.

    Server-rendered ``<title>``s: no script, and a few kilobytes however many points a chart has.
    """
    width = span / HOVER_SLICES
    slices: dict[int, list[tuple[float, float]]] = {}
    for t, v in series:
        slices.setdefault(min(HOVER_SLICES - 1, int((t - start) / width)), []).append((t, v))
    hovers = []
    for index, points in sorted(slices.items()):
        values = [v for _, v in points]
        when = time.strftime("%H:%M:%S", time.gmtime(points[-1][0]))
        text = f"{when} UTC: {_label(values[-1], unit)}"
        if len(values) > 1:
            text += f" (max {_label(max(values), unit)}, mean {_label(round(sum(values) / len(values), 1), unit)})"
        x = round(left + index * width / span * plot_w, 1)
        hovers.append({"x": x, "w": round(plot_w / HOVER_SLICES, 1), "title": text})
    return hovers


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
