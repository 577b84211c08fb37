"""The live test-events view: the last events of a pixel as they arrive,
pushed to the page with server-sent events (like TikTok's "Test events").

Where events come from
----------------------
:meth:`LiveFeed.publish` is called with every batch the ClickHouse loader has
inserted (``Runtime.load``): the storage process sees every event
there, whichever process took the request, so the view keeps working when
ingest moves to separate worker processes. (Events show about one loader
interval, ~0.1 s, after they were accepted.) A replay after a crash may show
a batch twice; the view is a debugging aid, the reports are exact.

Memory
------
Per pixel the feed keeps the last ``RECENT`` events (for a page just opened)
and the sources seen per (event, event_id) of the last ``KEYS`` keys (to say
"merged with the browser copy"). Per viewer it keeps at most ``QUEUE`` events
not yet written to the socket: a viewer that falls that far behind (a slow or
stalled client) is dropped (its stream ends with an ``dropped`` message; the
browser reconnects by itself), never the server or the other viewers.

Forwarding state
----------------
An event's first state comes from the pixel's settings (not sent: TikTok not
set up / browser copy left to TikTok's own pixel / consent denied; or queued).
Then every ``POLL_S`` seconds each stream reads the delivery ledger for the
events it showed and pushes the latest outcome with TikTok's code and message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import anyio
import orjson
from clickhouse_connect.driver.client import Client
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from pixel_server.console.access import Denied, Gate
from pixel_server.console.pages import SECURITY_HEADERS, Pages
from pixel_server.pipeline.record import Record, decode, decode_key
from pixel_server.pixel import Pixel

log = logging.getLogger("pixel_server.console.live")

RECENT: Final = 50
KEYS: Final = 5000
QUEUE: Final = 500
SHOWN: Final = 500  # events per stream whose forwarding state is followed
POLL_S: Final = 2.0
HEARTBEAT_S: Final = 15.0
SOURCES: Final = ("browser", "server", "webhook")


def first_state(pixel: Pixel | None, record: Record) -> tuple[str, str]:
    """(state, words) before the forwarder has said anything."""
    if pixel is None or not pixel.enabled:
        return "skipped", "not sent: pixel disabled"
    if not (pixel.tiktok_pixel_code and pixel.tiktok_access_token):
        return "skipped", "not sent yet: TikTok is not set up (sent once it is)"
    if record.consent == "denied":
        return "skipped", "not sent: consent denied"
    if record.source == "browser" and not pixel.forward_browser:
        return "skipped", "not sent: TikTok's own pixel sends browser events"
    return "queued", "waiting to be sent"


def item_of(record: Record, pixel: Pixel | None, sources: Sequence[str]) -> dict[str, Any]:
    state, words = first_state(pixel, record)
    return {
        "key": f"{record.event}|{record.event_id}|{record.source}",
        "event": record.event,
        "source": record.source,
        "time": datetime.fromtimestamp(record.event_time, UTC).isoformat(timespec="seconds"),
        "event_id": record.event_id,
        "value": record.value,
        "currency": record.currency,
        "content_ids": [c[0] for c in record.contents][:20],
        "merged": [s for s in sources if s != record.source],
        "state": state,
        "state_text": words,
    }


@dataclass(eq=False)
class Subscriber:
    pixel_id: str
    event: str = ""  # filters; empty: all
    source: str = ""
    queue: deque[dict[str, Any]] = field(default_factory=deque)
    dropped: bool = False
    loop: asyncio.AbstractEventLoop | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, item: dict[str, Any]) -> bool:
        return (not self.event or item["event"] == self.event) and (
            not self.source or item["source"] == self.source
        )

    def offer(self, item: dict[str, Any]) -> None:
        """From any thread."""
        if self.dropped or not self.wants(item):
            return
        if len(self.queue) >= QUEUE:
            self.dropped = True  # too slow: drop the viewer, not the events of others
        else:
            self.queue.append(item)
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.wake.set)


class LiveFeed:
    """In-process fan-out of loaded events to live viewers (thread-safe)."""

    def __init__(self, pixels: Callable[[str], Pixel | None]) -> None:
        self._pixels = pixels
        self._lock = threading.Lock()
        # Records stay in their log encoding until someone looks at them.
        self._recent: dict[str, deque[tuple[bytes, tuple[str, ...]]]] = {}
        self._sources: dict[str, OrderedDict[tuple[str, str], list[str]]] = {}
        self._subscribers: dict[str, set[Subscriber]] = {}

    def publish(self, payloads: Iterable[bytes]) -> None:
        """Called with the log records of a batch once stored; never raises into the caller."""
        try:
            self._publish(payloads)
        except Exception:  # a viewer problem must never stall loading
            log.exception("live view: publishing a batch failed")

    def _publish(self, payloads: Iterable[bytes]) -> None:
        # On the loader's thread, for every stored event: a key decode, a deque
        # append and a dict update; the whole record is decoded and the item
        # for a page built only when someone watches the pixel.
        with self._lock:
            for payload in payloads:
                record = decode_key(payload)
                pixel_id = record.pixel_id
                recent = self._recent.get(pixel_id)
                if recent is None:
                    if self._pixels(pixel_id) is None:
                        continue
                    recent = self._recent[pixel_id] = deque(maxlen=RECENT)
                    self._sources[pixel_id] = OrderedDict()
                keys = self._sources[pixel_id]
                key = (record.event, record.event_id)
                sources = keys.pop(key, None) or []
                if record.source not in sources:
                    sources.append(record.source)
                keys[key] = sources
                if len(keys) > KEYS:
                    keys.popitem(last=False)
                recent.append((payload, tuple(sources)))
                watching = self._subscribers.get(pixel_id)
                if watching:
                    item = item_of(decode(payload), self._pixels(pixel_id), sources)
                    for subscriber in watching:
                        subscriber.offer(item)

    def subscribe(self, subscriber: Subscriber) -> list[dict[str, Any]]:
        """Register; returns the recent events it wants, oldest first."""
        with self._lock:
            self._subscribers.setdefault(subscriber.pixel_id, set()).add(subscriber)
            recent = list(self._recent.get(subscriber.pixel_id, ()))
        pixel = self._pixels(subscriber.pixel_id)
        items = (item_of(decode(payload), pixel, sources) for payload, sources in recent)
        return [i for i in items if subscriber.wants(i)]

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.get(subscriber.pixel_id, set()).discard(subscriber)

    def viewers(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subscribers.values())


def latest_outcomes(
    client: Client, pixel_id: str, keys: Iterable[str], since: float
) -> dict[str, dict[str, Any]]:
    """The ledger's latest row per shown event (key: event|event_id|source)."""
    wanted = list(keys)
    if not wanted:
        return {}
    result = client.query(
        "SELECT concat(event, '|', event_id, '|', toString(source)) AS key,"
        " toString(argMax(outcome, attempted_at)), argMax(tiktok_code, attempted_at),"
        " argMax(tiktok_message, attempted_at) FROM deliveries"
        " WHERE pixel_id = {p:String} AND attempted_at >= {since:DateTime64(3)}"
        " AND event_id IN {ids:Array(String)} GROUP BY key",
        parameters={
            "p": pixel_id,
            "since": datetime.fromtimestamp(since, UTC),
            "ids": list({k.split("|")[1] for k in wanted}),
        },
    )
    shown = set(wanted)
    return {
        key: {"key": key, "state": outcome, "code": code, "message": message}
        for key, outcome, code, message in result.result_rows
        if key in shown
    }


def _sse(kind: str, data: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def state_text(update: dict[str, Any]) -> str:
    if update["state"] == "sent":
        return f"sent to TikTok ({update['code']}: {update['message'] or 'OK'})"
    verb = "retrying" if update["state"] == "retrying" else "not accepted"
    return f"{verb} ({update['code']}: {update['message']})"


def routes(
    gate: Gate, pages: Pages, feed: LiveFeed, client: Callable[[], Client]
) -> list[BaseRoute]:
    async def live_page(request: Request) -> Response:
        try:
            access = gate.authorize(request, request.path_params["pixel_id"])
        except Denied as exc:
            return pages.denied(exc)
        return pages.render(
            "live.html",
            **access.chrome(),
            event=request.query_params.get("event", ""),
            source=request.query_params.get("source", ""),
            sources=SOURCES,
        )

    async def stream(request: Request) -> Response:
        try:
            access = gate.authorize(request, request.path_params["pixel_id"])
        except Denied as exc:
            return pages.denied(exc)
        source = request.query_params.get("source", "")
        subscriber = Subscriber(
            access.pixel.id,
            event=request.query_params.get("event", "")[:64],
            source=source if source in SOURCES else "",
            loop=asyncio.get_running_loop(),
        )
        return StreamingResponse(
            _events(subscriber),
            media_type="text/event-stream",
            headers={**SECURITY_HEADERS, "x-accel-buffering": "no"},
        )

    async def _events(subscriber: Subscriber) -> AsyncIterator[bytes]:
        started = datetime.now(UTC).timestamp() - 60
        shown: OrderedDict[str, str] = OrderedDict()  # key -> last state sent
        backlog = feed.subscribe(subscriber)
        try:
            yield b"retry: 3000\n\n"
            for item in backlog:
                shown[item["key"]] = item["state"]
                yield _sse("event", item)
            loop = asyncio.get_running_loop()
            last_poll = last_beat = loop.time()
            while True:
                if subscriber.dropped:
                    yield _sse("dropped", {"reason": "too slow: reconnect"})
                    return
                while subscriber.queue:
                    item = subscriber.queue.popleft()
                    shown[item["key"]] = item["state"]
                    shown.move_to_end(item["key"])
                    if len(shown) > SHOWN:
                        shown.popitem(last=False)
                    yield _sse("event", item)
                now = loop.time()
                if now - last_poll >= POLL_S and shown:
                    last_poll = now
                    outcomes = await anyio.to_thread.run_sync(
                        latest_outcomes, client(), subscriber.pixel_id, list(shown), started
                    )
                    for key, update in outcomes.items():
                        if shown.get(key) != update["state"]:
                            shown[key] = update["state"]
                            yield _sse("update", {**update, "state_text": state_text(update)})
                if now - last_beat >= HEARTBEAT_S:
                    last_beat = now
                    yield b": keep-alive\n\n"
                subscriber.wake.clear()
                if not subscriber.queue and not subscriber.dropped:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(subscriber.wake.wait(), POLL_S)
        finally:
            feed.unsubscribe(subscriber)

    return [
        Route("/dashboard/{pixel_id}/live", live_page, methods=["GET"]),
        Route("/dashboard/{pixel_id}/live/stream", stream, methods=["GET"]),
    ]
