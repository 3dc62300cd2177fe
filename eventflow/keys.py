"""Every Redis key name EventFlow uses, built in one place.

A topic's keys share the hash tag ``{topic}`` so that they live on one Redis
Cluster slot and can be changed together in one script or transaction.

``topic`` and ``consumer`` here are Redis identities (``Topic.stream_name``,
``Consumer.group_name``: the names at creation, kept across renames), never
the current display names; ``producer`` is the producer's name.
"""

from __future__ import annotations

from . import conf


def _prefix() -> str:
    return conf.get("KEY_PREFIX")


def stream(topic: str) -> str:
    """The stream that carries a topic's events."""
    return f"{_prefix()}{{{topic}}}:stream"


def dedup(topic: str, producer: str, event_id: str) -> str:
    """Marks an event id a producer published to a topic within the dedup window."""
    return f"{_prefix()}{{{topic}}}:dedup:{producer}:{event_id}"


def auth_generation(topic: str) -> str:
    """Bumped whenever producers change; cached token checks for the topic are then stale."""
    return f"{_prefix()}{{{topic}}}:authgen"


def retry_schedule(topic: str, consumer: str) -> str:
    """Sorted set of a consumer's deliveries waiting for their retry time (score)."""
    return f"{_prefix()}{{{topic}}}:retry:{consumer}"


def retry_payloads(topic: str, consumer: str) -> str:
    """Hash of the envelopes (and attempt counts) behind ``retry_schedule``."""
    return f"{_prefix()}{{{topic}}}:retrydata:{consumer}"


def dead_letters(topic: str, consumer: str) -> str:
    """Hash of a consumer's dead letters (and replay resolutions) waiting to be written to the database.

    Written in the same transaction as the acks that release their events, so a
    dead letter is durable before its event is gone; workers drain it into
    FailedEvent rows, and keep it while the database is down.
    """
    return f"{_prefix()}{{{topic}}}:deadletters:{consumer}"


def counters(topic: str) -> str:
    """Hash of running totals for a topic and its consumers (published, acked, ...)."""
    return f"{_prefix()}{{{topic}}}:counters"


def rate_window(producer: str, second: int) -> str:
    """Events a producer published within one wall-clock second (for its rate limit)."""
    return f"{_prefix()}rate:{producer}:{second}"


def worker(worker_id: str) -> str:
    """A worker's heartbeat document; it expires when the worker stops beating."""
    return f"{_prefix()}worker:{worker_id}"


def workers() -> str:
    """Sorted set of worker ids scored by their last heartbeat time."""
    return f"{_prefix()}workers"


def group(consumer: str) -> str:
    """The consumer group name that a consumer uses on each of its topics' streams."""
    return consumer


# --- the monitor (eventflow.monitor) ------------------------------------------


def rate_history(topic: str, resolution: str) -> str:
    """Stream of a topic's counter readings, one entry per second (``"s"``) or minute (``"m"``).

    Entry ids are the reading's time, so two monitors cannot write the same
    second twice; the stream is capped, so the history stays bounded.
    """
    return f"{_prefix()}{{{topic}}}:history:{resolution}"


def monitor_snapshot() -> str:
    """The monitor's latest computed state (rates, health), as JSON with a short TTL."""
    return f"{_prefix()}monitor:snapshot"


def monitor_clocks() -> str:
    """Hash of each consumer's health clocks (backlog since, last ack at), so a restarted monitor keeps them."""
    return f"{_prefix()}monitor:clocks"


def monitor_leader() -> str:
    """Held (with a TTL) by the one monitor that samples; others wait as standbys."""
    return f"{_prefix()}monitor:leader"


def monitor_sampled_at() -> str:
    """When the monitor last sampled (Unix time), kept without a TTL so pages can say since when nobody has."""
    return f"{_prefix()}monitor:sampled-at"


def tail_watchers() -> str:
    """Sorted set of topics someone watches live, scored by when the interest expires."""
    return f"{_prefix()}monitor:watched"


# --- replay jobs (eventflow.replays) ------------------------------------------


def replay_progress(topic: str, replay_id: int) -> str:
    """Hash of a replay job's live state: cursor, sent/handled/failed counts, state.

    It shares the topic's hash tag with the lane's schedule, so one script can
    queue events and move the cursor together.
    """
    return f"{_prefix()}{{{topic}}}:replay:{replay_id}"


def replay_lease(topic: str, consumer: str) -> str:
    """Held (with a TTL) by the worker feeding the lane's one running replay job."""
    return f"{_prefix()}{{{topic}}}:replaylease:{consumer}"


def replay_stream(topic: str, consumer: str) -> str:
    """The lane's replay stream: what a history replay job sends again to that one consumer.

    Read by the consumer's group like the topic's own stream; what was
    delivered and acked is trimmed as the job goes and when it ends
    (``replays.trim_replay_stream``), so it holds about a job's window.
    """
    return f"{_prefix()}{{{topic}}}:replaystream:{consumer}"


def replay_starts() -> str:
    """Stream of replay jobs just started or cancelled: idle feeders block on it, so they take a job up at once."""
    return f"{_prefix()}replay:starts"


def switch(name: str) -> str:
    """An operator's on/off switch that handlers may read (set: on), e.g. the demo's "risk service fixed"."""
    return f"{_prefix()}switch:{name}"


def alert_incidents() -> str:
    """Hash of open alert incidents, ``<rule id>:<consumer>`` -> JSON; any monitor leader carries them on."""
    return f"{_prefix()}alerts:incidents"


def caused(topic: str, event_id: str) -> str:
    """List of the events published by handlers of one event (``consumer|topic|stream id``), for its causal tree."""
    return f"{_prefix()}{{{topic}}}:caused:{event_id}"
