"""Admin pages an operator can live in: the flow's configuration and its failed events."""

from __future__ import annotations

from typing import Any

import redis
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.html import format_html

from . import alerts, failures, lanes
from .models import AlertChannel, AlertRule, Consumer, FailedEvent, Producer, Replay, SentAlert, Topic
from .permissions import can_replay
from .schemas import MAX_SCHEMA_DEPTH


class SchemaField(forms.JSONField):
    """A topic schema's text box: JSON nested past Python's stack is a field error, not a 500."""

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except RecursionError:
            raise ValidationError(f"the schema is nested more than {MAX_SCHEMA_DEPTH} levels deep") from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:  # shown again as the text that was sent
            return forms.fields.InvalidJSONInput(data)


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ["name", "active", "retention", "max_event_bytes", "has_schema", "producer_count", "consumer_count"]
    list_filter = ["active"]
    search_fields = ["name", "description"]
    readonly_fields = ["stream_name"]
    fieldsets = [
        (None, {"fields": ["name", "description", "active", "stream_name"]}),
        ("Retention", {"fields": ["retention_max_events", "retention_max_age"]}),
        ("Validation", {"fields": ["max_event_bytes", "data_schema"]}),
    ]
    formfield_overrides = {models.JSONField: {"form_class": SchemaField}}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(n_producers=Count("producers", distinct=True), n_consumers=Count("consumers", distinct=True))
        )

    @admin.display(description="retention")
    def retention(self, topic: Topic) -> str:
        parts = []
        if topic.retention_max_events:
            parts.append(f"{topic.retention_max_events:,} events")
        if topic.retention_max_age:
            parts.append(f"{topic.retention_max_age}")
        return " / ".join(parts) or "unbounded"

    @admin.display(boolean=True, description="schema")
    def has_schema(self, topic: Topic) -> bool:
        return topic.data_schema is not None

    @admin.display(description="producers", ordering="n_producers")
    def producer_count(self, topic: Topic) -> int:
        return topic.n_producers

    @admin.display(description="consumers", ordering="n_consumers")
    def consumer_count(self, topic: Topic) -> int:
        return topic.n_consumers


@admin.register(Producer)
class ProducerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "topic_list",
        "token_hint",
        "token_status",
        "max_events_per_second",
        "last_seen_at",
        "created_at",
    ]
    list_filter = ["topics", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "description", "token_hint"]
    filter_horizontal = ["topics"]
    readonly_fields = ["token_hint", "revoked_at", "last_seen_at", "created_at"]
    actions = ["rotate_tokens", "revoke_tokens"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("topics")

    @admin.display(description="topics")
    def topic_list(self, producer: Producer) -> str:
        return ", ".join(t.name for t in producer.topics.all()) or "—"

    @admin.display(description="token")
    def token_status(self, producer: Producer) -> str:
        return "revoked" if producer.is_revoked else "active"

    def save_model(self, request: HttpRequest, producer: Producer, form, change: bool) -> None:
        if not change:
            token = producer.set_new_token()
            super().save_model(request, producer, form, change)
            self._show_token(request, producer, token)
        else:
            super().save_model(request, producer, form, change)

    @admin.action(description="Rotate the token of the selected producers (old tokens stop working)")
    def rotate_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        for producer in queryset:
            token = producer.set_new_token()
            producer.save(update_fields=["token_hash", "token_hint", "revoked_at"])
            self._show_token(request, producer, token)

    @admin.action(description="Revoke the token of the selected producers")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} token(s). Rotate to issue a new one.", messages.SUCCESS)

    def _show_token(self, request: HttpRequest, producer: Producer, token: str) -> None:
        self.message_user(
            request,
            format_html(
                "Token for <strong>{}</strong> (shown only now; copy it): <code>{}</code>", producer.name, token
            ),
            messages.WARNING,
        )


@admin.register(Consumer)
class ConsumerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "topic_list",
        "kind",
        "handler",  # never the webhook secret: lists are for looking, not for copying secrets
        "event_types",
        "max_attempts",
        "ack_timeout",
        "paused",
        "open_failures",
    ]
    list_filter = ["paused", "kind", "topics"]
    list_editable = ["paused"]
    search_fields = ["name", "description", "handler"]
    filter_horizontal = ["topics"]
    actions = ["pause", "resume", "delete_selected"]
    readonly_fields = ["group_name"]
    fieldsets = [
        (None, {"fields": ["name", "description", "topics", "paused", "group_name"]}),
        ("Handler", {"fields": ["kind", "handler", "webhook_secret", "event_types"]}),
        ("Retries", {"fields": ["max_attempts", "retry_initial", "retry_factor", "retry_max", "ack_timeout"]}),
        ("Health", {"fields": ["stall_threshold", "failure_threshold", "failure_warning", "dead_letter_warning"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        replayable = Q(failed_events__status__in=FailedEvent.REPLAYABLE)
        return (
            super()
            .get_queryset(request)
            .prefetch_related("topics")
            .annotate(n_failures=Count("failed_events", filter=replayable))
        )

    @admin.display(description="topics")
    def topic_list(self, consumer: Consumer) -> str:
        return ", ".join(t.name for t in consumer.topics.all()) or "—"

    @admin.display(description="failed events", ordering="n_failures")
    def open_failures(self, consumer: Consumer) -> int:
        return consumer.n_failures

    # Deleting asks first with what the consumer holds (templates/admin/eventflow/consumer/):
    # its pending, scheduled and undelivered events are dropped, its failed events deleted.
    def render_delete_form(self, request: HttpRequest, context: dict):
        context["in_flight"] = [lanes.in_flight(context["object"])]
        return super().render_delete_form(request, context)

    @admin.action(description=django_delete_selected.short_description, permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet):
        """Django's bulk delete, its confirmation page showing what each consumer holds."""
        response = django_delete_selected(self, request, queryset)
        if response is not None:  # the confirmation page (None: deleted)
            response.context_data["in_flight"] = [lanes.in_flight(c) for c in queryset.prefetch_related("topics")]
        return response

    @admin.action(description="Pause the selected consumers (their backlog is kept)")
    def pause(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.message_user(request, f"Paused {queryset.update(paused=True)} consumer(s).", messages.SUCCESS)

    @admin.action(description="Resume the selected consumers")
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.message_user(request, f"Resumed {queryset.update(paused=False)} consumer(s).", messages.SUCCESS)


@admin.register(FailedEvent)
class FailedEventAdmin(admin.ModelAdmin):
    list_display = ["id", "event_type", "consumer", "topic", "short_error", "attempts", "status", "last_failed_at"]
    list_filter = ["status", "consumer", "topic", "event_type"]
    search_fields = ["event_id", "event_type", "error"]
    date_hierarchy = "last_failed_at"
    list_select_related = ["consumer", "topic"]
    show_full_result_count = False  # exact counts over 100,000 rows are slow
    actions = ["replay", "discard"]
    readonly_fields = [
        "consumer", "topic", "event_id", "stream_id", "event_type", "event", "error", "traceback", "attempts",
        "first_failed_at", "last_failed_at", "status", "replay_count", "replayed_by", "replayed_at", "resolved_at",
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="error")
    def short_error(self, row: FailedEvent) -> str:
        return row.error if len(row.error) <= 80 else row.error[:79] + "…"

    @admin.action(description="Replay the selected failed events (to their consumer only)", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet) -> None:
        try:
            sent, problems = failures.replay_many(queryset.select_related("consumer", "topic"), request.user)
        except redis.RedisError as exc:
            # failures.replay puts the row it was on back; rows before it were queued.
            message = f"The event store is unreachable ({type(exc).__name__}); replay stopped. Try again shortly."
            self.message_user(request, message, messages.ERROR)
            return
        self.message_user(request, f"Replaying {sent} event(s).", messages.SUCCESS)
        if problems:
            self.message_user(request, f"Skipped {len(problems)}: {'; '.join(problems[:5])}", messages.WARNING)

    @admin.action(description="Discard the selected failed events", permissions=["change"])
    def discard(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.message_user(request, f"Discarded {failures.discard(queryset)} event(s).", messages.SUCCESS)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return can_replay(request.user)


# --- alerts (eventflow.alerts) --------------------------------------------------------


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    """Its change form has a "Save and send a test alert" button (templates/admin/eventflow/alertchannel/)."""

    list_display = ["name", "kind", "url", "recipients", "signed", "enabled"]  # never the secret itself
    list_filter = ["kind", "enabled"]
    actions = ["send_test"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "enabled"]}),
        ("Webhook", {"fields": ["url", "secret"]}),
        ("Email", {"fields": ["recipients"]}),
    ]

    @admin.display(description="signed", boolean=True)
    def signed(self, channel: AlertChannel) -> bool:
        return bool(channel.secret)

    def response_change(self, request: HttpRequest, channel: AlertChannel) -> HttpResponse:
        if "_send_test" in request.POST:
            self._report(request, alerts.send_test(channel))
            return HttpResponseRedirect(request.path)
        return super().response_change(request, channel)

    @admin.action(description="Send a test alert to the selected channels")
    def send_test(self, request: HttpRequest, queryset: QuerySet) -> None:
        for channel in queryset:
            self._report(request, alerts.send_test(channel))

    def _report(self, request: HttpRequest, row: SentAlert) -> None:
        if row.ok:
            self.message_user(request, f"Test alert sent to {row.channel}.", messages.SUCCESS)
        else:
            self.message_user(request, f"Test alert to {row.channel} failed: {row.error}", messages.ERROR)


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "scope", "threshold", "for_seconds", "repeat_interval", "send_once", "send_resolved"]
    list_display += ["enabled"]
    list_filter = ["enabled", "threshold"]
    list_select_related = ["consumer"]
    filter_horizontal = ["channels"]
    fieldsets = [
        (None, {"fields": ["name", "enabled", "consumer", "threshold", "for_seconds", "channels"]}),
        ("Notifier", {"fields": ["repeat_interval", "send_once", "send_resolved"]}),
    ]

    @admin.display(description="consumer", ordering="consumer__name")
    def scope(self, rule: AlertRule) -> str:
        return rule.consumer.name if rule.consumer else "every consumer"


@admin.register(SentAlert)
class SentAlertAdmin(admin.ModelAdmin):
    """The alert history: read-only."""

    list_display = ["sent_at", "kind", "consumer", "status", "rule", "channel", "ok", "text"]
    list_filter = ["kind", "ok", "channel", "rule"]
    search_fields = ["consumer", "text"]
    date_hierarchy = "sent_at"
    list_select_related = ["rule", "channel"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SentAlert | None = None) -> bool:
        return False


@admin.register(Replay)
class ReplayAdmin(admin.ModelAdmin):
    """The replay jobs as their audit trail: read-only (jobs start from the dashboard or the API)."""

    list_display = ["id", "source", "consumer", "topic", "state", "matched", "handled", "failed", "requested_by"]
    list_filter = ["state", "source", "consumer", "topic"]
    search_fields = ["reason", "requested_by__username"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Replay | None = None) -> bool:
        return False
