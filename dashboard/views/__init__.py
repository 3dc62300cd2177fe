"""Dashboard pages (staff only). Each live region is a named partial of its page."""

from __future__ import annotations

from .demo import risk_service
from .edits import edit_page, edit_preview, edit_send
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
from .replays import cancel as replay_cancel
from .replays import cancel_bulk as bulk_replay_cancel
from .replays import preview as replay_preview
from .replays import replay_page
from .replays import start as replay_start
from .stuck import dead_letter as stuck_dead_letter
from .stuck import pause as stuck_pause
from .stuck import reclaim as stuck_reclaim
from .stuck import skip as stuck_skip
from .stuck import skip_confirm as stuck_skip_confirm
from .sampler import sampler_banner

__all__ = [
    "bulk_replay_cancel",
    "consumer_page",
    "consumers_index",
    "discard_confirm",
    "discard_matching",
    "discard_one",
    "discard_selected",
    "edit_page",
    "edit_preview",
    "edit_send",
    "event_detail",
    "failed_list",
    "overview",
    "publish_test_event",
    "replay_confirm",
    "replay_matching",
    "replay_cancel",
    "replay_one",
    "replay_page",
    "replay_preview",
    "replay_start",
    "stuck_dead_letter",
    "stuck_pause",
    "stuck_reclaim",
    "stuck_skip",
    "stuck_skip_confirm",
    "replay_selected",
    "risk_service",
    "search",
    "sampler_banner",
    "topic_page",
    "topics_index",
]
