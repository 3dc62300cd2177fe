"""Keeping Redis and caches in step with configuration edits."""

from __future__ import annotations

import logging

import redis
from django.db import DatabaseError, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from . import topics
from .models import Consumer, Producer, Topic, free_identity

logger = logging.getLogger(__name__)

post_save.connect(topics.clear_cache, sender=Topic, dispatch_uid="eventflow-topic-saved")
post_delete.connect(topics.clear_cache, sender=Topic, dispatch_uid="eventflow-topic-deleted")


def _expire_token_checks(*args, **kwargs) -> None:
    """Producers changed (revoked, rotated, topics): the thin publish path's cached checks are stale."""
    from .asgi_publish import expire_token_checks

    expire_token_checks()


post_save.connect(_expire_token_checks, sender=Producer, dispatch_uid="eventflow-producer-saved")
post_delete.connect(_expire_token_checks, sender=Producer, dispatch_uid="eventflow-producer-deleted")
m2m_changed.connect(_expire_token_checks, sender=Producer.topics.through, dispatch_uid="eventflow-producer-topics")


@receiver(pre_save, sender=Topic, dispatch_uid="eventflow-topic-identity")
@receiver(pre_save, sender=Consumer, dispatch_uid="eventflow-consumer-identity")
def assign_redis_identity(sender, instance, raw=False, **kwargs) -> None:
    """Give a new topic (consumer) its Redis identity once: its name at creation, never changed after.

    Runs for ``loaddata`` too (``raw``), where a fixture without the field leaves it blank.
    """
    field_name = "stream_name" if sender is Topic else "group_name"
    if not getattr(instance, field_name):
        setattr(instance, field_name, free_identity(sender, field_name, instance.name))
    if sender is Topic and instance.pk is not None and not raw:
        # A renamed topic: producers' cached permission checks name the old name.
        instance._renamed = Topic.objects.filter(pk=instance.pk).exclude(name=instance.name).exists()


@receiver(post_save, sender=Topic, dispatch_uid="eventflow-topic-renamed")
def _expire_token_checks_on_rename(sender, instance, **kwargs) -> None:
    if getattr(instance, "_renamed", False):
        _expire_token_checks()


@receiver(m2m_changed, sender=Consumer.topics.through, dispatch_uid="eventflow-subscriptions")
def create_groups(sender, instance, action, pk_set, **kwargs) -> None:
    """A new subscription starts at the events published from now on.

    Best effort: if Redis is down, the worker creates the group when it starts.
    """
    if action != "post_add" or not pk_set:
        return
    from .connection import get_redis
    from .delivery import ensure_group

    if isinstance(instance, Consumer):
        streams = Topic.objects.filter(pk__in=pk_set).values_list("stream_name", flat=True)
        pairs = [(stream, instance.group_name) for stream in streams]
    else:
        groups = Consumer.objects.filter(pk__in=pk_set).values_list("group_name", flat=True)
        pairs = [(instance.stream_name, group) for group in groups]
    try:
        client = get_redis()
        for topic, consumer in pairs:
            ensure_group(client, topic, consumer)
    except redis.RedisError as exc:
        logger.warning("could not create consumer groups now (%s); workers will", exc)


@receiver(pre_delete, sender=Consumer, dispatch_uid="eventflow-consumer-deleted")
def release_deleted_consumer(sender, instance, **kwargs) -> None:
    """A deleted consumer's groups and retry schedules leave Redis with it (the admin said so first).

    Only once the delete is committed: a rolled-back delete keeps its lanes
    (its workers would otherwise start over at the oldest retained event).
    """
    streams = list(instance.topics.values_list("stream_name", flat=True))
    group, name = instance.group_name, instance.name
    transaction.on_commit(lambda: _release(name, group, streams))


def _release(name: str, group: str, streams: list[str]) -> None:
    from . import lanes

    try:
        lanes.release(group, streams)
    except redis.RedisError as exc:
        logger.error("consumer %s was deleted but its groups stay in Redis (%s): destroy group %s", name, exc, group)
    else:
        logger.info("consumer %s deleted: removed its groups and retry schedules on %d topics", name, len(streams))


@receiver(m2m_changed, sender=Consumer.topics.through, dispatch_uid="eventflow-unsubscriptions")
def leave_lanes(sender, instance, action, pk_set, **kwargs) -> None:
    """An ended subscription files its scheduled and pending events as failed ones, then leaves Redis.

    See ``eventflow.lanes``. After the commit, like the change itself.
    """
    if action == "pre_clear":
        instance._leaving = _subscriptions(instance, None)
        return
    if action == "post_remove" and pk_set:
        pairs = _subscriptions(instance, pk_set)
    elif action == "post_clear":
        pairs = getattr(instance, "_leaving", [])
    else:
        return
    transaction.on_commit(lambda: _leave(pairs))


def _subscriptions(instance, pk_set) -> list[tuple[Consumer, Topic]]:
    """(consumer, topic) pairs named by an m2m change, from either side; ``pk_set`` None: all of them."""
    if isinstance(instance, Consumer):
        topics_ = Topic.objects.filter(pk__in=pk_set) if pk_set is not None else instance.topics.all()
        return [(instance, topic) for topic in topics_]
    consumers = Consumer.objects.filter(pk__in=pk_set) if pk_set is not None else instance.consumers.all()
    return [(consumer, instance) for consumer in consumers]


def _leave(pairs: list[tuple[Consumer, Topic]]) -> None:
    from . import lanes

    for consumer, topic in pairs:
        try:
            lanes.leave(consumer, topic)
        except (redis.RedisError, DatabaseError) as exc:
            logger.error("consumer %s left topic %s but its lane stays in Redis (%s)", consumer.name, topic.name, exc)
