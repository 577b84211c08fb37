"""The core of the snippet, on a plain HTML page: the ttq API, identity,
consent, batching, sending, and staying out of the store's way."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from pixel_server.snippets import NOOP_SNIPPET, SnippetSettings, render_snippet
from tests.browser.flow import TTCLID, Journey, assert_one_shopper, props
from tests.browser.harness import Collector, Store, Tab


def html_pixel(store: Store, collector: Collector, **settings: Any) -> SnippetSettings:
    return store.configure(
        SnippetSettings(collector.pixel_id, collector.endpoint, "html", **settings)
    )


def test_page_views_carry_a_lasting_first_party_identity(
    tab: Tab, store: Store, collector: Collector
) -> None:
    html_pixel(store, collector, click_window_days=3)
    tab.page.context.add_cookies([{"name": "_ttp", "value": "2Xttp0cookie", "url": store.origin}])
    journey = Journey(collector)

    tab.goto(store.url("html.html", collector.pixel_id, ttclid=TTCLID, utm_source="tiktok"))
    (landing,) = journey.next("PageView")
    tab.page.click("#next")
    tab.page.wait_for_url("**n=2**")
    (second,) = journey.next("PageView")
    events = journey.end()

    assert_one_shopper(events)
    assert landing["user"]["ttp"] == second["user"]["ttp"] == "2Xttp0cookie"
    assert landing["user"]["locale"] == "en-US"
    assert landing["page"]["url"].endswith(f"ttclid={TTCLID}&utm_source=tiktok")
    assert second["page"]["referrer"] == landing["page"]["url"]
    assert props(landing) == {}
    assert abs(landing["event_time"] - time.time()) < 60
    assert len(landing["event_id"]) == 32 and int(landing["event_id"], 16) >= 0
    cookies = {c["name"]: c for c in tab.page.context.cookies(store.origin)}
    anonymous_id = landing["user"]["anonymous_id"]
    assert cookies["_px_aid"]["value"] == anonymous_id
    assert cookies["_px_ttclid"]["value"] == TTCLID
    days = (cookies["_px_aid"]["expires"] - time.time()) / 86400
    assert 394 < days <= 395  # 13 months
    days = (cookies["_px_ttclid"]["expires"] - time.time()) / 86400
    assert 2.9 < days <= 3  # the click window
    stored = tab.page.evaluate("[localStorage._px_aid, localStorage._px_ttclid]")
    assert stored[0].startswith(anonymous_id + "|") and stored[1].startswith(TTCLID + "|")


def test_identity_survives_in_local_storage_when_cookies_are_gone(
    tab: Tab, store: Store, collector: Collector
) -> None:
    html_pixel(store, collector)
    journey = Journey(collector)
    tab.goto(store.url("html.html", collector.pixel_id, ttclid=TTCLID))
    (first,) = journey.next("PageView")

    tab.page.context.clear_cookies()  # e.g. Safari's 7-day cap on script cookies
    tab.goto(store.url("html.html", collector.pixel_id))
    (second,) = journey.next("PageView")

    assert_one_shopper([first, second])


def test_an_expired_click_is_forgotten(tab: Tab, store: Store, collector: Collector) -> None:
    html_pixel(store, collector)
    tab.goto(store.url("plain.html", collector.pixel_id), ready=None)
    tab.page.evaluate(f"localStorage._px_ttclid = '{TTCLID}|' + (Date.now() - 1000)")

    tab.goto(store.url("html.html", collector.pixel_id))

    (event,) = Journey(collector).next("PageView")
    assert "ttclid" not in event["user"]


def test_calls_queued_before_the_script_loaded_are_replayed_in_order(
    tab: Tab, store: Store, collector: Collector
) -> None:
    html_pixel(store, collector)
    journey = Journey(collector)

    # TikTok's base code queued load() + page(); the theme identify() and two
    # tracks, before our (async) script arrived.
    tab.goto(store.url("queued.html", collector.pixel_id))
    page_view, viewed, purchase = journey.next("PageView", "ViewContent", "CompletePayment")
    tab.page.evaluate(
        """ttq.instance('CTESTPIXEL0000000000').track('AddToCart', {value: 8, currency: 'USD'});
           ttq.load('CTESTPIXEL0000000000'); ttq.track('Contact');
           ttq.enableCookie(); ttq.debug(); ttq.ready(function () {});"""
    )
    added, contact = journey.next("AddToCart", "Contact")
    journey.end()  # one PageView: the queued page() stood for the automatic one

    assert "email" not in page_view["user"]  # identify() came after page()
    assert viewed["event_id"] == "vc-1"  # the caller's own event_id
    assert viewed["user"]["email"] == "alice@example.com"
    assert viewed["user"]["phone"] == "+12133734253"
    assert viewed["user"]["external_id"] == "cust-7"
    assert props(viewed)["contents"][0]["content_id"] == "SKU-1-RED-M"
    assert purchase["event_id"] == "purchase:5396439498987"
    assert props(purchase) == {"value": 16, "currency": "USD", "order_id": "5396439498987"}
    assert props(added) == {"value": 8, "currency": "USD"}
    assert contact["user"]["email"] == "alice@example.com"
    assert tab.errors == []


def test_the_installed_tag_queues_theme_calls_until_the_script_loads(
    tab: Tab, store: Store, collector: Collector
) -> None:
    html_pixel(store, collector)

    tab.goto(store.url("tagged.html", collector.pixel_id))

    page_view, viewed, wished = Journey(collector).next("PageView", "ViewContent", "AddToWishlist")
    assert viewed["event_id"] == "tag-1"
    assert viewed["user"]["email"] == wished["user"]["email"] == "dave@example.com"
    assert "email" not in page_view["user"]
    assert tab.errors == []


def test_tiktoks_base_code_pasted_after_our_tag_still_reaches_us(
    tab: Tab, store: Store, collector: Collector
) -> None:
    html_pixel(store, collector)

    # Its stub methods push onto ttq, which is ours by then.
    tab.goto(store.url("late-base-code.html", collector.pixel_id), ready=None)
    tab.page.evaluate("ttq.track('Contact')")

    events = Journey(collector).next("PageView", "PageView", "ViewContent", "Contact")
    assert events[2]["event_id"] == "vc-late"
    assert tab.errors == []


def test_consent_held_sends_nothing_until_granted(
    tab: Tab, store: Store, collector: Collector
) -> None:
    html_pixel(store, collector, consent="hold")
    tab.goto(store.url("html.html", collector.pixel_id, ttclid=TTCLID))
    tab.page.evaluate("ttq.track('AddToCart', {value: 8, currency: 'USD'})")
    tracked_at = time.time()

    assert collector.events(count=1, timeout=0.5) == []
    names = {c["name"] for c in tab.page.context.cookies(store.origin)}
    assert not names & {"_px_aid", "_px_ttclid"}  # nothing stored either
    assert tab.page.evaluate("localStorage.length") == 0

    tab.page.evaluate("ttq.grantConsent()")
    page_view, added = Journey(collector).next("PageView", "AddToCart")

    assert added["event_time"] <= tracked_at  # when it happened, not when it was sent
    assert_one_shopper([page_view, added])
    names = {c["name"] for c in tab.page.context.cookies(store.origin)}
    assert {"_px_aid", "_px_ttclid"} <= names


def test_revoked_consent_discards_what_was_held_and_what_follows(
    tab: Tab, store: Store, collector: Collector
) -> None:
    html_pixel(store, collector)
    journey = Journey(collector)
    tab.goto(store.url("html.html", collector.pixel_id))
    journey.next("PageView")

    tab.page.evaluate("ttq.holdConsent(); ttq.track('Held')")
    tab.page.evaluate("ttq.revokeConsent(); ttq.track('AfterRevoke')")
    assert collector.events(count=2, timeout=0.5)[1:] == []
    tab.page.evaluate("ttq.grantConsent(); ttq.track('AfterGrant')")

    journey.next("AfterGrant")
    journey.end()


def test_events_fired_as_the_shopper_leaves_still_arrive(
    tab: Tab, store: Store, collector: Collector
) -> None:
    html_pixel(store, collector)
    journey = Journey(collector)
    tab.goto(store.url("html.html", collector.pixel_id))
    journey.next("PageView")

    # Tracked, then straight away a navigation in the same task.
    tab.page.evaluate("ttq.track('Contact', {}); location.href = '/pages/plain.html?px=' + 'x'")
    tab.page.wait_for_url("**plain.html**")
    journey.next("Contact")

    # Tracked from the store's own pagehide handler, while the page unloads.
    tab.goto(store.url("html.html", collector.pixel_id))
    journey.next("PageView")
    tab.page.evaluate(
        "addEventListener('pagehide', function () { ttq.track('Lead', {value: 1}); });"
    )
    tab.page.goto(store.url("plain.html", collector.pixel_id))
    journey.next("Lead")
    journey.end()


def test_events_of_one_task_are_batched_within_the_request_limits(
    tab: Tab, store: Store, collector: Collector
) -> None:
    # The collector refuses (and the fixture fails the test on) any request
    # over 50 events or 64 KB.
    html_pixel(store, collector)
    beacons: list[str] = []
    tab.page.on("request", lambda r: r.resource_type == "ping" and beacons.append(r.url))
    tab.goto(store.url("html.html", collector.pixel_id))
    collector.events(count=1)

    # 120 small events in one go: 50 + 50 + 20.
    tab.page.evaluate("for (var i = 0; i < 120; i++) ttq.track('ViewContent', {value: i})")
    events = collector.events(count=121)
    assert [e["properties"]["value"] for e in events[1:]] == list(range(120))
    tab.page.wait_for_timeout(100)  # let Playwright deliver its request events
    assert len(beacons) == 1 + 3
    # 40 events of ~3 KB: split by size, not only by count. Beyond the
    # browser's 64 KB beacon quota, the fetch fallback takes over.
    tab.page.evaluate(
        "for (var i = 0; i < 40; i++)"
        " ttq.track('Search', {query: 'q'.repeat(500), description: 'x'.repeat(1000),"
        " note: 'y'.repeat(1500), n: i})"
    )
    events = collector.events(count=161)[121:]
    assert [e["properties"]["n"] for e in events] == list(range(40))
    assert tab.errors == []


def test_without_sendbeacon_fetch_delivers(tab: Tab, store: Store, collector: Collector) -> None:
    html_pixel(store, collector)
    tab.page.add_init_script("delete Navigator.prototype.sendBeacon")

    tab.goto(store.url("html.html", collector.pixel_id))
    tab.page.evaluate("ttq.track('Subscribe')")

    Journey(collector).next("PageView", "Subscribe")
    assert tab.errors == []


def test_a_dead_endpoint_never_shows_in_the_page(
    tab: Tab, store: Store, collector: Collector, dead_endpoint: str
) -> None:
    store.configure(SnippetSettings(collector.pixel_id, dead_endpoint, "html"))
    # First with beacons, then with the fetch fallback (sendBeacon refusing).
    for refuse_beacons in (False, True):
        if refuse_beacons:
            tab.page.add_init_script("navigator.sendBeacon = function () { return false; }")
        tab.goto(store.url("html.html", collector.pixel_id))
        tab.page.evaluate("ttq.track('AddToCart', {value: 1}); ttq.identify({email: 'a@b.c'})")
        tab.page.evaluate("ttq.track('Lead'); ttq.page()")
        tab.page.wait_for_timeout(300)

    assert tab.errors == []  # no exception, no rejection, no console error of ours
    assert any(dead_endpoint in line for line in tab.failed_loads)  # it did try


def test_browser_plus_server_mode_feeds_tiktoks_pixel_the_same_event_ids(
    tab: Tab, store: Store, collector: Collector
) -> None:
    html_pixel(store, collector, tiktok_pixel_code="CTT0PIXEL123", consent="hold")
    loads: list[str] = []
    tab.page.route(
        "https://analytics.tiktok.com/**",
        lambda route: (loads.append(route.request.url), route.abort()),
    )
    tab.goto(store.url("html.html", collector.pixel_id))
    tab.page.evaluate(
        "ttq.identify({email: 'a@b.c'}); ttq.grantConsent();"
        "ttq.track('AddToCart', {value: 8, currency: 'USD'});"
        "ttq.track('Purchase', {value: 8, currency: 'USD', order_id: 991})"
    )
    events = Journey(collector).next("PageView", "AddToCart", "Purchase")

    queue = tab.page.evaluate("Array.from(window._pxttq)")
    assert queue == [
        ["holdConsent"],
        ["page"],
        ["identify", {"email": "a@b.c"}],
        ["grantConsent"],
        ["track", "AddToCart", props(events[1]), {"event_id": events[1]["event_id"]}],
        ["track", "Purchase", props(events[2]), {"event_id": "purchase:991"}],
    ]
    assert loads == [
        "https://analytics.tiktok.com/i18n/pixel/events.js?sdkid=CTT0PIXEL123&lib=_pxttq"
    ]
    assert tab.page.evaluate("window.TiktokAnalyticsObject") == "_pxttq"
    assert tab.errors == []  # TikTok's script could not load: no harm done


def test_hostile_settings_stay_data(tab: Tab, store: Store, collector: Collector) -> None:
    hostile = 'px_"</script><script>window.pwned=1</script>\u2028\u2029<!--'
    settings = SnippetSettings(hostile, collector.endpoint + "/", "html")
    sent: list[dict[str, Any]] = []

    def capture(route: Any) -> None:
        sent.append(json.loads(route.request.post_data))
        route.fulfill(status=202, body="{}")

    tab.page.route(f"{collector.endpoint}/collect?*", capture)
    dialogs: list[str] = []
    tab.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    tab.goto(store.url("plain.html", "px_x"), ready=None)
    # Inline, as a store could paste it into a <script> element.
    tab.page.set_content(
        "<html><head><script>" + render_snippet(settings).body.decode() + "</script></head></html>"
    )
    tab.page.wait_for_function("window._pxs && window.ttq")
    tab.page.wait_for_timeout(300)

    assert tab.page.evaluate("window.pwned") is None and dialogs == []
    assert [body["pixel_id"] for body in sent] == [hostile]
    assert sent[0]["events"][0]["event"] == "PageView"
    assert tab.errors == []


def test_the_noop_snippet_swallows_every_call(tab: Tab, store: Store) -> None:
    tab.goto(store.url("plain.html", "px_x"), ready=None)
    tab.page.add_script_tag(content=NOOP_SNIPPET.decode())

    result = tab.page.evaluate(
        """ttq.page(); ttq.track('Purchase', {value: 1}); ttq.identify({email: 'x'});
           ttq.holdConsent(); ttq.grantConsent(); ttq.revokeConsent(); ttq.load('C1');
           ttq.instance('C1').track('Lead'); ttq.push(['track', 'Lead']); ttq.enableCookie();
           typeof ttq.track"""
    )

    assert result == "function" and tab.errors == []


def test_the_noop_snippet_leaves_an_existing_ttq_alone(tab: Tab, store: Store) -> None:
    tab.goto(store.url("plain.html", "px_x"), ready=None)
    tab.page.evaluate("window.ttq = [['track', 'Lead']]; ttq.mine = true")
    tab.page.add_script_tag(content=NOOP_SNIPPET.decode())

    assert tab.page.evaluate("ttq.mine && ttq.length") == 1


def test_loaded_twice_the_first_copy_serves(tab: Tab, store: Store, collector: Collector) -> None:
    settings = html_pixel(store, collector)
    tab.goto(store.url("html.html", collector.pixel_id))
    tab.page.add_script_tag(content=render_snippet(replace(settings)).body.decode())
    tab.page.evaluate("ttq.track('Contact')")

    journey = Journey(collector)
    journey.next("PageView", "Contact")
    journey.end()
