"""Consumer health: the rules of DESIGN.md ("Consumer health") over a sliding window.

Each status comes with the number that caused it, so the dashboard can say
*why* a consumer is STALLED ("no ack for 34 s, backlog 12"), not only that it is.
The rules are pure functions of plain facts; ``Tracker`` turns successive
samples into those facts (the window) and is the only part with memory.

Precedence, worst first: STOPPED, FAILING, STALLED, WARNING, LAGGING, OK.

WARNING is a consumer that keeps failing without failing most of the time:
dead letters in the window, or a share of failed attempts above its warning
threshold ("8 % of 360 attempts failed in 60 s, 27 dead-lettered").

Hysteresis: WARNING and LAGGING are entered on clear evidence and left only
once it is gone (``assess(..., previous=...)``), so one retry does not flip a
consumer OK → LAGGING → OK.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

MIN_DELIVERIES_FOR_FAILING = 3
LAG_ENTER_EVENTS = 5  # backlog growth over the window that makes an OK consumer LAGGING...
LAG_ENTER_SHARE = 0.1  # ...and at least this share of the backlog it started from
WARN_LEAVE_SHARE = 0.5  # WARNING on failed attempts is left below half its threshold


class Status(StrEnum):
    OK = "OK"
    LAGGING = "LAGGING"
    STALLED = "STALLED"
    STOPPED = "STOPPED"
    FAILING = "FAILING"
    WARNING = "WARNING"


# Worst first: the order tables, lists and the graph put statuses in.
SEVERITY = {"STOPPED": 0, "FAILING": 1, "STALLED": 2, "WARNING": 3, "LAGGING": 4, "OK": 5}
UNRANKED = len(SEVERITY)  # where a status SEVERITY does not know sorts: after OK


def rank(status: str) -> int:
    """Where ``status`` sorts, worst first (SEVERITY); one it does not know sorts after OK."""
    return SEVERITY.get(status, UNRANKED)


@dataclass(frozen=True, slots=True)
class Thresholds:
    stall: float = 30.0  # seconds a backlog may wait without an ack
    failure: float = 0.5  # share of failed deliveries over the window
    ack_timeout: float = 30.0  # seconds one event may stay pending
    warn_failure: float = 0.05  # share of failed attempts over the window that raises WARNING
    warn_dead: int = 1  # dead letters over the window that raise WARNING (0: never)


@dataclass(frozen=True, slots=True)
class Facts:
    """What is true of a consumer now (summed over its topics)."""

    backlog: int  # not yet delivered + pending + waiting for a retry
    oldest_pending: float  # seconds the oldest pending event has been held
    live_workers: int
    paused: bool = False
    handler_error: str = ""  # why the handler does not import, as a live worker reports it



@dataclass(frozen=True, slots=True)
class Window:
    """What happened to a consumer over the sliding window."""

    seconds: float  # how much time the window really covers
    backlog_start: int
    acks: int
    errors: int
    unacked_for: float  # seconds the current backlog has waited without an ack (0: no backlog)
    dead: int = 0  # events dead-lettered (become failed events) over the window


@dataclass(frozen=True, slots=True)
class Health:
    status: Status
    reason: str
    value: float  # the number behind the status


def assess(facts: Facts, window: Window, limits: Thresholds, previous: Status | None = None) -> Health:
    """Apply the rules, worst first; return the status, its reason and its number.

    ``previous`` is the status of the last assessment: WARNING and LAGGING
    stay while their cause lasts, below the level that entered them.
    """
    for rule in (_stopped, _failing, _stalled):
        health = rule(facts, window, limits)
        if health is not None:
            return health
    for held in (_warning, _lagging):
        health = held(facts, window, limits, previous)
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
    if facts.handler_error:  # nothing can be handled: no need to wait for failures to pile up
        return Health(Status.FAILING, f"handler does not import: {facts.handler_error}", 1.0)
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


def _warning(facts: Facts, window: Window, limits: Thresholds, previous: Status | None) -> Health | None:
    """Dead letters, or more failed attempts than the warning share, over the window."""
    attempts = window.acks + window.errors
    ratio = window.errors / attempts if attempts >= MIN_DELIVERIES_FOR_FAILING else 0.0
    level = limits.warn_failure * (WARN_LEAVE_SHARE if previous == Status.WARNING else 1.0)
    dead = limits.warn_dead > 0 and window.dead >= limits.warn_dead
    if not dead and not (level > 0 and ratio > level):
        return None
    span = f"{window.seconds:.0f} s"
    parts = [f"{ratio:.0%} of {attempts:,} attempts failed in {span}"] if ratio else []
    if window.dead:
        parts.append(f"{window.dead:,} dead-lettered" + ("" if parts else f" in {span}"))
    return Health(Status.WARNING, ", ".join(parts), round(ratio, 3))


def _lagging(facts: Facts, window: Window, limits: Thresholds, previous: Status | None) -> Health | None:
    growth = facts.backlog - window.backlog_start
    if growth <= 0 or facts.backlog <= 0:
        return None
    if previous != Status.LAGGING and growth < max(LAG_ENTER_EVENTS, LAG_ENTER_SHARE * window.backlog_start):
        return None  # a retry or two is not lagging; staying LAGGING needs only growth
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
    dead: int | None = None  # None: not known (history replayed into a fresh tracker)


@dataclass(slots=True)
class _Memory:
    readings: deque[_Reading] = field(default_factory=deque)
    last_ack_at: float | None = None
    backlog_since: float | None = None
    status: Status | None = None  # the last assessment, for the rules' hysteresis


class Tracker:
    """Remembers each consumer's recent readings and answers with its ``Window``.

    ``acked`` and ``errors`` are running totals (Redis counters); the window
    works with their differences, so a restarted tracker only needs two
    readings to answer again.
    """

    def __init__(self, seconds: float = 60.0) -> None:
        self.seconds = seconds
        self._memory: dict[str, _Memory] = {}

    def observe(
        self,
        name: str,
        at: float,
        backlog: int,
        acked: int,
        errors: int,
        oldest_pending: float,
        dead: int | None = None,
    ) -> Window:
        """Record a reading and return the window that ends with it.

        ``dead`` is a running total too; readings without it (replayed history)
        do not count towards the window's dead letters.
        """
        memory = self._memory.setdefault(name, _Memory())
        readings = memory.readings
        if readings and acked > readings[-1].acked:
            memory.last_ack_at = at
        self._track_backlog(memory, at, backlog, oldest_pending)
        readings.append(_Reading(at, backlog, acked, errors, dead))
        while len(readings) > 1 and readings[1].at <= at - self.seconds:
            readings.popleft()
        first = readings[0]
        return Window(
            seconds=max(0.0, at - first.at),
            backlog_start=first.backlog,
            acks=max(0, acked - first.acked),
            errors=max(0, errors - first.errors),
            unacked_for=self._unacked_for(memory, at),
            dead=self._dead_since(readings, dead),
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

    def previous(self, name: str) -> Status | None:
        """The status last remembered for a consumer (None: never assessed)."""
        memory = self._memory.get(name)
        return memory.status if memory is not None else None

    def remember(self, name: str, status: Status) -> None:
        self._memory.setdefault(name, _Memory()).status = status

    def forget_others(self, names: set[str]) -> None:
        """Drop consumers that no longer exist."""
        for gone in set(self._memory) - names:
            del self._memory[gone]

    @staticmethod
    def _dead_since(readings: deque[_Reading], dead: int | None) -> int:
        if dead is None:
            return 0
        start = next((r.dead for r in readings if r.dead is not None), dead)
        return max(0, dead - start)

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
