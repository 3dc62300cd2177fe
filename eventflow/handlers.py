"""Finding and calling consumer handlers."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from django.utils.module_loading import import_string

from .events import Event

Handler = Callable[[Event], object]


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    error: str = ""
    traceback: str = ""


OK = Outcome(ok=True)


@lru_cache(maxsize=1024)
def resolve(dotted_path: str) -> Handler:
    """Import a handler by dotted path (cached; the admin checked it imports)."""
    handler = import_string(dotted_path)
    if not callable(handler):
        raise TypeError(f"{dotted_path} is not callable")
    return handler


def invoke(handler: Handler, event: Event) -> Outcome:
    """Run a handler; any exception is a failed attempt, never a crashed worker."""
    try:
        handler(event)
    except Exception as exc:  # noqa: BLE001 - a handler's failure is data, not a crash
        message = f"{type(exc).__name__}: {exc}"[:2000]
        return Outcome(ok=False, error=message, traceback=traceback.format_exc()[-20000:])
    return OK
