"""Helpers for reading a shopper's journey out of the collector."""

from __future__ import annotations

from typing import Any

from pixel_server.events.normalise import hash_email
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
        """Nothing else arrives, and the real server stored exactly what was
        sent; returns the whole journey."""
        late = self.collector.events(count=len(self.all) + 1, timeout=wait)[len(self.all) :]
        assert late == [], f"unexpected events: {late}"
        rows = self.collector.stored(len(self.all))
        if rows is not None:
            assert_stored(self.all, rows)
        return self.all


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def assert_stored(sent: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    """Each event the browser sent is one row in ClickHouse with its data."""
    by_id = {(r["received_event"], r["event_id"]): r for r in rows}
    assert len(rows) == len(sent) == len(by_id), (len(rows), len(sent))
    for event in sent:
        row = by_id[(event["event"], event["event_id"])]
        user, p = event.get("user", {}), event.get("properties", {})
        assert row["source"] == "browser"
        assert row["consent"] == event.get("consent", "unknown")
        assert row["anonymous_id"] == user.get("anonymous_id", "")
        if user.get("ttclid"):
            assert row["ttclid"] == user["ttclid"]
        assert row["page_url"] == event["page"]["url"]
        assert _number(row["value"]) == _number(p.get("value"))
        assert row["currency"] == p.get("currency", "")
        assert row["order_id"] == str(p.get("order_id", ""))
        assert row["search_query"] == p.get("query", "")
        contents = p.get("contents") or []
        assert row["contents.content_id"] == [str(c.get("content_id", "")) for c in contents]
        assert row["contents.item_group_id"] == [str(c.get("item_group_id", "")) for c in contents]
        assert row["contents.quantity"] == [c.get("quantity", 1) for c in contents]
        assert [_number(x) for x in row["contents.price"]] == [
            _number(c.get("price")) for c in contents
        ]
        if user.get("email"):
            assert row["email_sha256"] == [hash_email(user["email"])]
        assert user.get("email", "") not in str(row) or not user.get("email")


def props(event: dict[str, Any]) -> dict[str, Any]:
    return event["properties"]


def assert_one_shopper(events: list[dict[str, Any]], ttclid: str = TTCLID) -> None:
    """Every event carries the same anonymous id and the landing ttclid; ids are unique."""
    anonymous = {e["user"]["anonymous_id"] for e in events}
    assert len(anonymous) == 1 and next(iter(anonymous)).startswith("a_"), anonymous
    assert {e["user"].get("ttclid") for e in events} == {ttclid}
    assert len({e["event_id"] for e in events}) == len(events)
    assert all(e["consent"] == "granted" for e in events)
