"""A throwaway namespace for one benchmark run: its own key prefix, topics and consumers.

Everything the benchmark creates lives under names starting ``bench-<run>``
and keys starting ``<prefix>bench<run>:``; ``close()`` removes all of it, and
stops every process the run started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.test import override_settings

from eventflow import conf, connection, topics

ROOT = Path(settings.BASE_DIR)


class Sandbox:
    """Names, settings and child processes of one benchmark run."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.redis_url = connection.resolved_url()
        self.prefix = f"{conf.get('KEY_PREFIX')}bench{self.run}:"
        self.token = ""
        self._override = override_settings(
            EVENTFLOW_KEY_PREFIX=self.prefix,
            EVENTFLOW_REDIS_URL=self.redis_url,
            EVENTFLOW_EMBEDDED_REDIS=False,
            EVENTFLOW_SYNC=False,
        )
        self._children: list[subprocess.Popen] = []
        self._names: list[str] = []

    def __enter__(self) -> Sandbox:
        self._override.enable()
        topics.clear_cache()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- configuration rows --------------------------------------------------------

    def name(self, what: str) -> str:
        return f"bench-{self.run}-{what}"

    def topic(self, what: str, **options: Any):
        from eventflow.models import Topic

        # No retention limit unless asked: a benchmark's backlog must not be trimmed under it.
        options.setdefault("retention_max_events", None)
        topic = Topic.objects.create(name=self.name(what), **options)
        self._names.append(topic.name)
        return topic

    def producer(self, *topic_rows: Any) -> str:
        """Create the run's producer (allowed on ``topic_rows``) and return its token."""
        from eventflow.models import Producer

        producer = Producer(name=self.name("producer"))
        self.token = producer.set_new_token()
        producer.save()
        producer.topics.add(*topic_rows)
        return self.token

    def producer_for(self, topic_row: Any) -> None:
        """Allow the run's producer on one more topic."""
        from eventflow.models import Producer

        Producer.objects.get(name=self.name("producer")).topics.add(topic_row)

    def consumer(self, what: str, handler: str, *topic_rows: Any, **options: Any):
        from eventflow.models import Consumer

        consumer = Consumer.objects.create(name=self.name(what), handler=handler, **options)
        consumer.topics.add(*topic_rows)
        return consumer

    # -- child processes -------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a child that shares this run's Redis namespace and database."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(
            REDIS_URL=self.redis_url,
            EVENTFLOW_KEY_PREFIX=self.prefix,
            DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "dashboard.settings"),
            PYTHONPATH=str(ROOT),
            DATABASE_URL=database_url(),
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def spawn(self, args: list[str], *, pass_fds: tuple[int, ...] = (), **extra_env: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            args,
            env=self.env(**extra_env),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=pass_fds,
        )
        self._children.append(proc)
        return proc

    def manage(self, *args: str, **extra_env: str) -> subprocess.Popen:
        return self.spawn([sys.executable, str(ROOT / "manage.py"), *args], **extra_env)

    def stop(self, proc: subprocess.Popen, grace: float = 5.0) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc in self._children:
            self._children.remove(proc)

    def stop_all(self, procs: list[subprocess.Popen], grace: float = 5.0) -> None:
        """Stop several processes at once: signal every one, then wait for each."""
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            self.stop(proc, grace)

    # -- cleanup ----------------------------------------------------------------

    def close(self) -> None:
        self.stop_all(list(self._children))
        try:
            self._delete_rows()
            self._delete_keys()
        finally:
            self._override.disable()
            topics.clear_cache()
            connection.reset()

    def _delete_rows(self) -> None:
        from django.contrib.auth import get_user_model

        from eventflow.models import Consumer, FailedEvent, Producer, Topic

        pattern = f"bench-{self.run}-"
        get_user_model().objects.filter(username__startswith=pattern).delete()
        FailedEvent.objects.filter(consumer__name__startswith=pattern).delete()
        Consumer.objects.filter(name__startswith=pattern).delete()
        Producer.objects.filter(name__startswith=pattern).delete()
        Topic.objects.filter(name__startswith=pattern).delete()

    def _delete_keys(self) -> None:
        client = connection.get_redis()
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{self.prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)


def database_url() -> str:
    """The URL of the database this process uses, for child processes."""
    from django.db import connection as db

    params = db.settings_dict
    if params["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{params['NAME']}"
    user = params.get("USER") or ""
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{params['NAME']}"


def wait_until(condition: Any, timeout: float, interval: float = 0.005) -> bool:
    """Poll ``condition()`` until truthy; return False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


@contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)
