"""The consumer health rules, each with the number that caused it."""

from __future__ import annotations

from eventflow.health import Facts, Status, Thresholds, Tracker, Window, assess

LIMITS = Thresholds(stall=30.0, failure=0.5, ack_timeout=60.0)


def window(**overrides) -> Window:
    values = {"seconds": 60.0, "backlog_start": 0, "acks": 10, "errors": 0, "unacked_for": 0.0}
    values.update(overrides)
    return Window(**values)


def facts(**overrides) -> Facts:
    values = {"backlog": 0, "oldest_pending": 0.0, "live_workers": 1, "paused": False}
    values.update(overrides)
    return Facts(**values)


def test_a_consumer_without_backlog_is_ok():
    verdict = assess(facts(), window(), LIMITS)
    assert verdict.status == Status.OK
    assert verdict.reason == "no backlog"


def test_a_shrinking_backlog_is_ok():
    verdict = assess(facts(backlog=50), window(backlog_start=80), LIMITS)
    assert verdict.status == Status.OK


def test_a_growing_backlog_with_acks_flowing_is_lagging_by_its_growth():
    verdict = assess(facts(backlog=1203), window(backlog_start=863), LIMITS)
    assert verdict.status == Status.LAGGING
    assert verdict.reason == "backlog +340 in 60 s (now 1,203)"
    assert verdict.value == 1203


def test_a_backlog_without_an_ack_past_the_stall_threshold_is_stalled():
    verdict = assess(facts(backlog=12), window(acks=0, unacked_for=34.2), LIMITS)
    assert verdict.status == Status.STALLED
    assert verdict.reason == "no ack for 34 s; backlog 12"
    assert verdict.value == 34.2


def test_a_backlog_just_under_the_stall_threshold_is_not_stalled():
    verdict = assess(facts(backlog=12), window(acks=0, unacked_for=29.9), LIMITS)
    assert verdict.status != Status.STALLED


def test_an_event_pending_past_its_ack_timeout_is_stalled():
    verdict = assess(facts(backlog=1, oldest_pending=75.0), window(), LIMITS)
    assert verdict.status == Status.STALLED
    assert "pending 75 s" in verdict.reason


def test_a_backlog_without_a_live_worker_is_stopped():
    verdict = assess(facts(backlog=42, live_workers=0), window(acks=0, unacked_for=100), LIMITS)
    assert verdict.status == Status.STOPPED
    assert verdict.reason == "no live worker; backlog 42"


def test_no_live_worker_and_no_backlog_is_still_ok():
    assert assess(facts(live_workers=0), window(acks=0), LIMITS).status == Status.OK


def test_a_paused_consumer_with_a_backlog_is_stopped_and_says_paused():
    verdict = assess(facts(backlog=5, paused=True), window(), LIMITS)
    assert verdict.status == Status.STOPPED
    assert "paused" in verdict.reason


def test_a_failure_ratio_above_the_threshold_is_failing():
    verdict = assess(facts(backlog=3), window(acks=11, errors=30), LIMITS)
    assert verdict.status == Status.FAILING
    assert verdict.reason == "73% of 41 deliveries failed in 60 s"
    assert verdict.value == 0.732


def test_a_failure_ratio_at_the_threshold_is_not_failing_but_a_warning():
    assert assess(facts(), window(acks=10, errors=10), LIMITS).status == Status.WARNING


def test_too_few_deliveries_are_not_enough_to_call_it_failing():
    assert assess(facts(), window(acks=0, errors=2), LIMITS).status == Status.OK


def test_a_handler_that_does_not_import_is_failing_at_once_and_says_why():
    verdict = assess(facts(backlog=1, handler_error="ModuleNotFoundError: No module named 'bliling'"), window(acks=0), LIMITS)
    assert verdict.status == Status.FAILING
    assert verdict.reason == "handler does not import: ModuleNotFoundError: No module named 'bliling'"


def test_a_handler_that_does_not_import_with_no_live_worker_left_is_stopped():
    verdict = assess(facts(backlog=1, live_workers=0, handler_error="ImportError: x"), window(acks=0), LIMITS)
    assert verdict.status == Status.STOPPED


def test_failing_wins_over_stalled():
    verdict = assess(facts(backlog=3), window(acks=0, errors=9, unacked_for=99), LIMITS)
    assert verdict.status == Status.FAILING


def test_the_tracker_windows_running_totals():
    tracker = Tracker(seconds=10)
    tracker.observe("billing", 100.0, backlog=0, acked=0, errors=0, oldest_pending=0)
    tracker.observe("billing", 105.0, backlog=5, acked=20, errors=1, oldest_pending=0)
    result = tracker.observe("billing", 110.0, backlog=9, acked=30, errors=3, oldest_pending=0)
    assert (result.acks, result.errors, result.backlog_start, result.seconds) == (30, 3, 0, 10.0)
    later = tracker.observe("billing", 116.0, backlog=9, acked=31, errors=3, oldest_pending=0)
    assert (later.acks, later.backlog_start, later.seconds) == (
        11,
        5,
        11.0,
    )  # the last reading before the window starts it


def test_the_tracker_counts_how_long_a_backlog_waited_without_an_ack():
    tracker = Tracker(seconds=60)
    tracker.observe("billing", 100.0, backlog=0, acked=5, errors=0, oldest_pending=0)
    tracker.observe("billing", 101.0, backlog=1, acked=5, errors=0, oldest_pending=0.5)
    assert tracker.observe("billing", 104.0, backlog=1, acked=5, errors=0, oldest_pending=3.5).unacked_for == 3.5
    # An ack restarts the clock even though the backlog never emptied.
    assert tracker.observe("billing", 105.0, backlog=2, acked=6, errors=0, oldest_pending=0.1).unacked_for == 0.0
    assert tracker.observe("billing", 107.0, backlog=0, acked=8, errors=0, oldest_pending=0).unacked_for == 0.0


def test_a_consumer_that_keeps_dead_lettering_a_few_percent_is_a_warning_with_the_figures():
    verdict = assess(facts(), window(acks=331, errors=29, dead=27), LIMITS)
    assert verdict.status == Status.WARNING
    assert verdict.reason == "8% of 360 attempts failed in 60 s, 27 dead-lettered"


def test_one_dead_letter_in_the_window_is_a_warning_by_default():
    verdict = assess(facts(), window(acks=500, errors=3, dead=1), LIMITS)
    assert verdict.status == Status.WARNING
    assert "1 dead-lettered" in verdict.reason


def test_warnings_follow_the_consumers_own_thresholds():
    lenient = Thresholds(stall=30.0, failure=0.5, ack_timeout=60.0, warn_failure=0.2, warn_dead=0)
    assert assess(facts(), window(acks=331, errors=29, dead=27), lenient).status == Status.OK


def test_a_warning_on_failed_attempts_is_left_only_below_half_its_threshold():
    still = window(acks=96, errors=4)  # 4 %: under the 5 % that entered it, over the 2.5 % that leaves it
    assert assess(facts(), still, LIMITS).status == Status.OK
    assert assess(facts(), still, LIMITS, previous=Status.WARNING).status == Status.WARNING
    assert assess(facts(), window(acks=98, errors=2), LIMITS, previous=Status.WARNING).status == Status.OK


def test_a_single_retry_does_not_make_an_ok_consumer_lagging():
    verdict = assess(facts(backlog=4), window(backlog_start=3), LIMITS, previous=Status.OK)
    assert verdict.status == Status.OK


def test_a_lagging_consumer_stays_lagging_while_its_backlog_still_grows():
    verdict = assess(facts(backlog=4), window(backlog_start=3), LIMITS, previous=Status.LAGGING)
    assert verdict.status == Status.LAGGING
    assert assess(facts(backlog=3), window(backlog_start=3), LIMITS, previous=Status.LAGGING).status == Status.OK


def test_the_tracker_counts_dead_letters_only_from_readings_that_knew_them():
    tracker = Tracker(seconds=60.0)
    tracker.observe("fraud-check", 0.0, 0, 0, 0, 0.0)  # replayed history: no dead total
    window = tracker.observe("fraud-check", 1.0, 0, 10, 3, 0.0, dead=270)
    assert window.dead == 0
    assert tracker.observe("fraud-check", 2.0, 0, 20, 6, 0.0, dead=271).dead == 1


def test_the_tracker_remembers_the_last_status_for_the_hysteresis():
    tracker = Tracker(seconds=60.0)
    assert tracker.previous("billing") is None
    tracker.remember("billing", Status.LAGGING)
    assert tracker.previous("billing") == Status.LAGGING
