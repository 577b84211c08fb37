"""``POST /collect`` (browsers) and ``GET /collect.gif`` (the no-JavaScript fallback).

A browser sends one event, or ``{"pixel_id", "events": [...]}``, as
``text/plain`` (``navigator.sendBeacon``) or ``application/json``; the pixel id
comes from ``?p=`` or the body. 202 means the events are on disk. Every
refusal is a JSON error ``{"error": {"code", "message", "field"}}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from pixel_server.app import create_app
from pixel_server.config import Settings
from pixel_server.ingest.collect import registrable_domain
from tests.ingest_helpers import (
    BROWSER_UA,
    FOREIGN_ORIGIN,
    ORIGIN,
    add_pixel,
    app_client,
    browser_headers,
    metric,
    runtime_of,
    select_dicts,
    settings_with,
    shared_settings,
    wait_for_rows,
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[TestClient]:
    """One app for the module (each test has its own pixel); tests that need
    other settings or a stop build their own."""
    with app_client(shared_settings(tmp_path_factory, engine_dir)) as c:
        yield c


@pytest.fixture
def pixel(client: TestClient) -> dict[str, Any]:
    return add_pixel(runtime_of(client))


def post(
    client: TestClient,
    body: Any,
    pixel_id: str | None = None,
    *,
    content_type: str = "text/plain;charset=UTF-8",
    **headers: str,
) -> Any:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    url = f"/collect?p={pixel_id}" if pixel_id else "/collect"
    return client.post(
        url, content=content, headers=browser_headers(**{"content-type": content_type, **headers})
    )


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    if field is not None:
        assert error["field"] == field


def view_content(**extra: Any) -> dict[str, Any]:
    return {
        "event": "ViewContent",
        "event_id": f"vc-{time.time_ns()}",
        "page": {"url": "https://shop.example.com/p/red-shoes"},
        "properties": {"contents": [{"content_id": "sku-1", "price": 10.5}], "currency": "USD"},
        **extra,
    }


# ------------------------------------------------------------------ accepted


def test_a_single_event_sent_by_sendbeacon_is_accepted_and_stored(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    r = post(client, view_content(event_id="one"), pixel["id"])
    assert r.status_code == 202
    assert r.json() == {"accepted": 1, "rejected": []}
    runtime = runtime_of(client)
    assert wait_for_rows(runtime, 1, pixel["id"]) == 1
    (row,) = select_dicts(
        runtime.database.client(),
        "SELECT pixel_id, event, event_id, toString(source) AS source, page_url, user_agent"
        " FROM events WHERE pixel_id = {p:String}",
        {"p": pixel["id"]},
    )
    assert row == {
        "pixel_id": pixel["id"],
        "event": "ViewContent",
        "event_id": "one",
        "source": "browser",
        "page_url": "https://shop.example.com/p/red-shoes",
        "user_agent": BROWSER_UA,
    }


def test_a_batch_sent_as_application_json_is_accepted(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    events = [view_content(event_id=f"b{i}") for i in range(3)]
    r = post(client, {"pixel_id": pixel["id"], "events": events}, content_type="application/json")
    assert r.status_code == 202
    assert r.json() == {"accepted": 3, "rejected": []}
    assert wait_for_rows(runtime_of(client), 3, pixel["id"]) == 3


def test_the_pixel_id_may_come_from_a_single_event_body(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    r = post(client, {"pixel_id": pixel["id"], **view_content()})
    assert r.status_code == 202
    assert r.json()["accepted"] == 1


def test_the_query_pixel_id_wins_over_the_body(client: TestClient, pixel: dict[str, Any]) -> None:
    r = post(client, {"pixel_id": pixel["id"], **view_content()}, "px_doesnotexist")
    assert_error(r, 404, "unknown_pixel", "pixel_id")


def test_a_batch_keeps_the_valid_events_and_lists_the_rejected_ones(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    bad = view_content(properties={"contents": [{"content_id": "x", "price": "free"}]})
    r = post(client, {"events": [view_content(), bad, view_content()]}, pixel["id"])
    assert r.status_code == 202
    body = r.json()
    assert body["accepted"] == 2
    (rejection,) = body["rejected"]
    assert rejection["index"] == 1
    assert rejection["code"] == "invalid_field"
    assert rejection["field"] == "events[1].properties.contents[0].price"
    assert wait_for_rows(runtime_of(client), 2, pixel["id"]) == 2


def test_events_without_an_origin_header_are_accepted(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    # Not a browser cross-site request (a same-origin navigation or a tool): no CORS check.
    r = post(client, view_content(), pixel["id"])
    assert r.status_code == 202
    assert "access-control-allow-origin" not in r.headers


# -------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b'{"event": "PageView"', "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
        (b"[1, 2]", "invalid_body"),
        (b'"PageView"', "invalid_body"),
        (b'{"events": []}', "invalid_body"),
        (b'{"event": "PageView", "events": [{"event": "PageView"}]}', "invalid_body"),
    ],
)
def test_a_malformed_body_is_400(
    client: TestClient, pixel: dict[str, Any], body: bytes, code: str
) -> None:
    assert_error(post(client, body, pixel["id"]), 400, code)


def test_an_empty_body_is_400(client: TestClient, pixel: dict[str, Any]) -> None:
    assert_error(post(client, b"", pixel["id"]), 400, "empty_body")


def test_no_pixel_id_is_400(client: TestClient) -> None:
    assert_error(post(client, view_content()), 400, "missing_pixel_id", "pixel_id")


def test_an_unknown_pixel_is_404(client: TestClient) -> None:
    assert_error(post(client, view_content(), "px_nosuchpixel"), 404, "unknown_pixel", "pixel_id")


def test_a_disabled_pixel_is_403(client: TestClient, pixel: dict[str, Any]) -> None:
    runtime_of(client).management.run("pixel.update", {"id": pixel["id"], "enabled": False})
    assert_error(post(client, view_content(), pixel["id"]), 403, "pixel_disabled", "pixel_id")
    r = client.get(f"/collect.gif?p={pixel['id']}&u=https://shop.example.com/")
    assert_error(r, 403, "pixel_disabled")


def test_a_foreign_origin_is_403_without_cors_headers(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    r = post(client, view_content(), pixel["id"], origin=FOREIGN_ORIGIN)
    assert_error(r, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in r.headers


def test_get_collect_is_405(client: TestClient, pixel: dict[str, Any]) -> None:
    assert_error(client.get(f"/collect?p={pixel['id']}"), 405, "method_not_allowed")


def test_a_body_over_64_kb_is_413_by_content_length(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    padding = "x" * (64 * 1024)
    r = post(client, view_content(properties={"note": padding}), pixel["id"])
    assert_error(r, 413, "body_too_large")


def test_a_chunked_body_over_64_kb_is_413(client: TestClient, pixel: dict[str, Any]) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"event": "PageView", "properties": {"note": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}}'

    r = client.post(f"/collect?p={pixel['id']}", content=chunks(), headers=browser_headers())
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert_error(r, 413, "body_too_large")


def test_a_streamed_body_is_refused_as_soon_as_it_passes_64_kb(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    # Straight through ASGI: the test client would read the whole body first.
    chunks_read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal chunks_read
        chunks_read += 1
        more = chunks_read < 1000  # 1000 KB on offer
        return {"type": "http.request", "body": b"x" * 1024, "more_body": more}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/collect",
        "raw_path": b"/collect",
        "root_path": "",
        "query_string": f"p={pixel['id']}".encode(),
        "headers": [(b"host", b"testserver"), (b"content-type", b"text/plain")],
        "client": ("192.0.2.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 413
    assert orjson.loads(sent[1]["body"])["error"]["code"] == "body_too_large"
    assert chunks_read == 65  # stopped at the first chunk past 64 KB


def test_more_than_50_events_is_413(client: TestClient, pixel: dict[str, Any]) -> None:
    events = [{"event": "PageView"} for _ in range(51)]
    r = post(client, {"events": events}, pixel["id"])
    assert_error(r, 413, "too_many_events", "events")
    r = post(client, {"events": events[:50]}, pixel["id"])
    assert r.status_code == 202


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/html", ""],
)
def test_other_content_types_are_415(
    client: TestClient, pixel: dict[str, Any], content_type: str
) -> None:
    r = post(client, view_content(), pixel["id"], content_type=content_type)
    assert_error(r, 415, "unsupported_media_type")


def test_an_invalid_event_is_422_with_the_field_path(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    bad = view_content(properties={"contents": [{"content_id": "sku", "price": -1}]})
    r = post(client, {"events": [bad]}, pixel["id"])
    assert_error(r, 422, "invalid_field", "events[0].properties.contents[0].price")
    r = post(client, {"event": "Not a name!"}, pixel["id"])
    assert_error(r, 422, "invalid_event_name", "events[0].event")
    r = post(client, {"event": "PageView", "event_time": time.time() - 3 * 86400}, pixel["id"])
    assert_error(r, 422, "event_too_old", "events[0].event_time")
    r = post(client, {"event": "PageView", "page": {"url": "javascript:alert(1)"}}, pixel["id"])
    assert_error(r, 422, "invalid_field", "events[0].page.url")


def test_too_many_events_from_one_ip_is_429_with_retry_after(settings: Settings) -> None:
    # PIXEL_RATE_LIMIT_IP=1 event/s, burst 2.
    tiny = settings_with(settings, PIXEL_RATE_LIMIT_IP="1", PIXEL_RATE_LIMIT_IP_BURST="2")
    with app_client(tiny) as client:
        pixel = add_pixel(runtime_of(client))
        events = {"events": [{"event": "PageView"}, {"event": "PageView"}]}
        assert post(client, events, pixel["id"]).status_code == 202  # the whole burst
        r = post(client, events, pixel["id"])
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["message"].endswith(f"{r.headers['retry-after']}s")
        assert metric(client, "pixel_requests_rejected_total", code="rate_limited") == 1


# ---------------------------------------------------------------------- CORS


def test_preflight_from_a_registered_origin_is_allowed(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    r = client.options(
        f"/collect?p={pixel['id']}",
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "content-type" in r.headers["access-control-allow-headers"].lower()
    assert "origin" in r.headers["vary"].lower()


@pytest.mark.parametrize("origin", [FOREIGN_ORIGIN, "https://shop.example.com.evil.net", None])
def test_preflight_from_another_origin_is_403(
    client: TestClient, pixel: dict[str, Any], origin: str | None
) -> None:
    headers = {"access-control-request-method": "POST"}
    if origin:
        headers["origin"] = origin
    r = client.options(f"/collect?p={pixel['id']}", headers=headers)
    assert_error(r, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in r.headers


def test_preflight_for_an_unknown_pixel_is_403(client: TestClient) -> None:
    r = client.options(
        "/collect?p=px_nosuchpixel",
        headers={"origin": ORIGIN, "access-control-request-method": "POST"},
    )
    assert_error(r, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in r.headers


def test_a_post_from_a_registered_origin_carries_cors_headers(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    r = post(client, view_content(), pixel["id"], origin=ORIGIN)
    assert r.status_code == 202
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.headers["access-control-allow-credentials"] == "true"
    # The store's script may read why an event was refused.
    r = post(client, {"event": "bad name"}, pixel["id"], origin=ORIGIN)
    assert r.status_code == 422
    assert r.headers["access-control-allow-origin"] == ORIGIN


def test_errors_for_a_foreign_origin_carry_no_cors_headers(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    for body in (b"{bad", orjson.dumps({"event": "bad name"}), orjson.dumps(view_content())):
        r = post(client, body, pixel["id"], origin=FOREIGN_ORIGIN)
        assert r.status_code in (400, 403)
        assert "access-control-allow-origin" not in r.headers


# ------------------------------------------------------------ anonymous id


def test_the_anonymous_id_cookie_is_set_for_a_first_party_request(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    r = post(client, view_content(user={"anonymous_id": "anon-123"}), pixel["id"])
    assert r.status_code == 202
    assert r.cookies.get("_px_aid") == "anon-123"
    assert "httponly" in r.headers["set-cookie"].lower()


# ---------------------------------------------------------------------- GIF


def test_the_gif_answers_a_1x1_gif_and_stores_a_page_view(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    r = client.get(
        "/collect.gif",
        params={"p": pixel["id"], "u": "https://shop.example.com/about?utm_source=news"},
        headers={"user-agent": BROWSER_UA},
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/gif"
    assert r.content.startswith(b"GIF89a")
    assert r.content[6:10] == b"\x01\x00\x01\x00"  # width 1, height 1 (little-endian)
    assert "no-store" in r.headers["cache-control"]
    runtime = runtime_of(client)
    assert wait_for_rows(runtime, 1, pixel["id"]) == 1
    (row,) = select_dicts(
        runtime.database.client(),
        "SELECT event, toString(source) AS source, page_url, utm_source FROM events"
        " WHERE pixel_id = {p:String}",
        {"p": pixel["id"]},
    )
    assert row == {
        "event": "PageView",
        "source": "browser",
        "page_url": "https://shop.example.com/about?utm_source=news",
        "utm_source": "news",
    }


def test_the_gif_for_an_unknown_pixel_is_a_json_404(client: TestClient) -> None:
    r = client.get("/collect.gif?p=px_nosuchpixel&u=https://shop.example.com/")
    assert_error(r, 404, "unknown_pixel")
    assert_error(client.get("/collect.gif"), 400, "missing_pixel_id")


@pytest.mark.parametrize("name", ["Purchase", "AddToCart", "Custom_1", ""])
def test_the_gif_stores_pageviews_only(
    client: TestClient, pixel: dict[str, Any], name: str
) -> None:
    headers = {"user-agent": BROWSER_UA, "referer": "https://shop.example.com/"}
    r = client.get("/collect.gif", params={"p": pixel["id"], "e": name}, headers=headers)
    assert_error(r, 422, "pageview_only")


@pytest.mark.parametrize(
    "page",
    ["https://evil.example.net/", "http://shop.example.com/", "https://shop.example.com:8443/"],
)
def test_the_gif_refuses_pages_outside_the_pixels_origins(
    client: TestClient, pixel: dict[str, Any], page: str
) -> None:
    r = client.get("/collect.gif", params={"p": pixel["id"]},
                   headers={"user-agent": BROWSER_UA, "referer": page})  # fmt: skip
    assert_error(r, 403, "origin_not_allowed")
    r = client.get("/collect.gif", params={"p": pixel["id"], "u": page},
                   headers={"user-agent": BROWSER_UA})  # fmt: skip
    assert_error(r, 403, "origin_not_allowed")


def test_rejections_are_counted_in_metrics(client: TestClient, pixel: dict[str, Any]) -> None:
    def rejected(code: str) -> float:
        return metric(client, "pixel_requests_rejected_total", endpoint="collect", code=code)

    before = rejected("invalid_json"), rejected("unknown_pixel")
    post(client, b"{bad", pixel["id"])
    post(client, view_content(), "px_nosuchpixel")
    assert (rejected("invalid_json"), rejected("unknown_pixel")) == (before[0] + 1, before[1] + 1)


@pytest.mark.parametrize(
    ("host", "site"),
    [
        ("www.shop.co.uk", "shop.co.uk"),
        ("pixels.shop.co.uk", "shop.co.uk"),
        ("other.co.uk", "other.co.uk"),
        ("a.myshopify.com", "a.myshopify.com"),
        ("t.shop.example.com", "example.com"),
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "localhost"),
        ("[::1]", "[::1]"),
    ],
)
def test_registrable_domains_come_from_the_public_suffix_list(host: str, site: str) -> None:
    assert registrable_domain(host) == site


@pytest.mark.parametrize(
    ("server", "origin", "first_party"),
    [
        ("http://pixels.shop.co.uk", "https://www.shop.co.uk", True),
        # two different stores under one public suffix are not one site
        ("http://pixels.shop.co.uk", "https://www.other.co.uk", False),
        ("http://px.a.myshopify.com", "https://b.myshopify.com", False),
    ],
)
def test_the_cookie_is_set_only_for_the_stores_own_site(
    settings: Settings, server: str, origin: str, first_party: bool
) -> None:
    with TestClient(create_app(settings), base_url=server) as c:
        pixel = add_pixel(runtime_of(c), origins=[origin])
        r = post(c, view_content(user={"anonymous_id": "a-1"}), pixel["id"], origin=origin)
        assert r.status_code == 202
        assert ("_px_aid=a-1" in r.headers.get("set-cookie", "")) is first_party
