"""Who may act on the broker: one rule per action, for the API, the admin and the dashboard."""

from __future__ import annotations

from typing import Any


def can_replay(user: Any) -> bool:
    """Replay failed events or a topic's history (the ``replay_failedevent`` permission)."""
    return user.is_staff and user.has_perm("eventflow.replay_failedevent")


def can_discard(user: Any) -> bool:
    return user.is_staff and user.has_perm("eventflow.change_failedevent")


def can_operate(user: Any) -> bool:
    """Reclaim, dead-letter now, skip a backlog, pause: changing how a consumer runs."""
    return user.is_staff and user.has_perm("eventflow.change_consumer")


def can_edit_and_replay(user: Any) -> bool:
    """Correct a failed event's data and replay the copy: a permission of its own, beside replay's."""
    return bool(user.is_staff and user.has_perm("eventflow.edit_failedevent_data"))
