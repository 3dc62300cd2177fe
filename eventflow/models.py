"""The configuration of a flow (topics, producers, consumers) and its failed events.

Events themselves live in Redis streams; the database holds what operators
edit in the admin and the failed events they search and replay.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.module_loading import import_string

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}\Z"
name_validator = RegexValidator(
    NAME_PATTERN,
    "Use 1–100 lowercase letters, digits, dots, dashes or underscores, starting with a letter or digit.",
)
TOKEN_PREFIX = "ef_"


TYPE_PATTERNS_HELP = (
    "Only events whose type matches one of these patterns, comma-separated; blank: every event. "
    "A pattern is a glob: * any run of characters, ? one character, [abc] one of a, b or c, "
    "[!abc] any other, e.g. 'order.*, refund.created, user.sign[iu]*'. Events of other types are "
    "skipped: acknowledged unhandled and counted as filtered, apart from handled ones."
)


def validate_type_patterns(value: str) -> None:
    """Refuse a pattern that cannot mean what it says: an unbalanced or empty [...] or a blank inside.

    ``fnmatch`` reads an unclosed "[" as a literal character, so ``[signup``
    would match no real event type and skip everything, silently.
    """
    for pattern in (p.strip() for p in value.split(",")):
        if problem := _pattern_problem(pattern):
            raise ValidationError(f"{pattern!r}: {problem}. {TYPE_PATTERNS_HELP}", code="invalid_pattern")


def _pattern_problem(pattern: str) -> str | None:
    if any(ch.isspace() for ch in pattern):
        return "a pattern has no spaces (separate patterns with commas)"
    depth, start = 0, -1
    for i, ch in enumerate(pattern):
        if ch == "[" and depth == 0:
            depth, start = 1, i
        elif ch == "]" and depth == 1:
            if i == start + 1 or (i == start + 2 and pattern[start + 1] == "!"):
                return "an empty [...] matches nothing"
            depth = 0
        elif ch == "]":
            return "a ']' without its '['"
    return "an unclosed '[' (a bracket matches one of the characters inside [...])" if depth else None


def hash_token(token: str) -> str:
    """Tokens are 256-bit random strings, so one SHA-256 is a safe, fast hash."""
    return hashlib.sha256(token.encode()).hexdigest()


IDENTITY_MAX_LENGTH = 110


def free_identity(model: type[models.Model], field_name: str, name: str) -> str:
    """The Redis identity for a new row named ``name``: the name itself, unless a row already holds it.

    A row renamed away from ``name`` keeps ``name`` as its identity, so a new
    row given that name gets ``name~2`` (``~`` never occurs in names, so no
    later name can collide with it).
    """
    candidate, n = name, 2
    while model._default_manager.filter(**{field_name: candidate}).exists():
        candidate, n = f"{name}~{n}", n + 1
    return candidate


class NamedManager(models.Manager):
    """Natural keys by name, so ``dumpdata``/``loaddata`` carry a whole flow."""

    def get_by_natural_key(self, name: str) -> Any:
        return self.get(name=name)


class Topic(models.Model):
    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[name_validator],
        help_text="Used in URLs: lowercase letters, digits, . _ -. Renaming keeps its events and subscribers.",
    )
    description = models.TextField(blank=True)
    retention_max_events = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=100_000,
        help_text="Keep about this many recent events in the stream (blank: no count limit).",
    )
    retention_max_age = models.DurationField(
        null=True,
        blank=True,
        help_text="Drop events older than this, e.g. '7 00:00:00' for 7 days (blank: no age limit).",
    )
    max_event_bytes = models.PositiveIntegerField(
        default=256 * 1024,
        validators=[MinValueValidator(64), MaxValueValidator(16 * 1024 * 1024)],
        help_text="Largest accepted event, envelope included, in bytes.",
    )
    data_schema = models.JSONField(
        null=True,
        blank=True,
        help_text="Optional JSON Schema that every event's data must satisfy.",
    )
    active = models.BooleanField(default=True, help_text="Inactive topics refuse new events (403).")
    # Its streams' and keys' name in Redis: the name it was created with, kept across renames
    # (renaming must not strand the backlog in a stream nobody reads).
    stream_name = models.CharField(
        "Redis identity",
        max_length=IDENTITY_MAX_LENGTH,
        unique=True,
        editable=False,
        help_text="The name it was created with; its stream and keys keep it when it is renamed.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = NamedManager()

    class Meta:
        ordering = ["name"]
        permissions = [("publish_test_event", "Can publish test events from the dashboard")]

    def __str__(self) -> str:
        return self.name

    def natural_key(self) -> tuple[str]:
        return (self.name,)

    def clean_fields(self, exclude: Any = None) -> None:
        from .schemas import MAX_SCHEMA_DEPTH, depth_over

        # JSONField's own check (json.dumps) recurses past Python's stack on a deep schema: clean() says why.
        if self.data_schema is not None and depth_over(self.data_schema, MAX_SCHEMA_DEPTH):
            exclude = {*(exclude or ()), "data_schema"}
        super().clean_fields(exclude)

    def clean(self) -> None:
        if self.data_schema is not None:
            from .schemas import check_schema

            try:
                check_schema(self.data_schema)
            except ValueError as exc:
                raise ValidationError({"data_schema": str(exc)}) from None


class Producer(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    description = models.TextField(blank=True)
    topics = models.ManyToManyField(Topic, related_name="producers", blank=True, help_text="Topics it may publish to.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_hint = models.CharField(
        max_length=16, editable=False, help_text="The token's first characters, to tell tokens apart."
    )
    max_events_per_second = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Refuse events past this rate with 429 and Retry-After (blank: no limit).",
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    expected_interval = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1.0)],
        help_text="Optional: seconds within which it should publish; the overview flags it when it does not.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = NamedManager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def natural_key(self) -> tuple[str]:
        return (self.name,)

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def set_new_token(self) -> str:
        """Give the producer a fresh token and return it; only its hash is kept."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.token_hash = hash_token(token)
        self.token_hint = token[:10]
        self.revoked_at = None
        return token

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])


class Consumer(models.Model):
    class Kind(models.TextChoices):
        PYTHON = "python", "Python callable"
        WEBHOOK = "webhook", "Webhook (HTTP POST)"

    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    description = models.TextField(blank=True)
    topics = models.ManyToManyField(Topic, related_name="consumers", help_text="Topics it subscribes to.")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.PYTHON)
    handler = models.CharField(
        max_length=255,
        help_text="Python: the dotted path to a callable taking one event, e.g. 'shop.handlers.bill'. "
        "Webhook: the http(s) URL each event is POSTed to, e.g. 'https://shop.example/hooks/orders'.",
    )
    webhook_secret = models.CharField(
        max_length=200,
        blank=True,
        help_text="Webhooks only, optional: signs every request (Standard Webhooks' webhook-signature header) "
        "so the receiver can check it came from here. 16+ random characters, or 'whsec_' and base64.",
    )
    event_types = models.CharField(
        max_length=500, blank=True, validators=[validate_type_patterns], help_text=TYPE_PATTERNS_HELP
    )
    max_attempts = models.PositiveIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Attempts before an event becomes a failed event.",
    )
    retry_initial = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0)],
        help_text="Seconds before the first retry.",
    )
    retry_factor = models.FloatField(
        default=2.0,
        validators=[MinValueValidator(1.0), MaxValueValidator(10.0)],
        help_text="Each retry waits this many times longer than the one before.",
    )
    retry_max = models.FloatField(
        default=300.0,
        validators=[MinValueValidator(0.0)],
        help_text="Longest wait between retries, in seconds.",
    )
    ack_timeout = models.FloatField(
        default=30.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(86400.0)],
        help_text="Seconds a worker may hold an event; after that another worker takes it over.",
    )
    stall_threshold = models.FloatField(
        default=30.0,
        validators=[MinValueValidator(1.0)],
        help_text="Seconds without an ack, while a backlog waits, before the consumer counts as stalled.",
    )
    failure_threshold = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of failed deliveries, over the health window, that counts as failing.",
    )
    failure_warning = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of failed attempts, over the health window, that raises a WARNING; 0: never.",
    )
    dead_letter_warning = models.PositiveIntegerField(
        default=1,
        help_text="Events dead-lettered (become failed events), over the health window, that raise a WARNING; "
        "0: never.",
    )
    paused = models.BooleanField(default=False, help_text="Paused consumers keep their backlog; resuming drains it.")
    # Its consumer groups' (and retry schedules', counters') name in Redis: the name it was
    # created with, kept across renames (a new group would deliver every retained event again).
    group_name = models.CharField(
        "Redis identity",
        max_length=IDENTITY_MAX_LENGTH,
        unique=True,
        editable=False,
        help_text="The name it was created with; its consumer groups keep it when it is renamed.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = NamedManager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def natural_key(self) -> tuple[str]:
        return (self.name,)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.retry_max < self.retry_initial:
            errors["retry_max"] = "Must be at least the initial retry delay."
        if self.handler and (problem := self._handler_problem()):
            errors["handler"] = problem
        if self.webhook_secret and (problem := self._secret_problem()):
            errors["webhook_secret"] = problem
        if errors:
            raise ValidationError(errors)

    def _handler_problem(self) -> str | None:
        from . import webhooks  # imported here: the HTTP client loads only where webhooks are used

        if self.is_webhook:
            return webhooks.url_problem(self.handler)
        if webhooks.url_problem(self.handler) is None:
            return "This is a URL: choose the webhook kind to have events POSTed to it."
        try:
            handler = import_string(self.handler)
        except Exception as exc:  # noqa: BLE001 - a module may fail at import in any way
            return f"Cannot import {self.handler!r}: {exc}"
        if not callable(handler):
            return f"{self.handler!r} is not callable."
        return None

    def _secret_problem(self) -> str | None:
        from . import webhooks

        if not self.is_webhook:
            return "Only webhook consumers sign requests: clear it, or choose the webhook kind."
        return webhooks.secret_problem(self.webhook_secret)

    @property
    def is_webhook(self) -> bool:
        return self.kind == self.Kind.WEBHOOK

    def type_patterns(self) -> list[str]:
        return [p.strip() for p in self.event_types.split(",") if p.strip()]


class FailedEventQuerySet(models.QuerySet):
    """The one vocabulary of where failed events stand (``FailedEvent.OPEN`` and friends)."""

    def open(self) -> FailedEventQuerySet:
        """Rows still waiting for an outcome: failed, failed again, or replaying."""
        # Said as "not closed": SQLite cannot search an index for NOT IN, so it walks the
        # last_failed_at index in page order and stops after a page, where "IN (open
        # statuses)" made it gather and sort every open row (0.26 s at 100,000 rows).
        return self.exclude(status__in=FailedEvent.CLOSED)

    def replayable(self) -> FailedEventQuerySet:
        """Rows an operator may replay or discard now: open and not already replaying."""
        return self.filter(status__in=FailedEvent.REPLAYABLE)

    def matching(
        self,
        *,
        event_type: str = "",
        error: str = "",
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        event_id: str = "",
        status: str = "",
    ) -> FailedEventQuerySet:
        """Rows whose fields match (an empty one matches all): the failed-events filter and a bulk replay's selection.

        ``error`` is contained text in any case; ``since``/``until`` bound the last failure, until excluded.
        """
        lookups = {
            "event_type": event_type,
            "error__icontains": error,
            "last_failed_at__gte": since,
            "last_failed_at__lt": until,
            "event_id": event_id,
            "status": status,
        }
        return self.filter(**{lookup: value for lookup, value in lookups.items() if value})


class FailedEvent(models.Model):
    class Status(models.TextChoices):
        FAILED = "failed", "Failed"
        REPLAYING = "replaying", "Replaying"
        RESOLVED = "resolved", "Resolved"
        FAILED_AGAIN = "failed_again", "Failed again"
        DISCARDED = "discarded", "Discarded"

    # The status vocabulary, said once; queries use FailedEventQuerySet's methods.
    REPLAYABLE = (Status.FAILED, Status.FAILED_AGAIN)
    OPEN = (*REPLAYABLE, Status.REPLAYING)
    CLOSED = (Status.RESOLVED, Status.DISCARDED)

    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="failed_events")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="failed_events")
    event_id = models.CharField(max_length=200, help_text="The event's CloudEvents id.")
    stream_id = models.CharField(max_length=40, blank=True, help_text="Its id in the topic's stream.")
    event_type = models.CharField(max_length=200, db_index=True)
    event = models.JSONField(help_text="The full event envelope.")
    error = models.TextField(help_text="The last error message.")
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    first_failed_at = models.DateTimeField(default=timezone.now)
    last_failed_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.FAILED, db_index=True)
    replay_count = models.PositiveIntegerField(default=0)
    replayed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Indexed: the monitor looks for rows whose replay began or ended lately.
    replayed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = FailedEventQuerySet.as_manager()

    class Meta:
        ordering = ["-last_failed_at", "-id"]
        constraints = [
            # One row per event and consumer: a worker that crashes between
            # writing the row and acking the event cannot create a second one.
            models.UniqueConstraint(fields=["consumer", "topic", "event_id"], name="one_failure_per_delivery")
        ]
        indexes = [
            models.Index(fields=["consumer", "status", "-last_failed_at"]),
            models.Index(fields=["topic", "status", "-last_failed_at"]),
        ]
        permissions = [
            ("replay_failedevent", "Can replay failed events"),
            ("edit_failedevent_data", "Can edit a failed event's data and replay the corrected copy"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → {self.consumer_id}"

    @property
    def is_replayable(self) -> bool:
        return self.status in self.REPLAYABLE


class HandledEvent(models.Model):
    """Marks an event whose effects a handler committed (see ``eventflow.idempotent``)."""

    scope = models.CharField(max_length=100, help_text="Usually the consumer's name.")
    # CloudEvents' identity is source + id: two producers may both publish an id "1001".
    source = models.CharField(max_length=200, default="")
    event_id = models.CharField(max_length=200)
    handled_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "source", "event_id"], name="handled_once_per_scope_and_source")
        ]

    def __str__(self) -> str:
        return f"{self.scope}: {self.event_id}"


class Replay(models.Model):
    """A replay job: events sent again to one consumer on one topic, bounded, throttled, audited.

    The row is the audit record (who asked, when, why, which range) and the
    job's plan; while it runs, its live counts are in Redis (``eventflow.replays``)
    and copied here as it goes. ``history`` replays re-read the topic's stream
    from ``from_id`` to ``to_id`` (stream ids, both included); ``failed`` replays
    send the lane's replayable failed events whose ids are at most ``to_id``;
    an ``edit`` replay sends one failed event's corrected copy (``FailedEventEdit``).
    """

    class Source(models.TextChoices):
        HISTORY = "history", "Retained history"
        FAILED = "failed", "Failed events"
        EDIT = "edit", "An edited failed event"

    class State(models.TextChoices):
        PLANNED = "planned", "Planned"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    source = models.CharField(max_length=20, choices=Source.choices, default=Source.HISTORY)
    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="replays")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="replays")
    state = models.CharField(max_length=20, choices=State.choices, default=State.PLANNED, db_index=True)
    from_id = models.CharField(max_length=60, help_text="First stream id (or failed-event id) of the range.")
    to_id = models.CharField(max_length=60, help_text="Last one: never open-ended, fixed when the replay starts.")
    types = models.JSONField(default=list, blank=True, help_text="Only events whose type matches one of these globs.")
    key = models.CharField(max_length=200, blank=True, help_text="Only events with this ordering key.")
    field_path = models.CharField(max_length=200, blank=True, help_text="Only events whose data has this field…")
    field_value = models.JSONField(null=True, blank=True, help_text="…equal to this value.")
    selection = models.JSONField(
        default=dict, blank=True, help_text="Failed events only: which rows besides the types (a page's filter)."
    )
    rate = models.FloatField(null=True, blank=True, help_text="Events per second at most (blank: no limit).")
    reason = models.TextField(help_text="Why (required): kept as the audit record.")
    note = models.TextField(blank=True, help_text="What the plan found, e.g. that retention cut part of the range.")
    cursor = models.CharField(max_length=60, blank=True, help_text="The last stream id (or failed-event id) fed.")
    matched = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    handled = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["consumer", "topic", "state"])]

    def __str__(self) -> str:
        return f"replay {self.pk}: {self.topic_id} → {self.consumer_id} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in {self.State.PLANNED, self.State.RUNNING}


class FailedEventEdit(models.Model):
    """A failed event's data corrected by an operator, and the replay that sent the corrected copy.

    The original is never changed: the event stays in the topic's stream and
    in ``failed_event.event``. Who edited, when and why are the replay's
    (``requested_by``, ``created_at``, ``reason``): one audit record per send.
    """

    failed_event = models.ForeignKey(FailedEvent, on_delete=models.CASCADE, related_name="edits")
    replay = models.OneToOneField(Replay, on_delete=models.CASCADE, related_name="edit")
    envelope = models.JSONField(help_text="The corrected copy as sent: the original envelope with the edited data.")
    diff = models.JSONField(
        default=list, help_text="What changed, path by path: [{path, op, old, new}] (the first ones if many did)."
    )
    changes = models.PositiveIntegerField(help_text="How many paths changed (the diff may list fewer).")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"edit of failed event {self.failed_event_id} (replay {self.replay_id})"


class OutboxEvent(models.Model):
    """An event written inside the caller's transaction, published once it commits (``eventflow.outbox``)."""

    topic = models.CharField(max_length=100)
    source = models.CharField(max_length=200)
    attributes = models.JSONField(help_text="The event in plain form, with its id and time fixed at write.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_error = models.TextField(blank=True, help_text="Why the event could not be published (it stays here).")

    def __str__(self) -> str:
        return f"{self.topic}: {self.attributes.get('id')}"


# --- alerts from health changes (eventflow.alerts) ------------------------------------


class AlertChannel(models.Model):
    """Where alerts go: a webhook (Slack- and Teams-compatible JSON) or email addresses."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook (Slack, Teams, or any JSON receiver)"
        EMAIL = "email", "Email (Django's email backend)"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.WEBHOOK)
    url = models.URLField(max_length=500, blank=True, help_text="Webhook: the URL alerts are POSTed to.")
    secret = models.CharField(
        max_length=200,
        blank=True,
        help_text="Webhook, optional: signs each alert (Standard Webhooks' webhook-signature header), "
        "as consumer webhooks are. 16+ random characters, or 'whsec_' and base64.",
    )
    recipients = models.CharField(max_length=500, blank=True, help_text="Email: comma-separated addresses.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from . import webhooks

        errors: dict[str, str] = {}
        if self.kind == self.Kind.WEBHOOK:
            if problem := (webhooks.url_problem(self.url) if self.url else "Enter the URL alerts are POSTed to."):
                errors["url"] = problem
            if self.secret and (problem := webhooks.secret_problem(self.secret)):
                errors["secret"] = problem
        elif not self.recipient_list():
            errors["recipients"] = "Enter at least one address."
        if errors:
            raise ValidationError(errors)

    def recipient_list(self) -> list[str]:
        return [r.strip() for r in self.recipients.split(",") if r.strip()]


class AlertRule(models.Model):
    """Alert when a consumer's health is ``threshold`` or worse for ``for_seconds`` (Burrow's notifier)."""

    class Threshold(models.TextChoices):
        # Worst last, as eventflow.health ranks them: a rule also fires on every status after its own.
        LAGGING = "LAGGING", "LAGGING or worse"
        STALLED = "STALLED", "STALLED or worse"
        FAILING = "FAILING", "FAILING or STOPPED"
        STOPPED = "STOPPED", "STOPPED only"

    name = models.CharField(max_length=100, unique=True)
    consumer = models.ForeignKey(
        Consumer,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_rules",
        help_text="Blank: every consumer.",
    )
    threshold = models.CharField(max_length=20, choices=Threshold.choices, default=Threshold.STALLED)
    for_seconds = models.FloatField(
        default=60.0, validators=[MinValueValidator(0.0)], help_text="How long the status must last before alerting."
    )
    repeat_interval = models.FloatField(
        default=3600.0,
        validators=[MinValueValidator(0.0)],
        help_text="Seconds between reminders while it lasts; 0: no reminders.",
    )
    send_once = models.BooleanField(default=False, help_text="One alert per incident, never a reminder.")
    send_resolved = models.BooleanField(default=True, help_text="Say so when the consumer is healthy again.")
    channels = models.ManyToManyField(AlertChannel, related_name="rules")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SentAlert(models.Model):
    """One alert sent (or tried) to one channel: the alert history."""

    class Kind(models.TextChoices):
        FIRING = "firing", "Firing"
        REMINDER = "reminder", "Reminder"
        RESOLVED = "resolved", "Resolved"
        TEST = "test", "Test"

    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="sent")
    channel = models.ForeignKey(AlertChannel, null=True, on_delete=models.SET_NULL, related_name="sent")
    consumer = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, blank=True, help_text="The consumer's health when it was sent.")
    text = models.TextField()
    ok = models.BooleanField(default=True)
    error = models.TextField(blank=True)
    sent_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-sent_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.consumer}: {self.text[:60]}"
