"""Our snippet beside TikTok's own pixel on the same page.

TikTok's base code (pages/tiktok-base-code.js), the theme's ttq calls, our
script and TikTok's library (the double in tiktok_events_double.js, routed in
place of TikTok's events.js) arrive in every order a store can produce. TikTok's
pixel must stay whole (its global, its queue, every call exactly once with its
arguments as given) and our server must get every call exactly once too.

The double models what TikTok's loader does with the base code's structures:
it finds its queue as window[TiktokAnalyticsObject || "ttq"] (or makes one),
marks its pixel code in _i, replays the queued calls (the queue's, then each
pixel's in _i) by handling them itself, leaves the queues as they are, and
then assigns live methods (and a live instance()) on the same object; it
records every call it handles, arguments as received. Not modelled: what
TikTok's library sends, its cookies, its second (main) script, its consent
handling, events it fires by itself, and whether the real one empties its
queue. The file itself says the same in more detail.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pixel_server.snippets import SnippetSettings
from tests.browser.flow import Journey, props
from tests.browser.harness import PAGES, Collector, Store, Tab

CODE = "CTESTPIXEL0000000000"  # the pixel code in the base code
EVENTS_JS = "https://analytics.tiktok.com/i18n/pixel/events.js*"


class TikTokLibrary:
    """TikTok's events.js for one tab: the double, served at once ("serve"),
    held until ``release()`` ("hold"), or refused like an ad blocker would
    ("block")."""

    def __init__(self, tab: Tab, store: Store, mode: str) -> None:
        self.tab, self.store, self.mode = tab, store, mode
        self.requested: list[str] = []
        self._held: list[Any] = []
        tab.page.route(EVENTS_JS, self._route)

    def _route(self, route: Any) -> None:
        self.requested.append(route.request.url)
        if self.mode == "block":
            route.abort("blockedbyclient")
        elif self.mode == "hold":
            self._held.append(route)
        else:
            self._serve(route)

    def _serve(self, route: Any) -> None:
        route.fulfill(response=route.fetch(url=f"{self.store.origin}/tiktok/events.js"))

    def release(self) -> None:
        self.mode = "serve"
        held, self._held = self._held, []
        for route in held:
            self._serve(route)
        self.tab.page.wait_for_function("window.tiktokLibrary")

    def calls(self) -> list[list[Any]]:
        return self.tab.page.evaluate("tiktokLibrary.calls")  # type: ignore[no-any-return]


# The theme's calls, in three groups, and what each is as a call.
BEFORE = """
ttq.identify({email: "alice@example.com"});
ttq.track("ViewContent",
          {value: 8, currency: "USD", contents: [{content_id: "SKU-1", quantity: 1}]},
          {event_id: "vc-1"});
ttq.instance("CTESTPIXEL0000000000").track("AddToWishlist", {value: 3, currency: "USD"});
"""
MIDDLE = """ttq.track("CompletePayment", {value: 16, currency: "USD", order_id: "1001"});"""
LATE = """ttq.page(); ttq.instance("CTESTPIXEL0000000000").track("Contact");"""
THEME_CALLS = [  # [pixel code or "" for ttq itself, method, ...arguments]
    ["", "identify", {"email": "alice@example.com"}],
    ["", "track", "ViewContent",
     {"value": 8, "currency": "USD", "contents": [{"content_id": "SKU-1", "quantity": 1}]},
     {"event_id": "vc-1"}],
    [CODE, "track", "AddToWishlist", {"value": 3, "currency": "USD"}],
    ["", "track", "CompletePayment", {"value": 16, "currency": "USD", "order_id": "1001"}],
    ["", "page"],
    [CODE, "track", "Contact"],
]  # fmt: skip
BASE_CODE_CALLS = [["", "page"]]  # the base code's own ttq.page()

ORDERS = {
    "base code, TikTok's library, us": ("base", "before", "library", "us", "middle", "late"),
    "base code, us, TikTok's library": ("base", "before", "us", "middle", "library", "late"),
    "us, base code, TikTok's library": ("us", "base", "before", "middle", "library", "late"),
    "base code, us; events.js blocked": ("base", "before", "us", "middle", "late"),
    "us, base code; events.js blocked": ("us", "base", "before", "middle", "late"),
}


def _sorted(calls: list[list[Any]]) -> list[str]:
    # The library replays its queue before its instances' queues: compare as
    # multisets of exact calls.
    return sorted(json.dumps(c, sort_keys=True) for c in calls)


@pytest.mark.parametrize("order", list(ORDERS))
def test_both_pixels_get_every_call_exactly_once(
    tab: Tab, store: Store, collector: Collector, order: str
) -> None:
    steps = ORDERS[order]
    store.configure(SnippetSettings(collector.pixel_id, collector.endpoint, "html"))
    library = TikTokLibrary(tab, store, "hold" if "library" in steps else "block")
    tab.goto(store.url("tiktok.html", collector.pixel_id), ready="window.themeLoaded")
    page = tab.page
    for step in steps:
        if step == "base":
            page.add_script_tag(path=PAGES / "tiktok-base-code.js")
        elif step == "us":
            page.add_script_tag(url=store.script_url(collector.pixel_id))
            page.wait_for_function("window._pxs")
        elif step == "library":
            library.release()
        else:
            page.evaluate({"before": BEFORE, "middle": MIDDLE, "late": LATE}[step])

    # TikTok's pixel: its own global and queue, every call once, as made.
    assert page.evaluate(
        "window.TiktokAnalyticsObject === 'ttq' && Array.isArray(ttq) && !!ttq._i["
        + repr(CODE)
        + "]"
    )
    assert library.requested == [
        f"https://analytics.tiktok.com/i18n/pixel/events.js?sdkid={CODE}&lib=ttq"
    ]
    if "library" in steps:
        assert _sorted(library.calls()) == _sorted(BASE_CODE_CALLS + THEME_CALLS)
    else:  # nothing took the calls out of TikTok's queues
        queued = page.evaluate(f"[Array.from(ttq), Array.from(ttq._i.{CODE})]")
        assert queued == [
            [c[1:] for c in BASE_CODE_CALLS + THEME_CALLS if c[0] == ""],
            [c[1:] for c in THEME_CALLS if c[0] == CODE],
        ]

    # Ours: every call once (identify has no event of its own); loaded before
    # TikTok's base code, we also sent the automatic PageView.
    names = ["PageView", "ViewContent", "AddToWishlist", "CompletePayment", "PageView", "Contact"]
    if steps[0] == "us":
        names.append("PageView")
    journey = Journey(collector)
    events = collector.events(count=len(names))
    assert sorted(e["event"] for e in events) == sorted(names)
    journey.all = events
    journey.end()
    by_name = {e["event"]: e for e in events}
    assert by_name["ViewContent"]["event_id"] == "vc-1"
    assert by_name["CompletePayment"]["event_id"] == "purchase:1001"
    assert props(by_name["CompletePayment"]) == {"value": 16, "currency": "USD", "order_id": "1001"}
    assert by_name["Contact"]["user"]["email"] == "alice@example.com"
    # Calls TikTok's pixel sent under its own ids get ids of ours marked
    # "ttq:" (never forwarded to TikTok); the automatic PageView is ours alone.
    generated = [e for e in events if e["event"] not in ("ViewContent", "CompletePayment")]
    unmarked = [e["event"] for e in generated if not e["event_id"].startswith("ttq:")]
    assert unmarked == (["PageView"] if steps[0] == "us" else [])
    assert tab.errors == []


def test_our_own_tiktok_pixel_stays_off_where_the_store_has_one(
    tab: Tab, store: Store, collector: Collector
) -> None:
    # load_tiktok_pixel on, but TikTok's channel put its base code in first.
    store.configure(SnippetSettings(collector.pixel_id, collector.endpoint, "html",
                                    tiktok_pixel_code="CTT0PIXEL123"))  # fmt: skip
    library = TikTokLibrary(tab, store, "block")
    tab.goto(store.url("queued.html", collector.pixel_id))

    Journey(collector).next("PageView", "ViewContent", "CompletePayment")
    assert page_state(tab) == {"name": "ttq", "ours": False}
    assert [u for u in library.requested if "_pxttq" in u] == []
    assert tab.errors == []


def page_state(tab: Tab) -> dict[str, Any]:
    return tab.page.evaluate(  # type: ignore[no-any-return]
        "({name: window.TiktokAnalyticsObject, ours: '_pxttq' in window})"
    )


@pytest.mark.parametrize("mirror", [False, True])
def test_adapter_events_reach_tiktoks_pixel_only_when_mirrored(
    tab: Tab, store: Store, collector: Collector, mirror: bool
) -> None:
    store.configure(SnippetSettings(collector.pixel_id, collector.endpoint, "ecwid",
                                    currency="USD", mirror_to_tiktok_pixel=mirror))  # fmt: skip
    TikTokLibrary(tab, store, "block")
    tab.goto(store.url("ecwid-tiktok.html", collector.pixel_id))
    tab.page.wait_for_function("window.Ecwid && ecwidFake.listeners('OnOrderPlaced') > 0")
    journey = Journey(collector)
    journey.next("PageView")  # the base code's ttq.page()
    tab.page.evaluate("ttq.track('Contact')")  # the theme's, through TikTok's pixel
    tab.page.evaluate("ecwidFake.add({id: 101, sku: 'SKU-101', price: 8, name: 'Sweatshirt'}, 1)")
    tab.page.evaluate("ecwidFake.placeOrder('10045')")
    _, added, purchase = journey.next("Contact", "AddToCart", "Purchase")
    journey.end()

    queue = tab.page.evaluate("JSON.parse(JSON.stringify(Array.from(ttq)))")  # as sent
    assert purchase["event_id"] == "purchase:10045"
    assert journey.all[1]["event_id"].startswith("ttq:")  # the theme's Contact
    assert not added["event_id"].startswith("ttq:")  # the adapter's own
    ours = [
        ["track", "AddToCart", props(added), {"event_id": added["event_id"]}],
        ["track", "Purchase", props(purchase), {"event_id": "purchase:10045"}],
    ]
    # The page's own calls once each, never fed back; ours only when mirrored.
    assert queue == [["page"], ["track", "Contact"]] + (ours if mirror else [])
    assert tab.errors == []


@pytest.mark.parametrize("first", ["TikTok's library", "us"])
def test_tiktoks_library_loaded_without_its_base_code(
    tab: Tab, store: Store, collector: Collector, first: str
) -> None:
    # Some sites load events.js?sdkid=...&lib=ttq directly: the library makes
    # (or adopts) the ttq queue itself.
    store.configure(SnippetSettings(collector.pixel_id, collector.endpoint, "html"))
    library = TikTokLibrary(tab, store, "serve")
    tab.goto(store.url("tiktok.html", collector.pixel_id), ready="window.themeLoaded")
    page = tab.page

    def load_library() -> None:
        page.add_script_tag(url=EVENTS_JS.rstrip("*") + f"?sdkid={CODE}&lib=ttq")
        page.wait_for_function("window.tiktokLibrary")

    def load_us() -> None:
        page.add_script_tag(url=store.script_url(collector.pixel_id))
        page.wait_for_function("window._pxs")

    for step in (load_library, load_us) if first != "us" else (load_us, load_library):
        step()
    page.evaluate(MIDDLE + LATE)

    late_calls = THEME_CALLS[3:]  # CompletePayment, page(), Contact
    assert _sorted(library.calls()) == _sorted(late_calls)
    journey = Journey(collector)
    _, purchase, page_view, contact = journey.next(
        "PageView", "CompletePayment", "PageView", "Contact"
    )
    journey.end()
    assert purchase["event_id"] == "purchase:1001"
    assert page_view["event_id"].startswith("ttq:") and contact["event_id"].startswith("ttq:")
    assert tab.errors == []
