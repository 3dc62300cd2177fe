"""The monitor loop, wherever it runs: ``manage.py monitor``, or inside every web process.

Every deployment that serves the dashboard samples: with ``EVENTFLOW_MONITOR =
"auto"`` (the default) each web process runs a sampler in a thread of its own,
and the leader key (``eventflow.monitor``) lets exactly one of them, across all
hosts, sample at a time; the others are standbys that take over within the
leader key's TTL when it stops. ``"off"`` keeps the web processes out of it:
then run ``manage.py monitor`` somewhere (it always samples, same election).

``status()`` tells the pages whether a sampler is alive and, if not, since
when nothing sampled, for the banner every page shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass

from asgiref.sync import ThreadSensitiveContext
from django.core.exceptions import ImproperlyConfigured

from eventflow import conf, keys
from eventflow.connection import get_redis

logger = logging.getLogger(__name__)

MODES = ("auto", "off")
SAMPLE_INTERVAL = 0.8  # seconds between full samples (under 1: every tab updates each second)
TAIL_INTERVAL = 0.25  # seconds between live-tail reads


def mode() -> str:
    """``settings.EVENTFLOW_MONITOR``: ``auto`` (web processes sample) or ``off``."""
    value = conf.get("MONITOR")
    if value not in MODES:
        raise ImproperlyConfigured(f"EVENTFLOW_MONITOR={value!r} is not one of {', '.join(MODES)}")
    return value


async def run(stopping: asyncio.Event, interval: float = SAMPLE_INTERVAL, tail_interval: float = TAIL_INTERVAL) -> None:
    """Step the bridge until ``stopping`` is set; Redis and database hiccups only slow it down.

    Its database calls run in a thread of their own (``ThreadSensitiveContext``),
    never in the process's shared one where the sockets' session lookups run.
    """
    from .live import Bridge

    async with ThreadSensitiveContext():
        bridge = Bridge(sample_interval=interval)
        failures = 0
        while not stopping.is_set():
            started = time.monotonic()
            try:
                await bridge.run_once()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - the monitor outlives Redis and database hiccups
                failures += 1
                logger.warning("monitor step failed (%s); retrying", exc)
            pause = _pause(bridge, failures, tail_interval, started)
            try:
                await asyncio.wait_for(stopping.wait(), pause)
            except TimeoutError:
                pass


def _pause(bridge, failures: int, tail_interval: float, started: float) -> float:
    """Seconds to wait before the next step: the tail interval, the next full sample if
    sooner, or a growing backoff after failures."""
    if failures:
        return min(5.0, 0.5 * 2**failures)
    pause = min(tail_interval, time.monotonic() - started + bridge.seconds_until_sample())
    return max(0.0, pause - (time.monotonic() - started))


class Background:
    """A sampler in a daemon thread with its own event loop, for a web process's lifespan."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="eventflow-monitor", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to end and wait for it (at most ``timeout`` s; the thread is a daemon). Idempotent."""
        loop = self._loop
        if loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended and closed
                loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _main(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        try:
            self._loop.run_until_complete(run(self._stopping))
        finally:
            self._loop.close()


_background: Background | None = None


def start_in_web_process() -> bool:
    """Start this web process's sampler unless ``EVENTFLOW_MONITOR`` is off; True if started."""
    global _background
    if mode() == "off" or _background is not None:
        return False
    _background = Background()
    _background.start()
    return True


def stop_in_web_process() -> None:
    global _background
    if _background is not None:
        _background.stop()
        _background = None


# --- what the pages say ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Status:
    """Whether a sampler holds the leader key now; if not, when the last sample was (or None)."""

    alive: bool
    last_sample: float | None = None

    @property
    def silent_for(self) -> float | None:
        return None if self.last_sample is None else max(0.0, time.time() - self.last_sample)


def status() -> Status:
    """Read the leader key and the last sample's time in one round trip."""
    pipe = get_redis().pipeline(transaction=False)
    pipe.exists(keys.monitor_leader())
    pipe.get(keys.monitor_sampled_at())
    leader, sampled_at = pipe.execute()
    return Status(alive=bool(leader), last_sample=float(sampled_at) if sampled_at else None)
