"""The benchmark's one table: rows, their statistics, and how they print and save.

A row holds EventFlow's figure and the limit measured in the same run (both
medians of several runs, with their spread), the ratio between them, the
target and whether it was met. A row that could not be measured says why.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Figure:
    """The median of several runs and their spread (lowest, highest)."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Figure:
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))

    def spread_pct(self) -> float:
        """Half the range as a percentage of the median (0 for one run)."""
        if not self.median:
            return 0.0
        return 50.0 * (self.high - self.low) / abs(self.median)


@dataclass(slots=True)
class Row:
    """One line of the table. ``met`` is None when there is no verdict (info rows, not measured)."""

    key: str
    path: str
    unit: str
    target: str
    figure: Figure | None = None
    limit: Figure | None = None
    limit_label: str = ""
    ratio: float | None = None
    met: bool | None = None
    not_measured: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.not_measured:
            return "not measured"
        if self.met is None:
            return "info"
        return "met" if self.met else "MISSED"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict
        return data


def ratio(figure: Figure | None, limit: Figure | None) -> float | None:
    if figure is None or limit is None or not limit.median:
        return None
    return figure.median / limit.median


def not_measured(key: str, path: str, unit: str, target: str, reason: str) -> Row:
    return Row(key=key, path=path, unit=unit, target=target, not_measured=reason)


# --- printing ---------------------------------------------------------------------

_COLUMNS = ("path", "EventFlow", "limit (same run)", "ratio", "target", "verdict")


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _figure(figure: Figure | None, unit: str) -> str:
    if figure is None:
        return "—"
    spread = f" ±{figure.spread_pct():.0f}%" if figure.runs > 1 else ""
    return f"{_number(figure.median)} {unit}{spread}"


def _cells(row: Row) -> tuple[str, ...]:
    if row.not_measured:
        return (row.path, f"not measured ({row.not_measured})", "", "", row.target, row.verdict)
    limit = _figure(row.limit, row.unit)
    if row.limit is not None and row.limit_label:
        limit = f"{limit} ({row.limit_label})"
    shown_ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
    return (row.path, _figure(row.figure, row.unit), limit, shown_ratio, row.target, row.verdict)


def render(rows: Sequence[Row], title: str = "") -> str:
    """The table as Markdown (readable in a terminal and in the README)."""
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(_COLUMNS) + " |")
    lines.append("|" + "---|" * len(_COLUMNS))
    for row in rows:
        cells = [c.replace("|", "/") for c in _cells(row)]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {row.path}: {row.note}" for row in rows if row.note]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)
