"""Specification of the recent-event dedup index (pixel_server.pipeline.dedup).

Identity is (pixel_id, event, event_id); copies from the same source within
48 h of the first collapse, copies from different sources never do.
"""

from __future__ import annotations

import tracemalloc

from pixel_server.pipeline.dedup import DedupIndex

HOUR = 3600.0
T0 = 1_750_000_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def index(clock: FakeClock, **options: float) -> DedupIndex:
    return DedupIndex(clock=clock, **options)  # type: ignore[arg-type]


def test_a_second_copy_from_the_same_source_is_a_duplicate() -> None:
    dedup = index(FakeClock())
    assert dedup.seen("px1", "Purchase", "order-1", "browser", T0) is False
    assert dedup.seen("px1", "Purchase", "order-1", "browser", T0 + 5) is True
    assert len(dedup) == 1
    assert dedup.stats().duplicates == 1


def test_copies_from_different_sources_are_not_duplicates() -> None:
    dedup = index(FakeClock())
    assert dedup.seen("px1", "Purchase", "order-1", "browser", T0) is False
    assert dedup.seen("px1", "Purchase", "order-1", "server", T0) is False
    assert dedup.seen("px1", "Purchase", "order-1", "webhook", T0) is False
    assert len(dedup) == 3


def test_every_part_of_the_identity_counts() -> None:
    dedup = index(FakeClock())
    dedup.seen("px1", "Purchase", "order-1", "server", T0)
    assert dedup.seen("px2", "Purchase", "order-1", "server", T0) is False
    assert dedup.seen("px1", "AddToCart", "order-1", "server", T0) is False
    assert dedup.seen("px1", "Purchase", "order-2", "server", T0) is False


def test_within_48_hours_of_the_first_copy_is_a_duplicate() -> None:
    clock = FakeClock()
    dedup = index(clock)
    dedup.seen("px1", "Purchase", "order-1", "server", T0)
    clock.now = T0 + 48 * HOUR
    assert dedup.seen("px1", "Purchase", "order-1", "server", T0 + 48 * HOUR) is True


def test_a_copy_49_hours_after_the_first_is_a_new_event() -> None:
    clock = FakeClock()
    dedup = index(clock)
    dedup.seen("px1", "Purchase", "order-1", "server", T0)
    clock.now = T0 + 49 * HOUR
    assert dedup.seen("px1", "Purchase", "order-1", "server", T0 + 49 * HOUR) is False
    assert dedup.seen("px1", "Purchase", "order-1", "server", T0 + 49 * HOUR) is True


def test_the_window_uses_event_times_not_arrival_times() -> None:
    clock = FakeClock(T0 + 49 * HOUR)  # both copies arrive late, e.g. replayed
    dedup = index(clock)
    assert dedup.seen("px1", "Purchase", "late", "webhook", T0 + 2 * HOUR) is False
    assert dedup.seen("px1", "Purchase", "late", "webhook", T0 + 30 * HOUR) is True
    # Out of order: the second copy has the earlier event time.
    assert dedup.seen("px1", "Purchase", "other", "webhook", T0 + 40 * HOUR) is False
    assert dedup.seen("px1", "Purchase", "other", "webhook", T0 + 10 * HOUR) is True


def test_49_hours_apart_is_new_even_when_both_arrive_together() -> None:
    clock = FakeClock(T0 + 49 * HOUR)
    dedup = index(clock)
    assert dedup.seen("px1", "Purchase", "order-1", "server", T0) is False
    assert dedup.seen("px1", "Purchase", "order-1", "server", T0 + 49 * HOUR) is False


def test_keys_leave_the_index_when_they_leave_the_window() -> None:
    clock = FakeClock()
    dedup = index(clock)
    for i in range(10):
        clock.now = T0 + i * HOUR
        dedup.seen("px1", "ViewContent", f"e{i}", "browser", T0 + i * HOUR)
    clock.now = T0 + 52 * HOUR  # window now starts at T0 + 4 h
    dedup.seen("px1", "ViewContent", "fresh", "browser", clock.now)
    assert len(dedup) == 7  # e4..e9 and fresh
    assert dedup.stats().expired == 4
    assert dedup.seen("px1", "ViewContent", "e5", "browser", T0 + 5 * HOUR) is True


def test_events_already_outside_the_window_are_checked_but_not_kept() -> None:
    dedup = index(FakeClock(T0 + 100 * HOUR))
    assert dedup.seen("px1", "Purchase", "ancient", "server", T0) is False
    assert len(dedup) == 0


def test_event_times_from_the_future_are_clamped() -> None:
    clock = FakeClock()
    dedup = index(clock)
    dedup.seen("px1", "Purchase", "skewed", "browser", T0 + 1000 * HOUR)
    clock.now = T0 + 50 * HOUR  # a key parked in the far future would still be here
    dedup.seen("px1", "Purchase", "tick", "browser", clock.now)
    assert dedup.seen("px1", "Purchase", "skewed", "browser", clock.now) is False


def test_the_cap_forgets_the_oldest_event_times_first() -> None:
    dedup = index(FakeClock(T0 + 10 * HOUR), max_keys=3)
    dedup.seen("px1", "Purchase", "t2", "server", T0 + 2 * HOUR)
    dedup.seen("px1", "Purchase", "t3", "server", T0 + 3 * HOUR)
    dedup.seen("px1", "Purchase", "t4", "server", T0 + 4 * HOUR)
    dedup.seen("px1", "Purchase", "t1", "server", T0 + 1 * HOUR)  # oldest, arrives last
    assert len(dedup) == 3
    assert dedup.stats().evicted == 1
    assert dedup.seen("px1", "Purchase", "t2", "server", T0 + 2 * HOUR) is True
    assert dedup.seen("px1", "Purchase", "t4", "server", T0 + 4 * HOUR) is True
    assert dedup.seen("px1", "Purchase", "t1", "server", T0 + 1 * HOUR) is False  # forgotten


def test_the_cap_holds_under_a_stream_of_new_keys() -> None:
    clock = FakeClock()
    dedup = index(clock, max_keys=1000)
    for i in range(5000):
        clock.now = T0 + i
        dedup.seen("px1", "PageView", f"e{i}", "browser", clock.now)
    assert len(dedup) == 1000
    assert dedup.seen("px1", "PageView", "e4999", "browser", clock.now) is True
    assert dedup.seen("px1", "PageView", "e0", "browser", T0) is False


def test_load_rebuilds_the_index_at_start() -> None:
    dedup = index(FakeClock(T0 + HOUR))
    loaded = dedup.load(
        [
            ("px1", "Purchase", "o1", "server", T0),
            ("px1", "Purchase", "o1", "server", T0 + 60),  # a copy: not new
            ("px1", "Purchase", "o1", "browser", T0),
        ]
    )
    assert loaded == 2
    assert dedup.seen("px1", "Purchase", "o1", "server", T0 + HOUR) is True
    dedup.add("px1", "Lead", "f1", "browser", T0)
    assert dedup.seen("px1", "Lead", "f1", "browser", T0) is True


def test_memory_stays_small_per_key() -> None:
    """Guards the representation (hashes, not strings); bench/bench_dedup.py measures 1 M."""
    count = 40_000
    keys = [f"order-{i:08d}" for i in range(count)]
    dedup = index(FakeClock())
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i, event_id in enumerate(keys):
        dedup.seen("px_0123456789", "Purchase", event_id, "server", T0 - i % 172_800)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(dedup) == count
    assert used / count < 120


def test_forget_undoes_a_seen_copy() -> None:
    index = DedupIndex(clock=lambda: 1_000_000.0)
    assert not index.seen("px", "Purchase", "o-1", "server", 999_000.0)
    index.forget("px", "Purchase", "o-1", "server")
    assert not index.seen("px", "Purchase", "o-1", "server", 999_000.0)
    assert index.seen("px", "Purchase", "o-1", "server", 999_000.0)
