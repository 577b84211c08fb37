"""Helpers for reading a shopper's journey out of the collector."""

from __future__ import annotations

from typing import Any

from tests.browser.harness import Collector

TTCLID = "E.C.P.CvQBbJ1z9QXp-2_ttclid"  # a ttclid as TikTok appends it to ad landing URLs


class Journey:
    """The events of one pixel, read step by step in arrival order."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.all: list[dict[str, Any]] = []

    def next(self, *names: str) -> list[dict[str, Any]]:
        """The next events: exactly these names, in this order."""
        events = self.collector.events(count=len(self.all) + len(names))
        new = events[len(self.all) :]
        self.all = events
        assert [e["event"] for e in new] == list(names), new
        return new

    def end(self, wait: float = 0.3) -> list[dict[str, Any]]:
        """Nothing else arrives; returns the whole journey."""
        late = self.collector.events(count=len(self.all) + 1, timeout=wait)[len(self.all) :]
        assert late == [], f"unexpected events: {late}"
        return self.all


def props(event: dict[str, Any]) -> dict[str, Any]:
    return event["properties"]


def assert_one_shopper(events: list[dict[str, Any]], ttclid: str = TTCLID) -> None:
    """Every event carries the same anonymous id and the landing ttclid; ids are unique."""
    anonymous = {e["user"]["anonymous_id"] for e in events}
    assert len(anonymous) == 1 and next(iter(anonymous)).startswith("a_"), anonymous
    assert {e["user"].get("ttclid") for e in events} == {ttclid}
    assert len({e["event_id"] for e in events}) == len(events)
    assert all(e["consent"] == "granted" for e in events)
