"""The live deployment section: one stack for a browser tab, many tabs, and the memory soak.

Starting daphne, the monitor and a worker takes seconds; the three
measurements share one ``LiveStack`` (``tabs`` first, with the paced
publisher; then ``soak``, publishing over HTTP).
"""

from __future__ import annotations

from typing import Any

from . import soak, tabs
from .sandbox import Sandbox
from .stack import LiveStack
from .table import Row

ROWS = tabs.ROWS + soak.ROWS


def measure(sandbox: Sandbox, plan: Any) -> list[Row]:
    with LiveStack(sandbox, "live") as stack:
        return tabs.measure(stack, plan) + soak.measure(stack, sandbox, plan)
