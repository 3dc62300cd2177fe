"""Dashboard pages (staff only). Each live region is a named partial of its page."""

from __future__ import annotations

from .demo import risk_service
from .failed import (
    discard_confirm,
    discard_matching,
    discard_one,
    discard_selected,
    failed_list,
    replay_confirm,
    replay_matching,
    replay_one,
    replay_selected,
)
from .lists import consumers_index, search, topics_index
from .pages import consumer_page, event_detail, overview, publish_test_event, topic_page
from .sampler import sampler_banner

__all__ = [
    "consumer_page",
    "consumers_index",
    "discard_confirm",
    "discard_matching",
    "discard_one",
    "discard_selected",
    "event_detail",
    "failed_list",
    "overview",
    "publish_test_event",
    "replay_confirm",
    "replay_matching",
    "replay_one",
    "replay_selected",
    "risk_service",
    "search",
    "sampler_banner",
    "topic_page",
    "topics_index",
]
