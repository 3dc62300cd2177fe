"""Finding and calling consumer handlers: a Python callable or a webhook URL."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import redis
from django.db import InterfaceError, OperationalError
from django.utils.module_loading import import_string

from . import tracing
from .errors import DeliveryFailed
from .events import Event

if TYPE_CHECKING:
    from .delivery import ConsumerSpec

Handler = Callable[[Event], object]
logger = logging.getLogger(__name__)

# Raised by a handler when the database or Redis it uses is down: the attempt is tried
# again as the same attempt (counted as an infrastructure error), not spent.
INFRASTRUCTURE_ERRORS = (OperationalError, InterfaceError, redis.ConnectionError, redis.TimeoutError)

WEBHOOK = "webhook"  # Consumer.Kind.WEBHOOK; the models are not importable from every caller


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    error: str = ""
    traceback: str = ""
    infrastructure: bool = False  # failed because a database or Redis was down, not by the handler's fault


OK = Outcome(ok=True)


def resolve(spec: ConsumerSpec) -> Handler:
    """The callable that handles a consumer's events: its Python handler, or a poster to its URL."""
    if spec.kind == WEBHOOK:
        from . import webhooks  # imported here: workers of Python consumers never load an HTTP client

        return webhooks.handler_for(spec)
    return import_handler(spec.handler)


@lru_cache(maxsize=1024)
def import_handler(dotted_path: str) -> Handler:
    """Import a handler by dotted path (cached; the admin checked it imports)."""
    handler = import_string(dotted_path)
    if not callable(handler):
        raise TypeError(f"{dotted_path} is not callable")
    return handler


def invoke(handler: Handler, event: Event) -> Outcome:
    """Run a handler; any exception is a failed attempt, never a crashed worker.

    While it runs, events it publishes name ``event`` as their cause and join
    its trace (``eventflow.tracing``).
    """
    try:
        tracing.handle(handler, event)
    except DeliveryFailed as exc:
        return Outcome(ok=False, error=str(exc)[:2000], traceback=exc.details[-20000:])
    except INFRASTRUCTURE_ERRORS as exc:
        return _failure(exc, infrastructure=True)
    except Exception as exc:  # noqa: BLE001 - a handler's failure is data, not a crash
        return _failure(exc)
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: still the handler's failure
        # Nothing outside a handler raises these into a worker thread (signals only set the
        # worker's stop flag), so here they are the handler's: a thread they killed would
        # leave its events to be "abandoned" later, with no trace of why.
        logger.error("handler %s raised %s", getattr(handler, "__name__", handler), type(exc).__name__, exc_info=True)
        return _failure(exc)
    return OK


def _failure(exc: BaseException, *, infrastructure: bool = False) -> Outcome:
    message = f"{type(exc).__name__}: {exc}"[:2000]
    return Outcome(ok=False, error=message, traceback=traceback.format_exc()[-20000:], infrastructure=infrastructure)
