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
from django.db import DatabaseError, close_old_connections

from . import conf, delivery, failures, keys, outbox, replay_worker, retention, tracing
from .connection import call_many, get_redis, is_cluster
from .database import drop_broken_connections
from .delivery import ConsumerSpec, Delivery, Settlement
from .events import of as event_of
from .handlers import Handler, Outcome, invoke, resolve

logger = logging.getLogger(__name__)

OUTBOX_INTERVAL = 5.0  # seconds between looks at a consumer's dead-letter outbox when nothing was parked


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
        self._unsettled: list[Settlement] = []  # outcomes Redis refused: written again before any new work
        self._deferred: Settlement | None = None  # a full batch's acks, written with the next read (see _take)
        self._carried: list[Delivery] = []  # held but unhandled when Redis refused a slow batch's outcomes
        self._refusals = 0
        self._next_drain = 0.0  # when to write the dead-letter outbox to the database (monotonic)
        self.infra_errors = 0  # database and Redis failures met since the start (not the handler's)
        self._infra_unreported = 0  # of those, not yet added to the Redis counter
        self.handler_error = ""  # why the handler does not import, while it does not
        self._replay_tally = replay_worker.Tally(spec.group)  # outcomes of replayed deliveries, counted per job
        self._replay_reader = replay_worker.Reader(spec.group, worker_name)  # the lanes' replay streams

    def run_once(self, block_ms: int | None = None) -> bool:
        """Handle one batch; return True if there was work (so run again at once)."""
        spec = self.spec
        if spec.paused or not spec.topics:
            self._settle_deferred()
            return False
        try:
            handler = self._handler()  # fail before taking events, not after
            client = get_redis(blocking=block_ms is not None)
            self._settle_parked()  # refused outcomes first: no new work until they are written
            self._ensure_groups(client)
            batch = self._batch
            work = self._take_carried()
            work += self._reclaim(client, batch)
        except BaseException:
            self._settle_deferred()  # the last batch's acks never wait on a step that cannot read
            raise
        work += self._take(client, batch, work)
        work += self._replay_reader.take(client, spec, batch)
        if not work and block_ms is not None:
            if self._replay_reader.holding:  # a replay runs: wait on its stream (briefly) instead
                work = self._replay_reader.wait(client, spec, batch, block_ms)
            else:
                work = delivery.read_new(client, spec.group, self.worker_name, spec.topics, batch, block_ms)
                self._replay_reader.look_again()  # a replay started meanwhile is read on the next step
        if work:
            started = time.monotonic()
            # A full batch at the largest size: more events are likely waiting, and the
            # next step's read can carry this batch's acks (one round trip a batch, not two).
            defer = len(work) >= conf.get("BATCH_SIZE") and not is_cluster(client)
            with tracing.consuming(spec.name):  # events its handlers publish are noted as this consumer's
                self.handle(handler, work, defer=defer)
            self._adapt_batch(len(work), time.monotonic() - started)
        self._drain_outbox()
        return bool(work)

    def _handler(self) -> Handler:
        """The consumer's handler; why it does not import is kept in ``handler_error`` (the heartbeat shows it)."""
        try:
            handler = resolve(self.spec)
        except Exception as exc:
            self.handler_error = f"{type(exc).__name__}: {exc}"[:1000]
            raise
        self.handler_error = ""
        return handler

    def note_infra_error(self, what: str) -> None:
        """Count a database or Redis failure (apart from handler failures) and log it."""
        self.infra_errors += 1
        self._infra_unreported += 1
        logger.warning("consumer %s: %s", self.spec.name, what)

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

    def handle(self, handler: Handler, work: list[Delivery], *, defer: bool = False) -> None:
        """Run the handler on each delivery and write the outcomes (one round trip for a quick batch).

        A slow batch writes its outcomes so far every third of the ack timeout, and renews
        its hold on the rest then; deliveries another worker took over meanwhile are
        skipped: neither acked nor failed here. ``defer``: a quick batch whose outcomes are
        all acks leaves them to the next step's read (``_take``) instead.
        """
        # Slow handlers can make a big batch outlast the ack timeout: unrenewed, its
        # unstarted events would be taken over and handled twice, though no worker died.
        every = self.spec.ack_timeout / 3
        self.in_flight = len(work)
        rest = self._handle_for(every, handler, work, defer)
        taken_over = 0
        while rest:
            held = self._still_held(rest)
            taken_over += len(rest) - len(held)
            self.in_flight -= len(rest) - len(held)
            rest = self._handle_for(every, handler, held)
        self.handled += len(work) - taken_over

    def _handle_for(
        self, seconds: float, handler: Handler, work: list[Delivery], defer: bool = False
    ) -> list[Delivery]:
        """Handle deliveries in order for about ``seconds`` and write their outcomes; return the unstarted rest."""
        settlement = Settlement(self.spec.group, self.spec.id)
        rest = self._run_until(time.monotonic() + seconds, handler, work, settlement)
        self._replay_tally.into(settlement)  # the replayed deliveries' counts go in the batch's transaction
        if defer and not rest and not self._unsettled and settlement.releases_only:
            self._deferred = settlement
            return rest
        self._unsettled.append(settlement)
        try:
            self._settle_parked()
        except redis.RedisError:
            self._carried = rest  # still this worker's: handled once Redis takes the outcomes
            raise
        return rest

    def _settle_parked(self) -> None:
        """Write the batches' outcomes Redis has not taken yet, oldest first; raise its error if it still refuses.

        A refused batch stays with this worker and is written again, whole, on
        its next step: its events were handled once and are not handled again,
        and their attempts are not spent on the outage.
        """
        client = get_redis()
        while self._unsettled:
            settlement = self._unsettled[0]
            if self._refusals:
                self._renew_holds(client, settlement)
            extra = self._infra_unreported
            try:
                errors = settlement.flush(client, self._infra_tally(extra))
            except redis.RedisError as exc:
                self._refused(exc)
                raise
            self._unsettled.pop(0)
            self._settled(settlement, extra, errors)

    def _take(self, client: redis.Redis, batch: int, taken: list[Delivery]) -> list[Delivery]:
        """New work from the stream and the schedules; a deferred batch's acks go first, in the same round trip.

        If Redis refuses them, they are parked (``_settle_parked``) and what this
        step took (``taken`` and the read) is carried, to be handled once they are written.
        """
        spec = self.spec
        reading = delivery.Take(client, spec.group, self.worker_name, spec.topics, batch, spec.ack_timeout)
        settlement, self._deferred = self._deferred, None
        if settlement is None:
            return reading.deliveries(call_many(client, reading.commands))
        extra = self._infra_unreported
        try:
            errors, replies = settlement.flush_then(client, reading.commands, self._infra_tally(extra))
        except redis.RedisError as exc:
            self._unsettled.insert(0, settlement)
            self._carried = taken
            if isinstance(exc, delivery.Refused):
                self._carried += self._read_anyway(reading, exc.replies)
            self._refused(exc)
            raise
        self._settled(settlement, extra, errors)
        return reading.deliveries(replies)

    def _read_anyway(self, reading: delivery.Take, replies: list) -> list[Delivery]:
        try:
            return reading.deliveries(replies)
        except redis.RedisError:
            return []  # the read failed as well: it took nothing

    def _settle_deferred(self) -> None:
        """Write a deferred batch's acks now (this step will not read)."""
        if self._deferred is not None:
            self._unsettled.insert(0, self._deferred)
            self._deferred = None
            self._settle_parked()

    def _infra_tally(self, extra: int) -> dict[tuple[str, str], int] | None:
        """The infrastructure errors not yet counted in Redis, as a settlement's extra counts."""
        return {(self.spec.topics[0], "infra"): extra} if extra else None

    def _refused(self, exc: redis.RedisError) -> None:
        self._refusals += 1
        self.note_infra_error(f"Redis refused a batch's outcomes ({exc}); writing them again")

    def _settled(self, settlement: Settlement, extra: int, errors: list[Exception]) -> None:
        self._refusals = 0
        self._infra_unreported -= extra
        self._after_settled(settlement, errors)

    def settle_before_stopping(self) -> None:
        """Try once more to write refused outcomes; left unwritten, their events come back to another worker."""
        if self._deferred is not None:
            self._unsettled.insert(0, self._deferred)
            self._deferred = None
        if self._unsettled:
            try:
                self._settle_parked()
            except redis.RedisError:
                logger.warning("consumer %s: stopping with %d unwritten batches", self.spec.name, len(self._unsettled))

    def _after_settled(self, settlement: Settlement, errors: list[Exception]) -> None:
        for error in errors:
            logger.warning("consumer %s: settling a batch: %s", self.spec.name, error)
            if "NOGROUP" in str(error):
                self.forget_groups()  # Redis lost its data: recreate the groups
        if settlement.has_outbox:
            self._next_drain = 0.0  # write the new dead letters to the database at once

    def _renew_holds(self, client: redis.Redis, settlement: Settlement) -> None:
        """Keep a refused batch's stream events from being taken over while Redis recovers (best effort)."""
        held = [item for item in settlement.items if not item.member]
        if not held:
            return
        try:
            delivery.refresh_hold(client, self.spec.group, self.worker_name, held, self.spec.ack_timeout)
        except redis.RedisError:
            pass  # the flush that follows reports the outage

    def _take_carried(self) -> list[Delivery]:
        if not self._carried:
            return []
        carried, self._carried = self._carried, []
        try:
            return self._still_held(carried)
        except redis.RedisError:
            self._carried = carried
            raise

    def _drain_outbox(self) -> None:
        """Write parked dead letters to the database when due; keep them, and go on, while it is down."""
        now = time.monotonic()
        if now < self._next_drain:
            return
        spec = self.spec
        try:
            drop_broken_connections()
            drained = failures.drain_outbox(get_redis(), spec.id, spec.group, spec.topics)
        except (DatabaseError, redis.RedisError) as exc:
            drop_broken_connections()
            self.note_infra_error(f"dead letters kept in Redis until the database takes them: {exc}")
            self._next_drain = now + 1.0
            return
        self._next_drain = now if drained else now + OUTBOX_INTERVAL

    def _run_until(
        self, deadline: float, handler: Handler, work: list[Delivery], settlement: Settlement
    ) -> list[Delivery]:
        """Handle deliveries in order until the monotonic ``deadline`` passes; return the unstarted rest.

        At least one is handled, so a tiny ack timeout still makes progress.
        """
        # The common case, kept short: a first or retried attempt of a wanted event,
        # acked with the batch (``Settlement.acked``); the rest go through ``_handle_one``.
        spec = self.spec
        max_attempts = spec.max_attempts if not spec.type_patterns else 0
        acked: list[Delivery] = []
        ack = acked.append
        clock = time.monotonic
        rest: list[Delivery] = []
        for index, item in enumerate(work):
            if (
                item.attempt <= max_attempts
                and item.failed_event is None
                and item.replay is None
                and not item.unreadable
            ):
                outcome = invoke(handler, event_of(item))
                if outcome.ok:
                    ack(item)
                else:
                    self._failed(item, outcome, settlement)
            else:
                self._handle_one(handler, item, settlement)
            if clock() >= deadline:  # the one check per event on the fast path
                rest = work[index + 1 :]
                break
        settlement.acked(acked)
        self.in_flight -= len(work) - len(rest)
        return rest

    def _still_held(self, rest: list[Delivery]) -> list[Delivery]:
        """Renew this worker's hold on ``rest``; return those no other worker took over."""
        spec = self.spec
        held = delivery.refresh_hold(get_redis(), spec.group, self.worker_name, rest, spec.ack_timeout)
        if len(held) < len(rest):
            logger.info(
                "consumer %s: another worker took over %d events of a slow batch", spec.name, len(rest) - len(held)
            )
        return held

    def _handle_one(self, handler: Handler, item: Delivery, settlement: Settlement) -> None:
        spec = self.spec
        if item.unreadable:
            # Not an event (another program's entry, or a truncated one): filed once, never handled.
            logger.warning(
                "consumer %s: unreadable entry %s on %s: %s", spec.name, item.stream_id, item.topic, item.unreadable
            )
            settlement.tally(item.topic, "errors")
            settlement.dead_letter(item, f"unreadable entry: {item.unreadable}", "")
            self._replay_tally.count(item, "failed")
            return
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
            outcome = invoke(handler, event_of(item))
        if outcome.ok and item.failed_event is not None:
            settlement.resolved(item)  # the row's resolution goes through the outbox, like a dead letter
            self._replay_tally.count(item, "handled")
        elif outcome.ok:
            settlement.finish(item, "acked")
            self._replay_tally.count(item, "handled")
        else:
            self._failed(item, outcome, settlement)

    def _failed(self, item: Delivery, outcome: Outcome, settlement: Settlement) -> None:
        spec = self.spec
        if outcome.infrastructure:
            # The handler's database or Redis is down: the same attempt again, later.
            drop_broken_connections()
            self.note_infra_error(f"event {item.stream_id or item.member}: {outcome.error}")
            settlement.retry(item, time.time() + spec.retry_delay(item.attempt), attempt=item.attempt)
            self._replay_tally.release(item)
            return
        settlement.tally(item.topic, "errors")
        if item.attempt < spec.max_attempts:
            settlement.retry(item, time.time() + spec.retry_delay(item.attempt))
            self._replay_tally.release(item)
            return
        # Out of attempts: its dead letter is parked in Redis with the batch's acks.
        settlement.dead_letter(item, outcome.error, outcome.traceback)
        self._replay_tally.count(item, "failed")

    def _ensure_groups(self, client: redis.Redis) -> None:
        # A group missing here was lost with Redis's data (or never made while Redis was
        # down): every event in the stream came after that, so the group starts at "0".
        # Starting at "$" would skip what producers published since the restart.
        for topic in self.spec.topics:
            if topic not in self._groups_ready:
                if delivery.ensure_group(client, topic, self.spec.group, start="0"):
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
                client, topic, self.spec.group, self.worker_name, self.spec.ack_timeout, count
            )
        return work

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
            self.runners.pop(gone, None)  # a runner thread meeting NOGROUP refreshes too

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
                name: {
                    "in_flight": r.in_flight,
                    "handled": r.handled,
                    "paused": r.spec.paused,
                    "infra_errors": r.infra_errors,
                    "handler_error": r.handler_error,
                }
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
                self._safely(outbox.drain)  # events whose transaction committed but whose store was missed
                next_trim = now + conf.get("RETENTION_INTERVAL")
            self.stop_event.wait(0.2)
        for thread in self._threads.values():
            thread.join(conf.get("SHUTDOWN_GRACE"))
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
                    # Redis lost its data, or the consumer was deleted or unsubscribed (its group
                    # removed on purpose): only groups the configuration still wants come back.
                    self._safely(self.refresh)
                    runner.forget_groups()
                    continue
                found, idle = False, self._backoff(idle, exc)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                found, idle = False, self._backoff(idle, exc)
            except DatabaseError as exc:
                drop_broken_connections()  # reopened on next use, once the database is back
                runner.note_infra_error(f"database unavailable ({exc}); retrying")
                found, idle = False, self._backoff(idle, None)
            except Exception:
                logger.exception("consumer %s: unexpected error; retrying", name)
                found, idle = False, self._backoff(idle, None)
            if not found and (runner.spec.paused or not runner.spec.topics):
                self.stop_event.wait(0.5)
        runner = self.runners.get(name)
        if runner is not None:
            runner.settle_before_stopping()
        close_old_connections()

    def _backoff(self, idle: float, exc: Exception | None) -> float:
        idle = min(5.0, max(0.1, idle * 2))
        if exc is not None:
            logger.warning("Redis unavailable (%s); retrying in %.1fs", exc, idle)
        self.stop_event.wait(idle)
        return idle

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
