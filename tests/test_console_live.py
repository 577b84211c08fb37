"""The live events view: the fan-out (filters, merged copies, bounded memory,
slow viewers dropped) and the server-sent event stream of a real server, with
the forwarding state once TikTok (the stand-in) has answered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from pixel_server.console import live
from pixel_server.pipeline.record import Record, encode
from pixel_server.pixel import Pixel
from tests.conftest import free_port
from tests.console_helpers import running_server
from tests.ingest_helpers import BROWSER_UA, ORIGIN, add_pixel, shared_settings
from tests.standins.tiktok_api import TikTokStandIn

NOW = 1_767_225_600.0
PIXEL = Pixel(id="px_live", name="Live", tiktok_pixel_code="LIVE1", tiktok_access_token="t")


def record(event: str, event_id: str, source: str = "browser", **extra: Any) -> Record:
    return Record("px_live", event, event, event_id, source, NOW, NOW, **extra)


class Feed(live.LiveFeed):
    """The feed, published to with records (the loader hands it their log encoding)."""

    def publish(self, records: Any) -> None:  # type: ignore[override]
        super().publish([encode(r) for r in records])


def feed() -> live.LiveFeed:
    return Feed(lambda pixel_id: PIXEL if pixel_id == "px_live" else None)


def test_viewers_get_what_they_filter_for_and_see_merged_copies() -> None:
    f = feed()
    purchases = live.Subscriber("px_live", event="Purchase")
    servers = live.Subscriber("px_live", source="server")
    everything = live.Subscriber("px_live")
    for s in (purchases, servers, everything):
        f.subscribe(s)
    f.publish([record("PageView", "pv-1"), record("Purchase", "purchase:1")])
    f.publish([record("Purchase", "purchase:1", "server", value=42.0, currency="EUR",
                      contents=[("sku-1", "p-1", "Hoodie", "", "", 1, 42.0)])])  # fmt: skip
    assert [i["event"] for i in everything.queue] == ["PageView", "Purchase", "Purchase"]
    assert [i["source"] for i in purchases.queue] == ["browser", "server"]
    [server] = servers.queue
    assert server["merged"] == ["browser"] and server["content_ids"] == ["sku-1"]
    assert server["value"] == 42.0 and server["currency"] == "EUR"
    assert server["state"] == "queued"
    browser = everything.queue[1]
    assert browser["state"] == "skipped" and "TikTok's own pixel" in browser["state_text"]


def test_events_of_unknown_pixels_are_not_kept() -> None:
    f = feed()
    f.publish([Record("px_nope", "PageView", "PageView", "x", "browser", NOW, NOW)])
    assert f.subscribe(live.Subscriber("px_nope")) == []


def test_a_slow_viewer_is_dropped_and_memory_stays_bounded() -> None:
    f = feed()
    slow, fast = live.Subscriber("px_live"), live.Subscriber("px_live")
    f.subscribe(slow)
    f.subscribe(fast)
    for n in range(live.QUEUE * 3):
        f.publish([record("PageView", f"pv-{n}")])
        fast.queue.clear()  # this one keeps up
    assert slow.dropped and len(slow.queue) == live.QUEUE
    assert not fast.dropped
    later = live.Subscriber("px_live")
    assert len(f.subscribe(later)) == live.RECENT  # a new page gets the recent ones only


# ------------------------------------------------------------ over HTTP


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    settings = shared_settings(
        tmp_path_factory, engine_dir, PIXEL_PORT=str(port), PIXEL_WAL_FSYNC="false"
    )
    with (
        TikTokStandIn({"live-token": {"LIVECODE1"}}) as api,
        running_server(settings) as (
            base,
            runtime,
        ),
    ):
        pixel = add_pixel(runtime, tiktok_pixel_code="LIVECODE1", tiktok_access_token="live-token",
                          tiktok_api_base=api.base_url)  # fmt: skip
        yield {"base": base, "pixel": pixel, "api": api}


def read_stream(response: httpx.Response, until: Any, timeout: float = 20.0) -> list[Any]:
    """Server-sent events (kind, data) until ``until(events)`` or the timeout."""
    events: list[Any] = []
    kind = ""
    deadline = time.monotonic() + timeout
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            events.append((kind, orjson.loads(line[6:])))
            if until(events):
                break
        if time.monotonic() > deadline:
            break
    return events


def test_stream_pushes_new_events_and_their_forwarding_state(server: dict[str, Any]) -> None:
    base, pixel = server["base"], server["pixel"]
    headers = {"authorization": f"Bearer {pixel['owner_token']}"}
    url = f"{base}/dashboard/{pixel['id']}/live/stream?source=server"
    with httpx.Client(timeout=30) as http, http.stream("GET", url, headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        body = {"event_source": "web", "event_source_id": pixel["id"], "data": [
            {"event": "Purchase", "event_id": "purchase:live-1", "event_time": time.time(),
             "properties": {"value": 12.5, "currency": "USD", "order_id": "live-1"}}]}  # fmt: skip
        sent = http.post(f"{base}/api/v1/events", json=body,
                         headers={"authorization": f"Bearer {pixel['api_key']}"})  # fmt: skip
        assert sent.status_code == 200, sent.text
        browser = {
            "events": [
                {
                    "event": "PageView",
                    "event_id": "pv-live-1",
                    "event_time": time.time(),
                    "page": {"url": ORIGIN + "/"},
                }
            ]
        }
        http.post(f"{base}/collect?p={pixel['id']}", json=browser,
                  headers={"origin": ORIGIN, "user-agent": BROWSER_UA})  # fmt: skip
        events = read_stream(r, lambda ev: any(k == "update" for k, _ in ev))
    pushed = [d for k, d in events if k == "event"]
    assert [d["event_id"] for d in pushed] == ["purchase:live-1"]  # the filter: server only
    assert pushed[0]["value"] == 12.5 and pushed[0]["state"] == "queued"
    updates = [d for k, d in events if k == "update"]
    assert updates and updates[0]["state"] == "sent" and updates[0]["code"] == 0
    assert "purchase:live-1" in server["api"].event_ids("LIVECODE1")


def test_stream_needs_access(server: dict[str, Any]) -> None:
    base, pixel = server["base"], server["pixel"]
    r = httpx.get(f"{base}/dashboard/{pixel['id']}/live/stream")
    assert r.status_code == 401
