"""Worker processes: each runs its consumers' handlers, one thread per consumer.

Within one consumer, all worker processes are members of the same consumer
group on each topic's stream and compete for events. A runner's loop is one
testable step, ``ConsumerRunner.run_once()``; ``Worker.run()`` drives the
steps in threads, refreshes the configuration and writes heartbeats.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable

import orjson
import redis
from django.db import close_old_connections

from . import conf, delivery, failures, keys, replay_worker, retention
from .connection import get_redis
from .delivery import ConsumerSpec, Delivery, Settlement
from .events import Event
from .handlers import Handler, Outcome, invoke, resolve

logger = logging.getLogger(__name__)


class ConsumerRunner:
    """Works one consumer's lanes (its topics) on behalf of one worker."""

    def __init__(self, spec: ConsumerSpec, worker_name: str) -> None:
        self.spec = spec
        self.worker_name = worker_name
        self.in_flight = 0
        self.handled = 0
        self._groups_ready: set[str] = set()
        self._next_reclaim = 0.0
        self._batch = 1  # grows while batches are quick; see _adapt_batch
        self._dead_letters: list[tuple[Delivery, str, str]] = []  # this batch's, written before its acks
        self._replay_tally = replay_worker.Tally(spec.name)  # outcomes of replayed deliveries, counted per job
        self._replay_reader = replay_worker.Reader(spec.name, worker_name)  # the lanes' replay streams

    def run_once(self, block_ms: int | None = None) -> bool:
        """Handle one batch; return True if there was work (so run again at once)."""
        spec = self.spec
        if spec.paused or not spec.topics:
            return False
        handler = resolve(spec)  # fail before taking events, not after
        client = get_redis(blocking=block_ms is not None)
        self._ensure_groups(client)
        batch = self._batch
        work = self._reclaim(client, batch)
        work += delivery.take(client, spec.name, self.worker_name, spec.topics, batch, spec.ack_timeout)
        work += self._replay_reader.take(client, spec, batch, self._replay_tally)
        if not work and block_ms is not None:
            if self._replay_reader.holding:  # a replay runs: wait on its stream (briefly) instead
                work = self._replay_reader.wait(client, spec, batch, block_ms)
            else:
                work = delivery.read_new(client, spec.name, self.worker_name, spec.topics, batch, block_ms)
        if work:
            started = time.monotonic()
            self.handle(handler, work)
            self._adapt_batch(len(work), time.monotonic() - started)
        return bool(work)

    def _adapt_batch(self, size: int, seconds: float) -> None:
        """Size batches to take about ``BATCH_SECONDS``.

        Fast handlers get big batches (fewer round trips); slow ones get small
        batches, so the other workers share the backlog and a stopping worker
        holds few unstarted events.
        """
        limit = conf.get("BATCH_SIZE")
        if seconds > conf.get("BATCH_SECONDS"):
            self._batch = max(1, self._batch // 2)
        elif size >= self._batch:
            self._batch = min(limit, self._batch * 2)

    def handle(self, handler: Handler, work: list[Delivery]) -> None:
        """Run the handler on each delivery and write the outcomes (one round trip for a quick batch).

        A slow batch writes its outcomes so far every third of the ack timeout, and renews
        its hold on the rest then; deliveries another worker took over meanwhile are
        skipped: neither acked nor failed here.
        """
        # Slow handlers can make a big batch outlast the ack timeout: unrenewed, its
        # unstarted events would be taken over and handled twice, though no worker died.
        every = self.spec.ack_timeout / 3
        self.in_flight = len(work)
        rest = self._handle_for(every, handler, work)
        taken_over = 0
        while rest:
            held = self._still_held(rest)
            taken_over += len(rest) - len(held)
            self.in_flight -= len(rest) - len(held)
            rest = self._handle_for(every, handler, held)
        self.handled += len(work) - taken_over

    def _handle_for(self, seconds: float, handler: Handler, work: list[Delivery]) -> list[Delivery]:
        """Handle deliveries in order for about ``seconds`` and write their outcomes; return the unstarted rest."""
        settlement = Settlement(self.spec.name)
        self._dead_letters = []
        rest = self._run_until(time.monotonic() + seconds, handler, work, settlement)
        if self._dead_letters:
            # The rows are written before their events are released (acked) below.
            failures.record_many(self.spec.id, self._dead_letters)
        settlement.flush(get_redis())
        # The replayed deliveries' counts are written with the next read (replay_worker.Reader.take).
        return rest

    def _run_until(
        self, deadline: float, handler: Handler, work: list[Delivery], settlement: Settlement
    ) -> list[Delivery]:
        """Handle deliveries in order until the monotonic ``deadline`` passes; return the unstarted rest.

        At least one is handled, so a tiny ack timeout still makes progress.
        """
        plain = self._plain_delivery
        clock = time.monotonic
        for index, item in enumerate(work):
            if plain(item):
                # The common case, kept short: a first or retried attempt of a wanted event.
                outcome = invoke(
                    handler, Event.from_envelope(item.envelope, attempt=item.attempt, stream_id=item.stream_id)
                )
                if outcome.ok:
                    settlement.finish(item, "acked")
                else:
                    self._failed(item, outcome, settlement)
            else:
                self._handle_one(handler, item, settlement)
            self.in_flight -= 1
            if clock() >= deadline:  # the one check per event on the fast path
                return work[index + 1 :]
        return []

    def _still_held(self, rest: list[Delivery]) -> list[Delivery]:
        """Renew this worker's hold on ``rest``; return those no other worker took over."""
        spec = self.spec
        held = delivery.refresh_hold(get_redis(), spec.name, self.worker_name, rest, spec.ack_timeout)
        if len(held) < len(rest):
            logger.info(
                "consumer %s: another worker took over %d events of a slow batch", spec.name, len(rest) - len(held)
            )
        return held

    def _plain_delivery(self, item: Delivery) -> bool:
        spec = self.spec
        return (
            item.failed_event is None
            and item.replay is None
            and item.attempt <= spec.max_attempts
            and not spec.type_patterns
        )

    def _handle_one(self, handler: Handler, item: Delivery, settlement: Settlement) -> None:
        spec = self.spec
        if not spec.accepts_type(item.envelope.get("type", "")):
            settlement.finish(item, "skipped")
            self._replay_tally.count(item, "skipped")
            return
        if item.attempt > spec.max_attempts:
            # Delivered again and again without an ack: its workers keep dying on it.
            outcome = Outcome(
                ok=False,
                error=f"abandoned after {item.attempt - 1} deliveries without an ack "
                "(the workers handling it stopped or exceeded the ack timeout)",
            )
        else:
            event = Event.from_envelope(
                item.envelope, attempt=item.attempt, stream_id=item.stream_id, replay=item.replay
            )
            outcome = invoke(handler, event)
        if outcome.ok:
            settlement.finish(item, "acked")
            self._replay_tally.count(item, "handled")
            if item.failed_event is not None:
                failures.resolve(item.failed_event)
            return
        self._failed(item, outcome, settlement)

    def _failed(self, item: Delivery, outcome: Outcome, settlement: Settlement) -> None:
        spec = self.spec
        settlement.tally(item.topic, "errors")
        if item.attempt < spec.max_attempts:
            settlement.retry(item, time.time() + spec.retry_delay(item.attempt))
            self._replay_tally.release(item)
            return
        # Out of attempts: its FailedEvent row is written with the batch's others.
        self._dead_letters.append((item, outcome.error, outcome.traceback))
        settlement.finish(item, "dead")
        self._replay_tally.count(item, "failed")

    def _ensure_groups(self, client: redis.Redis) -> None:
        # A group missing here was lost with Redis's data (or never made while Redis was
        # down): every event in the stream came after that, so the group starts at "0".
        # Starting at "$" would skip what producers published since the restart.
        for topic in self.spec.topics:
            if topic not in self._groups_ready:
                if delivery.ensure_group(client, topic, self.spec.name, start="0"):
                    logger.info("created group %s on topic %s", self.spec.name, topic)
                self._groups_ready.add(topic)

    def _reclaim(self, client: redis.Redis, count: int) -> list[Delivery]:
        now = time.monotonic()
        if now < self._next_reclaim:
            return []
        # Look at least four times per ack timeout, so a dead worker's events wait
        # little longer than the timeout itself before another worker takes them.
        self._next_reclaim = now + min(conf.get("RECLAIM_INTERVAL"), self.spec.ack_timeout / 4)
        work: list[Delivery] = []
        for topic in self.spec.topics:
            work += delivery.reclaim_stale(
                client, topic, self.spec.name, self.worker_name, self.spec.ack_timeout, count
            )
        return work

    def flush_replay_tally(self) -> None:
        self._replay_tally.flush(get_redis())

    def forget_groups(self) -> None:
        """Check the groups again (after Redis lost them, e.g. a restart without persistence)."""
        self._groups_ready.clear()


def load_specs(names: Iterable[str] | None = None) -> list[ConsumerSpec]:
    from .models import Consumer

    consumers = Consumer.objects.prefetch_related("topics").order_by("name")
    if names:
        consumers = consumers.filter(name__in=list(names))
    return [ConsumerSpec.from_model(c) for c in consumers]


class Worker:
    """One worker process: a runner thread per consumer, plus heartbeats."""

    def __init__(self, consumer_names: Iterable[str] | None = None) -> None:
        self.consumer_names = list(consumer_names or [])
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.started_at = time.time()
        self.stop_event = threading.Event()
        self.runners: dict[str, ConsumerRunner] = {}
        self._threads: dict[str, threading.Thread] = {}

    # -- one step, for tests and for the loop ---------------------------------

    def refresh(self) -> None:
        """Load consumer settings from the database and update the runners."""
        specs = load_specs(self.consumer_names)
        for spec in specs:
            runner = self.runners.get(spec.name)
            if runner is None:
                self.runners[spec.name] = ConsumerRunner(spec, self.id)
            else:
                runner.spec = spec
        for gone in set(self.runners) - {s.name for s in specs}:
            self.runners.pop(gone)

    def run_once(self) -> bool:
        """Refresh, then give every consumer one step; return True if any had work."""
        self.refresh()
        return any([runner.run_once() for runner in list(self.runners.values())])

    def beat(self) -> None:
        """Write this worker's heartbeat: who it is, what it runs, what it holds."""
        now = time.time()
        document = {
            "id": self.id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": self.started_at,
            "beat_at": now,
            "consumers": {
                name: {"in_flight": r.in_flight, "handled": r.handled, "paused": r.spec.paused}
                for name, r in self.runners.items()
            },
        }
        pipe = get_redis().pipeline(transaction=False)
        pipe.set(keys.worker(self.id), orjson.dumps(document), ex=conf.get("HEARTBEAT_TTL"))
        pipe.zadd(keys.workers(), {self.id: now})
        pipe.zremrangebyscore(keys.workers(), "-inf", now - 3600)
        pipe.execute()

    # -- the long-running loop -------------------------------------------------

    def run(self) -> None:
        """Run until ``stop()``; in-flight batches finish before it returns."""
        logger.info("worker %s starting", self.id)
        next_refresh = next_trim = 0.0
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now >= next_refresh:
                close_old_connections()  # outlive database restarts
                self._safely(self.refresh)
                self._safely(self.beat)
                self._start_threads()
                next_refresh = now + min(conf.get("CONFIG_REFRESH_INTERVAL"), conf.get("HEARTBEAT_INTERVAL"))
            if now >= next_trim:
                self._safely(retention.trim_all)
                next_trim = now + conf.get("RETENTION_INTERVAL")
            self.stop_event.wait(0.2)
        for thread in self._threads.values():
            thread.join(conf.get("SHUTDOWN_GRACE"))
        self._safely(self._flush_replay_tallies)
        self._safely(self._sign_off)
        logger.info("worker %s stopped", self.id)

    def stop(self) -> None:
        self.stop_event.set()

    def _start_threads(self) -> None:
        self._start_feeder()
        for name in self.runners:
            thread = self._threads.get(name)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self._drive, args=(name,), name=f"consumer-{name}", daemon=True)
                self._threads[name] = thread
                thread.start()

    def _start_feeder(self) -> None:
        """Run the replay feeder (``eventflow.replay_worker``) for this worker's consumers in a thread of its own."""
        thread = self._threads.get(replay_worker.FEEDER_THREAD)
        if thread is None or not thread.is_alive():
            feeder = replay_worker.Feeder(self.id, lambda: list(self.runners))
            name = replay_worker.FEEDER_THREAD
            thread = threading.Thread(target=feeder.run, args=(self.stop_event,), name=name, daemon=True)
            self._threads[replay_worker.FEEDER_THREAD] = thread
            thread.start()

    def _drive(self, name: str) -> None:
        """Step one consumer until the worker stops or the consumer goes away."""
        idle = 0.0
        while not self.stop_event.is_set():
            runner = self.runners.get(name)
            if runner is None:
                return
            try:
                found = runner.run_once(block_ms=200)
                idle = 0.0
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    runner.forget_groups()  # Redis lost its data; recreate the groups
                    continue
                found, idle = False, self._backoff(idle, exc)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                found, idle = False, self._backoff(idle, exc)
            except Exception:
                logger.exception("consumer %s: unexpected error; retrying", name)
                found, idle = False, self._backoff(idle, None)
            if not found and (runner.spec.paused or not runner.spec.topics):
                self.stop_event.wait(0.5)
        close_old_connections()

    def _backoff(self, idle: float, exc: Exception | None) -> float:
        idle = min(5.0, max(0.1, idle * 2))
        if exc is not None:
            logger.warning("Redis unavailable (%s); retrying in %.1fs", exc, idle)
        self.stop_event.wait(idle)
        return idle

    def _flush_replay_tallies(self) -> None:
        """Write the last batch's replay counts, which wait for a next read that will not come."""
        for runner in self.runners.values():
            runner.flush_replay_tally()

    def _sign_off(self) -> None:
        pipe = get_redis().pipeline(transaction=False)
        pipe.delete(keys.worker(self.id))
        pipe.zrem(keys.workers(), self.id)
        pipe.execute()

    def _safely(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - the loop outlives Redis and database hiccups
            logger.warning("worker %s: %s failed: %s", self.id, step.__name__, exc)
