"""Enrichment steps: what the server adds to a validated event, and what it drops.

Unit tests run :func:`pixel_server.pipeline.steps.run` on events decoded by
``decode_event`` with a hand-made :class:`Context`; a few go through the app to
show the same rule end to end (proxies, cookies, metrics, PII on disk).
"""

from __future__ import annotations

import ipaddress
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from pixel_server.config import Settings
from pixel_server.events.normalise import sha256_hex
from pixel_server.events.schema import Event, Source, decode_event
from pixel_server.ingest.http import client_ip
from pixel_server.pipeline import steps
from pixel_server.pipeline.record import Record
from pixel_server.pixel import Pixel
from tests.ingest_helpers import (
    BROWSER_UA,
    GOOGLEBOT_UA,
    add_pixel,
    api_body,
    api_headers,
    app_client,
    browser_headers,
    metric,
    open_database,
    runtime_of,
    select_dicts,
    settings_with,
    shared_settings,
    wait_for_rows,
)

NOW = 1_750_000_000.0
PEER = "198.51.100.7"
EMAIL_SHA256 = "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f"
PHONE_SHA256 = "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd"
EXTERNAL_ID_SHA256 = "80fba0ae1c48e3978e43e4efc365e14e12ea0c830ba8ba5b9a2dafc7e3f2ab8b"


def make_pixel(**settings: Any) -> Pixel:
    return Pixel(id="px_steps", name="Steps shop", **settings)


def context(source: Source = "browser", **fields: Any) -> steps.Context:
    values: dict[str, Any] = {"pixel": make_pixel(), "now": NOW}
    if source == "browser":
        values.update(client_ip=PEER, user_agent=BROWSER_UA)
    values.update(fields)
    return steps.Context(source=source, **values)


def decode(body: dict[str, Any], source: Source = "browser") -> Event:
    return decode_event(msgspec.json.encode(body), source=source, now=NOW)


def run(body: dict[str, Any], ctx: steps.Context | None = None) -> Record:
    ctx = ctx or context()
    result = steps.run(decode(body, ctx.source), ctx)
    assert isinstance(result, Record), result
    return result


def page(url: str, referrer: str = "") -> dict[str, Any]:
    return {"event": "PageView", "event_id": "e1", "page": {"url": url, "referrer": referrer}}


# ---------------------------------------------------------------- the list


def test_the_steps_are_a_named_list_in_a_deliberate_order() -> None:
    names = [name for name, _ in steps.STEPS]
    assert names[:2] == ["put_user_agent", "drop_bots"]  # no work spent on bots
    assert names[-1] == "apply_consent"  # nothing added later can leak
    assert names.index("put_event_id") < names.index("drop_duplicates")
    assert len(set(names)) == len(names)
    assert set(steps.DROP_REASONS) == {"bot", "duplicate"}


def test_a_plain_event_becomes_a_record_of_the_pixel_and_source() -> None:
    record = run({"event": "ViewContent", "event_id": 12, "event_time": NOW - 5})
    assert (record.pixel_id, record.event, record.event_id) == ("px_steps", "ViewContent", "12")
    assert (record.source, record.event_time, record.received_at) == ("browser", NOW - 5, NOW)


# ------------------------------------------------------------- client IP


def fake_request(peer: str, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return Request({"type": "http", "client": (peer, 40000), "headers": headers})


TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        # No trusted proxies: the peer, whatever the header says.
        ("203.0.113.5", "1.2.3.4", (), "203.0.113.5"),
        # An untrusted peer cannot speak for someone else.
        ("203.0.113.5", "1.2.3.4", TRUSTED, "203.0.113.5"),
        # A trusted proxy: its view of the client.
        ("10.0.0.1", "1.2.3.4", TRUSTED, "1.2.3.4"),
        # Through two of our proxies: the nearest hop that is not ours.
        ("10.0.0.1", "1.2.3.4, 10.0.0.9", TRUSTED, "1.2.3.4"),
        # Earlier hops are the client's to forge: ignored.
        ("10.0.0.1", "6.6.6.6, 1.2.3.4", TRUSTED, "1.2.3.4"),
        ("10.0.0.1", "6.6.6.6,1.2.3.4 ,  10.1.1.1", TRUSTED, "1.2.3.4"),
        # Only our own proxies in the header: the farthest one.
        ("10.0.0.1", "10.0.0.2, 10.0.0.3", TRUSTED, "10.0.0.2"),
        # A trusted proxy that sent no header: the proxy itself.
        ("10.0.0.1", None, TRUSTED, "10.0.0.1"),
        ("10.0.0.1", "", TRUSTED, "10.0.0.1"),
        ("fd00::1", "2001:db8::7", TRUSTED, "2001:db8::7"),
    ],
)
def test_client_ip_believes_x_forwarded_for_only_from_trusted_proxies(
    peer: str, forwarded: str | None, trusted: tuple[Any, ...], expected: str
) -> None:
    assert client_ip(fake_request(peer, forwarded), trusted) == expected


def test_the_stored_ip_comes_from_x_forwarded_for_behind_a_trusted_proxy(
    settings: Settings,
) -> None:
    behind_proxy = settings_with(settings, PIXEL_TRUSTED_PROXIES="10.0.0.0/8")
    with app_client(behind_proxy, client=("10.0.0.1", 50000)) as client:
        pixel = add_pixel(runtime_of(client))
        for n, forwarded in enumerate(["6.6.6.6, 203.0.113.50", "203.0.113.51, 10.2.3.4"]):
            r = client.post(
                f"/collect?p={pixel['id']}",
                content=orjson.dumps({"event": "PageView", "event_id": str(n)}),
                headers=browser_headers(**{"x-forwarded-for": forwarded}),
            )
            assert r.status_code == 202
        runtime = runtime_of(client)
        assert wait_for_rows(runtime, 2, pixel["id"]) == 2
        rows = select_dicts(runtime.database.client(), "SELECT ip FROM events ORDER BY event_id")
    assert [r["ip"] for r in rows] == ["203.0.113.50", "203.0.113.51"]


def test_a_browser_events_ip_is_the_requests_not_the_bodys() -> None:
    assert run({"event": "PageView", "user": {"ip": "1.1.1.1"}}).ip == PEER


def test_a_server_events_ip_is_the_one_in_the_body() -> None:
    ctx = context("server")
    assert run({"event": "Purchase", "user": {"ip": " 203.0.113.9 "}}, ctx).ip == "203.0.113.9"
    assert run({"event": "Purchase", "user": {"ip": "not-an-ip"}}, ctx).ip == ""
    assert run({"event": "Purchase"}, ctx).ip == ""


@pytest.mark.parametrize(
    ("ip", "truncated"),
    [
        ("198.51.100.7", "198.51.100.0"),
        ("2001:db8:1234:5678:9abc::1", "2001:db8:1234::"),
        ("2001:DB8::1", "2001:db8::"),
    ],
)
def test_ip_truncation_is_a_per_pixel_setting(ip: str, truncated: str) -> None:
    assert run({"event": "PageView"}, context(client_ip=ip)).ip == str(ipaddress.ip_address(ip))
    truncating = context(client_ip=ip, pixel=make_pixel(ip_truncation=True))
    assert run({"event": "PageView"}, truncating).ip == truncated


def test_an_ipv4_client_seen_by_a_dual_stack_listener_is_stored_as_ipv4() -> None:
    mapped = context(client_ip="::ffff:198.51.100.7")
    assert run({"event": "PageView"}, mapped).ip == "198.51.100.7"
    truncating = context(client_ip="::ffff:198.51.100.7", pixel=make_pixel(ip_truncation=True))
    assert run({"event": "PageView"}, truncating).ip == "198.51.100.0"


# ---------------------------------------------------------------- user agent


def test_the_user_agent_is_the_browsers_header_or_the_server_events_field() -> None:
    body = {"event": "PageView", "user": {"user_agent": "Body/1.0"}}
    assert run(body).user_agent == BROWSER_UA
    assert run(body, context("server")).user_agent == "Body/1.0"
    assert run(body, context("server", user_agent="python-requests/2.32")).user_agent == "Body/1.0"
    long_ua = "Mozilla/5.0 " + "x" * 2000
    assert len(run({"event": "PageView"}, context(user_agent=long_ua)).user_agent) == 1024


@pytest.mark.parametrize(
    "user_agent",
    [
        GOOGLEBOT_UA,
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "python-requests/2.32.3",
        "curl/8.5.0",
        "",
    ],
)
def test_bots_and_http_libraries_are_dropped(user_agent: str) -> None:
    ctx = context(user_agent=user_agent)
    assert steps.run(decode({"event": "PageView"}), ctx) == "bot"


@pytest.mark.parametrize(
    "user_agent",
    [
        BROWSER_UA,
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/126.0.0.0 Safari/537.36",  # testing tools, real stores see them
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 musical_ly_35.1.0 BytedanceWebview/d8a21c6",
    ],
)
def test_browsers_are_not_bots(user_agent: str) -> None:
    assert run({"event": "PageView"}, context(user_agent=user_agent)).user_agent == user_agent


def test_server_events_are_never_dropped_as_bots() -> None:
    body = {"event": "Purchase", "user": {"user_agent": GOOGLEBOT_UA}}
    assert run(body, context("server", user_agent="python-requests/2.32")).event == "Purchase"


# ----------------------------------------------------------- click ids, UTM


def test_ttclid_and_utm_tags_come_from_the_page_url() -> None:
    record = run(page(
        "https://shop.example.com/p?ttclid=E.C.P.abc&utm_source=TikTok&utm_medium=paid"
        "&utm_campaign=spring%20sale&utm_content=v2&utm_term=red+shoes&utm_source=second"
    ))  # fmt: skip
    assert record.ttclid == "E.C.P.abc"
    assert (record.utm_source, record.utm_medium, record.utm_campaign) == (
        "TikTok",  # the first value of a repeated parameter
        "paid",
        "spring sale",
    )
    assert (record.utm_content, record.utm_term) == ("v2", "red shoes")


def test_a_ttclid_sent_in_the_body_wins_over_the_url() -> None:
    body = {**page("https://shop.example.com/?ttclid=from-url"), "user": {"ttclid": "from-body"}}
    assert run(body).ttclid == "from-body"


def test_utm_values_are_capped() -> None:
    record = run(page("https://shop.example.com/?utm_campaign=" + "c" * 1000))
    assert record.utm_campaign == "c" * 256


def test_no_page_means_no_tags() -> None:
    record = run({"event": "AddToCart"})
    assert (record.ttclid, record.utm_source, record.page_url, record.referrer_host) == ("",) * 4


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        ("https://www.google.com/search?q=x", "google.com"),
        ("https://m.facebook.com/", "m.facebook.com"),
        ("http://WWW.Example.ORG:8080/a", "example.org"),
        ("", ""),
        ("not a url", ""),
    ],
)
def test_the_referrer_host_drops_www(referrer: str, host: str) -> None:
    assert run(page("https://shop.example.com/", referrer)).referrer_host == host


# ------------------------------------------------------------------ channel


@pytest.mark.parametrize(
    ("url", "referrer", "channel"),
    [
        ("https://shop.example.com/?ttclid=abc", "", "tiktok_paid"),
        ("https://shop.example.com/?ttclid=abc&gclid=x", "https://google.com/", "tiktok_paid"),
        ("https://shop.example.com/", "https://www.tiktok.com/@shop/video/1", "tiktok_organic"),
        ("https://shop.example.com/", "https://vm.tiktok.com/ZM123/", "tiktok_organic"),
        ("https://shop.example.com/?utm_source=tiktok", "", "tiktok_organic"),
        ("https://shop.example.com/?utm_source=TikTok_Bio", "https://x.com/", "tiktok_organic"),
        ("https://shop.example.com/?gclid=Cj0", "https://www.google.com/", "other_paid"),
        ("https://shop.example.com/?fbclid=IwAR", "https://m.facebook.com/", "other_paid"),
        ("https://shop.example.com/?utm_source=google&utm_medium=cpc", "", "other_paid"),
        ("https://shop.example.com/?utm_medium=Paid_Social", "", "other_paid"),
        ("https://shop.example.com/", "https://blog.example.org/post", "referral"),
        ("https://shop.example.com/", "https://www.google.com/", "referral"),
        ("https://shop.example.com/?utm_source=news&utm_medium=email", "", "direct"),
        ("https://shop.example.com/cart", "https://shop.example.com/p/1", "direct"),
        ("https://www.shop.example.com/cart", "https://shop.example.com/", "direct"),
        ("https://shop.example.com/", "", "direct"),
        ("https://shop.example.com/", "https://nottiktok.com/", "referral"),
    ],
)
def test_each_event_gets_one_channel(url: str, referrer: str, channel: str) -> None:
    assert run(page(url, referrer)).channel == channel


def test_a_ttclid_in_the_body_is_tiktok_paid() -> None:
    assert run({"event": "Purchase", "user": {"ttclid": "E.C.P"}}).channel == "tiktok_paid"
    assert run({"event": "Purchase"}).channel == "direct"


def test_custom_properties_are_kept_as_json_whatever_their_shape() -> None:
    custom = {"big": 10**30, "deep": [[[[[[1]]]]]], "text": "é😀", "none": None}
    nested: Any = 1
    for _ in range(300):  # deeper than orjson can write
        nested = [nested]
    custom["very_deep"] = nested
    record = run({"event": "Custom_1", "properties": {"value": 1, **custom}})
    assert msgspec.json.decode(record.properties) == custom


# ------------------------------------------------------------- anonymous id


def test_the_anonymous_id_cookie_wins_over_the_body() -> None:
    body = {"event": "PageView", "user": {"anonymous_id": "from-body"}}
    assert run(body).anonymous_id == "from-body"
    assert run(body, context(cookie_anonymous_id="from-cookie")).anonymous_id == "from-cookie"
    assert run({"event": "PageView"}).anonymous_id == ""


# ---------------------------------------------------------------- event id


def test_an_event_without_event_id_gets_one_from_the_server() -> None:
    first, second = run({"event": "PageView"}), run({"event": "PageView"})
    assert first.event_id_assigned and second.event_id_assigned
    assert first.event_id.startswith("srv-")
    assert first.event_id != second.event_id
    sent = run({"event": "PageView", "event_id": "mine"})
    assert (sent.event_id, sent.event_id_assigned) == ("mine", False)


def test_a_copy_already_seen_from_the_same_source_is_a_duplicate() -> None:
    seen: list[tuple[str, str, str, str]] = []

    def remember(record: Record) -> bool:
        key = (record.pixel_id, record.event, record.event_id, record.source)
        known = key in seen
        seen.append(key)
        return known

    ctx = context(seen=remember)
    body = {"event": "Purchase", "event_id": "o-1"}
    assert isinstance(steps.run(decode(body), ctx), Record)
    assert steps.run(decode(body), ctx) == "duplicate"
    # Server-assigned ids can never match a twin, so they are never looked up.
    assert isinstance(steps.run(decode({"event": "Purchase"}), ctx), Record)
    assert isinstance(steps.run(decode({"event": "Purchase"}), ctx), Record)


# --------------------------------------------------------------------- PII


def test_email_phone_and_external_id_are_stored_as_tiktoks_hashes() -> None:
    user = {"email": " ALICE_abc@gmail.com ", "phone": "(+1)2133734253", "external_id": "user_123"}
    record = run({"event": "Purchase", "user": user}, context("server"))
    assert record.email_sha256 == [EMAIL_SHA256]
    assert record.phone_sha256 == [PHONE_SHA256]
    assert record.external_id_sha256 == [EXTERNAL_ID_SHA256]


def test_lists_of_identifiers_are_hashed_each_and_deduplicated() -> None:
    user = {"email": ["a@x.com", " A@X.com", "", "b@x.com"], "phone": ["not a phone"]}
    record = run({"event": "Lead", "user": user})
    assert record.email_sha256 == [sha256_hex("a@x.com"), sha256_hex("b@x.com")]
    assert record.phone_sha256 == []


def test_phones_without_a_country_code_use_the_pixels_region() -> None:
    ctx = context(pixel=make_pixel(default_phone_region="GB"))
    record = run({"event": "Lead", "user": {"phone": "020 7946 0958"}}, ctx)
    assert record.phone_sha256 == [sha256_hex("+442079460958")]


# ------------------------------------------------------------------ consent


def test_consent_denied_keeps_the_event_without_identifiers() -> None:
    body = {
        "event": "Purchase",
        "event_id": "o-9",
        "consent": "denied",
        "user": {
            "email": "a@example.com",
            "phone": "+12133734253",
            "external_id": "c-1",
            "ttclid": "E.C.P",
            "ttp": "ttp-1",
            "anonymous_id": "anon",
            "locale": "en-US",
        },
        "page": {
            "url": "https://shop.example.com/thanks?email=a%40example.com&ttclid=E.C.P#top",
            "referrer": "https://shop.example.com/checkout?token=secret",
        },
        "properties": {"value": 10, "currency": "USD"},
    }
    record = run(body, context(cookie_anonymous_id="cookie-anon"))
    assert record.consent == "denied"
    assert (record.anonymous_id, record.ip, record.user_agent) == ("", "", "")
    assert (record.ttclid, record.ttp) == ("", "")
    assert record.email_sha256 == record.phone_sha256 == record.external_id_sha256 == []
    assert record.page_url == "https://shop.example.com/thanks"
    assert record.page_referrer == "https://shop.example.com/checkout"
    # Still counted: what happened, when, for how much.
    assert (record.event, record.event_id, record.value, record.currency) == (
        "Purchase",
        "o-9",
        10,
        "USD",
    )


def test_consent_granted_or_unknown_keeps_identifiers() -> None:
    for consent in ("granted", None):
        body = {"event": "PageView", "user": {"anonymous_id": "anon"}}
        if consent:
            body["consent"] = consent
        record = run(body)
        assert (record.anonymous_id, record.ip) == ("anon", PEER)
        assert record.consent == (consent or "unknown")


# ------------------------------------------------------- through the app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[TestClient]:
    with app_client(shared_settings(tmp_path_factory, engine_dir)) as c:
        yield c


@pytest.fixture
def pixel(client: TestClient) -> dict[str, Any]:
    return add_pixel(runtime_of(client))


def test_bots_are_answered_202_and_counted_in_metrics(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    before = metric(client, "pixel_events_dropped_total", reason="bot")
    r = client.post(
        f"/collect?p={pixel['id']}",
        content=orjson.dumps({"events": [{"event": "PageView"}, {"event": "ViewContent"}]}),
        headers=browser_headers(**{"user-agent": GOOGLEBOT_UA}),
    )
    assert r.status_code == 202  # a crawler learns nothing from the answer
    assert r.json() == {"accepted": 0, "rejected": []}
    assert metric(client, "pixel_events_dropped_total", reason="bot") == before + 2
    assert 'pixel_events_dropped_total{reason="bot"}' in client.get("/metrics").text


def test_missing_event_ids_are_counted_in_metrics(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    def missing(source: str) -> float:
        return metric(client, "pixel_events_missing_event_id_total", source=source)

    before = missing("browser"), missing("server")
    r = client.post(
        f"/collect?p={pixel['id']}",
        content=orjson.dumps({"events": [{"event": "PageView"}, {"event": "PageView"}]}),
        headers=browser_headers(),
    )
    assert r.json()["accepted"] == 2
    r = client.post(
        "/api/v1/events",
        content=orjson.dumps(api_body(pixel["id"], [{"event": "Purchase"}, {"event_id": "x",
                                                                          "event": "Lead"}])),
        headers=api_headers(pixel["api_key"]),
    )  # fmt: skip
    assert r.json()["accepted"] == 2
    assert (missing("browser"), missing("server")) == (before[0] + 2, before[1] + 1)
    runtime = runtime_of(client)
    assert wait_for_rows(runtime, 4, pixel["id"]) == 4
    assert wait_for_rows(runtime, 3, pixel["id"], "event_id_assigned") == 3


def test_the_anonymous_id_cookie_is_stored(client: TestClient, pixel: dict[str, Any]) -> None:
    body = {"event": "PageView", "event_id": "c1", "user": {"anonymous_id": "from-body"}}
    r = client.post(
        f"/collect?p={pixel['id']}",
        content=orjson.dumps(body),
        headers=browser_headers(cookie="_px_aid=from-cookie"),
    )
    assert r.status_code == 202
    runtime = runtime_of(client)
    assert wait_for_rows(runtime, 1, pixel["id"]) == 1
    (row,) = select_dicts(
        runtime.database.client(),
        "SELECT anonymous_id FROM events WHERE pixel_id = {p:String}",
        {"p": pixel["id"]},
    )
    assert row["anonymous_id"] == "from-cookie"


def _files_containing(root: Path, needles: list[bytes]) -> dict[bytes, list[Path]]:
    found: dict[bytes, list[Path]] = {n: [] for n in needles}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            try:
                data = path.read_bytes()
            except OSError:  # vanished or unreadable while we walked
                continue
            for needle in needles:
                if needle in data:
                    found[needle].append(path)
    return found


def test_raw_personal_data_never_reaches_the_disk(settings: Settings, engine_dir: Path) -> None:
    tag = uuid.uuid4().hex[:10]
    email = f"Zed.Quux.{tag}@Example.ORG"
    phone = f"+44 7700 9{int(tag, 16) % 100000:05d}"  # a UK number reserved for fiction
    e164 = phone.replace(" ", "")
    canary = f"canary-{tag}"  # not personal: must be found, or the scan proves nothing
    user = {"email": email, "phone": phone, "external_id": f"cust-{tag}"}
    with app_client(settings) as client:
        pixel = add_pixel(runtime_of(client))
        r = client.post(
            f"/collect?p={pixel['id']}",
            content=orjson.dumps(
                {"event": "Lead", "event_id": "b", "user": user, "properties": {"description":
                 canary}, "page": {"url": f"https://shop.example.com/thanks?ref={tag}"}}
            ),
            headers=browser_headers(),
        )  # fmt: skip
        assert r.status_code == 202
        body = api_body(pixel["id"], [{"event": "Purchase", "event_id": "s", "user": user,
                                       "properties": {"description": canary}}])  # fmt: skip
        r = client.post(
            "/api/v1/events", content=orjson.dumps(body), headers=api_headers(pixel["api_key"])
        )
        assert r.json()["accepted"] == 1
    # Stopped gracefully: the log is flushed and the loader has drained it.
    rows = select_dicts(open_database(settings), "SELECT email_sha256, phone_sha256 FROM events")
    assert {r["email_sha256"][0] for r in rows} == {sha256_hex(email.lower())}
    assert {r["phone_sha256"][0] for r in rows} == {sha256_hex(e164)}

    raw = [email.encode(), email.lower().encode(), phone.encode(), e164.encode(),
           f"cust-{tag}".encode()]  # fmt: skip
    for root in (settings.data_dir, engine_dir):
        found = _files_containing(root, [canary.encode(), *raw])
        assert found[canary.encode()], f"the scan of {root} cannot see stored text"
        leaked = {needle.decode(): paths for needle, paths in found.items() if needle in raw}
        assert not any(leaked.values()), leaked


def test_malformed_urls_do_not_break_enrichment() -> None:
    """urlsplit raises on a broken IPv6 literal: the event is kept, without
    the parts that cannot be read."""
    from pixel_server.pipeline import steps as s

    assert s._query("https://[::1/p?utm_source=x") == {}
    assert s._host("http://[oops/") == ""
