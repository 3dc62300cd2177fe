"""Keeping Redis and caches in step with configuration edits."""

from __future__ import annotations

import logging

import redis
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from . import topics
from .models import Consumer, Producer, Topic

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
        pairs = [(name, instance.name) for name in Topic.objects.filter(pk__in=pk_set).values_list("name", flat=True)]
    else:
        pairs = [
            (instance.name, name) for name in Consumer.objects.filter(pk__in=pk_set).values_list("name", flat=True)
        ]
    try:
        client = get_redis()
        for topic, consumer in pairs:
            ensure_group(client, topic, consumer)
    except redis.RedisError as exc:
        logger.warning("could not create consumer groups now (%s); workers will", exc)
