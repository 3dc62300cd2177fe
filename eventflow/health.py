"""Consumer health: the rules of DESIGN.md ("Consumer health") over a sliding window.

Each status comes with the number that caused it, so the dashboard can say
*why* a consumer is STALLED ("no ack for 34 s, backlog 12"), not only that it is.
The rules are pure functions of plain facts; ``Tracker`` turns successive
samples into those facts (the window) and is the only part with memory.

Precedence, worst first: STOPPED, FAILING, STALLED, LAGGING, OK.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

MIN_DELIVERIES_FOR_FAILING = 3


class Status(StrEnum):
    OK = "OK"
    LAGGING = "LAGGING"
    STALLED = "STALLED"
    STOPPED = "STOPPED"
    FAILING = "FAILING"


@dataclass(frozen=True, slots=True)
class Thresholds:
    stall: float = 30.0  # seconds a backlog may wait without an ack
    failure: float = 0.5  # share of failed deliveries over the window
    ack_timeout: float = 30.0  # seconds one event may stay pending


@dataclass(frozen=True, slots=True)
class Facts:
    """What is true of a consumer now (summed over its topics)."""

    backlog: int  # not yet delivered + pending + waiting for a retry
    oldest_pending: float  # seconds the oldest pending event has been held
    live_workers: int
    paused: bool = False


@dataclass(frozen=True, slots=True)
class Window:
    """What happened to a consumer over the sliding window."""

    seconds: float  # how much time the window really covers
    backlog_start: int
    acks: int
    errors: int
    unacked_for: float  # seconds the current backlog has waited without an ack (0: no backlog)


@dataclass(frozen=True, slots=True)
class Health:
    status: Status
    reason: str
    value: float  # the number behind the status


def assess(facts: Facts, window: Window, limits: Thresholds) -> Health:
    """Apply the rules, worst first; return the status, its reason and its number."""
    for rule in (_stopped, _failing, _stalled, _lagging):
        health = rule(facts, window, limits)
        if health is not None:
            return health
    return _ok(facts, window)


def _stopped(facts: Facts, window: Window, limits: Thresholds) -> Health | None:
    if facts.backlog <= 0:
        return None
    if facts.paused:
        return Health(Status.STOPPED, f"paused with a backlog of {facts.backlog:,}", facts.backlog)
    if facts.live_workers == 0:
        return Health(Status.STOPPED, f"no live worker; backlog {facts.backlog:,}", facts.backlog)
    return None


def _failing(facts: Facts, window: Window, limits: Thresholds) -> Health | None:
    deliveries = window.acks + window.errors
    if deliveries < MIN_DELIVERIES_FOR_FAILING:
        return None
    ratio = window.errors / deliveries
    if ratio <= limits.failure:
        return None
    reason = f"{ratio:.0%} of {deliveries:,} deliveries failed in {window.seconds:.0f} s"
    return Health(Status.FAILING, reason, round(ratio, 3))


def _stalled(facts: Facts, window: Window, limits: Thresholds) -> Health | None:
    if facts.backlog <= 0:
        return None
    if facts.oldest_pending > limits.ack_timeout:
        reason = f"an event pending {facts.oldest_pending:.0f} s (ack timeout {limits.ack_timeout:g} s)"
        return Health(Status.STALLED, reason, round(facts.oldest_pending, 1))
    if window.unacked_for >= limits.stall:
        reason = f"no ack for {window.unacked_for:.0f} s; backlog {facts.backlog:,}"
        return Health(Status.STALLED, reason, round(window.unacked_for, 1))
    return None


def _lagging(facts: Facts, window: Window, limits: Thresholds) -> Health | None:
    growth = facts.backlog - window.backlog_start
    if growth <= 0 or facts.backlog <= 0:
        return None
    reason = f"backlog +{growth:,} in {window.seconds:.0f} s (now {facts.backlog:,})"
    return Health(Status.LAGGING, reason, facts.backlog)


def _ok(facts: Facts, window: Window) -> Health:
    if facts.backlog == 0:
        return Health(Status.OK, "no backlog", 0)
    return Health(Status.OK, f"backlog {facts.backlog:,}, not growing", facts.backlog)


# --- the sliding window ---------------------------------------------------------


@dataclass(slots=True)
class _Reading:
    at: float
    backlog: int
    acked: int
    errors: int


@dataclass(slots=True)
class _Memory:
    readings: deque[_Reading] = field(default_factory=deque)
    last_ack_at: float | None = None
    backlog_since: float | None = None


class Tracker:
    """Remembers each consumer's recent readings and answers with its ``Window``.

    ``acked`` and ``errors`` are running totals (Redis counters); the window
    works with their differences, so a restarted tracker only needs two
    readings to answer again.
    """

    def __init__(self, seconds: float = 60.0) -> None:
        self.seconds = seconds
        self._memory: dict[str, _Memory] = {}

    def observe(self, name: str, at: float, backlog: int, acked: int, errors: int, oldest_pending: float) -> Window:
        """Record a reading and return the window that ends with it."""
        memory = self._memory.setdefault(name, _Memory())
        readings = memory.readings
        if readings and acked > readings[-1].acked:
            memory.last_ack_at = at
        self._track_backlog(memory, at, backlog, oldest_pending)
        readings.append(_Reading(at, backlog, acked, errors))
        while len(readings) > 1 and readings[1].at <= at - self.seconds:
            readings.popleft()
        first = readings[0]
        return Window(
            seconds=max(0.0, at - first.at),
            backlog_start=first.backlog,
            acks=max(0, acked - first.acked),
            errors=max(0, errors - first.errors),
            unacked_for=self._unacked_for(memory, at),
        )

    def clocks(self) -> dict[str, dict[str, float | None]]:
        """Each consumer's clocks (when its backlog began, its last ack), to keep outside the process."""
        return {
            name: {"backlog_since": m.backlog_since, "last_ack_at": m.last_ack_at} for name, m in self._memory.items()
        }

    def restore(self, name: str, backlog_since: float | None, last_ack_at: float | None, kept_at: float) -> None:
        """Take back clocks a previous tracker kept at ``kept_at``, after seeding this one from history.

        The history covers only the last window, so a seeded clock starts at its
        first reading at best. The kept ``backlog_since`` wins when it is older and
        the backlog seen since has not emptied after ``kept_at`` (a backlog that
        began after it is a new one); the later ``last_ack_at`` wins.
        """
        memory = self._memory.setdefault(name, _Memory())
        if last_ack_at is not None and (memory.last_ack_at is None or last_ack_at > memory.last_ack_at):
            memory.last_ack_at = last_ack_at
        if backlog_since is None:
            return
        seeded = memory.backlog_since
        if seeded is None and not memory.readings:
            memory.backlog_since = backlog_since  # no history to contradict it; the next reading decides
        elif seeded is not None and seeded <= kept_at + 1.0 and backlog_since < seeded:
            memory.backlog_since = backlog_since

    def forget_others(self, names: set[str]) -> None:
        """Drop consumers that no longer exist."""
        for gone in set(self._memory) - names:
            del self._memory[gone]

    @staticmethod
    def _track_backlog(memory: _Memory, at: float, backlog: int, oldest_pending: float) -> None:
        if backlog <= 0:
            memory.backlog_since = None
        elif memory.backlog_since is None:
            # The backlog is at least as old as the longest-held pending event.
            memory.backlog_since = at - max(0.0, oldest_pending)

    @staticmethod
    def _unacked_for(memory: _Memory, at: float) -> float:
        if memory.backlog_since is None:
            return 0.0
        start = memory.backlog_since
        if memory.last_ack_at is not None:
            start = max(start, memory.last_ack_at)
        return max(0.0, at - start)


# --- the broker's memory (DESIGN.md: Redis "must not evict") ---------------------------

SAFE_POLICY = "noeviction"
MEMORY_WARNING_SHARE = 0.9  # used_memory at or past this share of maxmemory is a warning


@dataclass(frozen=True, slots=True)
class BrokerProblem:
    """Something about the broker an operator must hear of; ``level`` is "error" or "warning"."""

    level: str
    code: str
    message: str


def memory_problems(policy: str | None, used: int, maxmemory: int) -> list[BrokerProblem]:
    """Judge Redis's eviction policy and memory use (``policy`` None: the server would not say).

    An evicting policy is an error: Redis may drop a topic's stream, a consumer
    group or a dedup mark, so accepted events vanish or are stored twice.
    Memory at ``MEMORY_WARNING_SHARE`` of ``maxmemory`` (0: no limit) is a
    warning, with the figures: at the limit, publishing is refused.
    """
    problems = []
    if policy is None:
        problems.append(
            BrokerProblem(
                "warning",
                "redis_policy_unknown",
                "Redis does not tell its maxmemory-policy (CONFIG and INFO refused): EventFlow cannot check "
                f"that it never evicts. It must be {SAFE_POLICY}.",
            )
        )
    elif policy != SAFE_POLICY:
        problems.append(
            BrokerProblem(
                "error",
                "redis_evicting",
                f"Redis may evict keys (maxmemory-policy {policy}): accepted events, consumer groups and dedup "
                f"marks can vanish. Set maxmemory-policy {SAFE_POLICY}.",
            )
        )
    if maxmemory > 0 and used >= MEMORY_WARNING_SHARE * maxmemory:
        problems.append(
            BrokerProblem(
                "warning",
                "redis_memory_high",
                f"Redis memory is {used / maxmemory:.0%} full ({_megabytes(used)} of {_megabytes(maxmemory)} "
                "maxmemory): when it is full, publishing is refused (503 redis_full).",
            )
        )
    return problems


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
