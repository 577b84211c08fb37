"""``POST /api/v1/events`` (store back ends), the published schemas, and what
ends up in ClickHouse from both ingest endpoints.

The body is TikTok's Events API 2.0 form (``event_source``, ``event_source_id``,
``data``), authenticated by the pixel's API key as a Bearer token. The answer
is 200 with per-index rejections when at least one event was taken, 422 when
none was, and a JSON error ``{"error": {"code", "message", "field"}}`` for
every refusal of the request as a whole.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31
from starlette.testclient import TestClient

from pixel_server.config import Settings
from tests.ingest_helpers import (
    BROWSER_UA,
    ORIGIN,
    add_pixel,
    api_body,
    api_headers,
    app_client,
    browser_headers,
    metric,
    open_database,
    runtime_of,
    select_dicts,
    shared_settings,
    wait_for_rows,
)

EMAIL_SHA256 = "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f"
PHONE_SHA256 = "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd"
EXTERNAL_ID_SHA256 = "80fba0ae1c48e3978e43e4efc365e14e12ea0c830ba8ba5b9a2dafc7e3f2ab8b"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[TestClient]:
    """One app for the module (each test has its own pixel); tests that read
    what a graceful stop flushed build their own."""
    with app_client(shared_settings(tmp_path_factory, engine_dir)) as c:
        yield c


@pytest.fixture
def pixel(client: TestClient) -> dict[str, Any]:
    return add_pixel(runtime_of(client))


def send(client: TestClient, api_key: str, body: Any, **headers: str) -> Any:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(
        "/api/v1/events", content=content, headers={**api_headers(api_key), **headers}
    )


def purchase(event_id: str = "order-1", **extra: Any) -> dict[str, Any]:
    return {
        "event": "Purchase",
        "event_id": event_id,
        "event_time": int(time.time()) - 60,
        "user": {"email": "shopper@example.com", "ip": "203.0.113.9"},
        "properties": {
            "contents": [{"content_id": "sku-1", "price": 20, "quantity": 2}],
            "value": 40,
            "currency": "USD",
            "order_id": event_id,
        },
        **extra,
    }


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    if field is not None:
        assert error["field"] == field


# ------------------------------------------------------------------ accepted


def test_events_with_the_pixels_key_are_accepted_and_stored(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    body = api_body(pixel["id"], [purchase("o-1"), purchase("o-2")])
    r = send(client, pixel["api_key"], body)
    assert r.status_code == 200
    assert r.json() == {
        "code": 0,
        "message": "OK",
        "accepted": 2,
        "duplicates": 0,
        "dropped": {},
        "rejected": [],
    }
    runtime = runtime_of(client)
    assert wait_for_rows(runtime, 2, pixel["id"]) == 2
    rows = select_dicts(
        runtime.database.client(),
        "SELECT event_id, toString(source) AS source, ip FROM events"
        " WHERE pixel_id = {p:String} ORDER BY event_id",
        {"p": pixel["id"]},
    )
    assert rows == [
        {"event_id": "o-1", "source": "server", "ip": "203.0.113.9"},
        {"event_id": "o-2", "source": "server", "ip": "203.0.113.9"},
    ]


def test_event_source_id_may_be_the_tiktok_pixel_code(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    runtime_of(client).management.run(
        "pixel.update", {"id": pixel["id"], "tiktok_pixel_code": "C4A1B2C3D4"}
    )
    r = send(client, pixel["api_key"], api_body("C4A1B2C3D4", [purchase()]))
    assert r.status_code == 200
    assert r.json()["accepted"] == 1
    assert wait_for_rows(runtime_of(client), 1, pixel["id"]) == 1


def test_legacy_names_are_stored_under_the_current_name(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    events = [
        {"event": "CompletePayment", "event_id": "lp-1"},
        {"event": "SubmitForm", "event_id": "lp-2"},
        {"event": "purchase", "event_id": "lp-3"},
    ]
    assert send(client, pixel["api_key"], api_body(pixel["id"], events)).status_code == 200
    runtime = runtime_of(client)
    assert wait_for_rows(runtime, 3, pixel["id"]) == 3
    rows = select_dicts(
        runtime.database.client(),
        "SELECT event_id, event, received_event FROM events"
        " WHERE pixel_id = {p:String} ORDER BY event_id",
        {"p": pixel["id"]},
    )
    assert rows == [
        {"event_id": "lp-1", "event": "Purchase", "received_event": "CompletePayment"},
        {"event_id": "lp-2", "event": "Lead", "received_event": "SubmitForm"},
        {"event_id": "lp-3", "event": "Purchase", "received_event": "purchase"},
    ]


def test_some_events_may_be_rejected_by_index_while_the_rest_are_stored(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    data = [purchase(f"p-{i}") for i in range(5)]
    data[3]["properties"]["contents"][0]["price"] = -5
    data[4]["event_time"] = time.time() + 3600
    r = send(client, pixel["api_key"], api_body(pixel["id"], data))
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 3
    assert body["message"] == "2 events rejected"
    assert [(x["index"], x["code"], x["field"]) for x in body["rejected"]] == [
        (3, "invalid_field", "data[3].properties.contents[0].price"),
        (4, "event_in_future", "data[4].event_time"),
    ]
    assert wait_for_rows(runtime_of(client), 3, pixel["id"]) == 3


def test_amounts_too_large_to_store_are_rejected_and_loading_goes_on(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    data = [purchase("big-1"), purchase("big-2"), purchase("largest")]
    data[0]["properties"]["value"] = 1e14  # the column is Decimal(18, 4)
    data[1]["properties"]["contents"][0]["price"] = 1e20
    data[2]["properties"]["value"] = 99_999_999_999_999.98
    r = send(client, pixel["api_key"], api_body(pixel["id"], data))
    assert r.status_code == 200
    assert [(x["index"], x["field"]) for x in r.json()["rejected"]] == [
        (0, "data[0].properties.value"),
        (1, "data[1].properties.contents[0].price"),
    ]
    runtime = runtime_of(client)
    assert wait_for_rows(runtime, 1, pixel["id"]) == 1
    (row,) = select_dicts(
        runtime.database.client(),
        "SELECT value FROM events WHERE pixel_id = {p:String}",
        {"p": pixel["id"]},
    )
    assert row["value"] == Decimal("99999999999999.98")


def test_a_request_whose_events_are_all_invalid_is_422(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    data = [{"event": "Purchase", "properties": {"currency": "usd"}}, {"event": ""}]
    r = send(client, pixel["api_key"], api_body(pixel["id"], data))
    assert r.status_code == 422
    body = r.json()
    assert body["code"] != 0
    assert body["accepted"] == 0
    assert [x["field"] for x in body["rejected"]] == [
        "data[0].properties.currency",
        "data[1].event",
    ]
    assert body["error"]["field"] == "data[0].properties.currency"


# ------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer pk_wrong"],
)
def test_a_missing_or_wrong_key_is_401_before_the_body_is_read(
    client: TestClient, pixel: dict[str, Any], authorization: str | None
) -> None:
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    received = metric(client, "pixel_events_received_total", source="server")
    for body in (orjson.dumps(api_body(pixel["id"], [purchase()])), b"{not json", b""):
        r = client.post("/api/v1/events", content=body, headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] in ("missing_api_key", "invalid_api_key")
        assert r.headers["www-authenticate"] == "Bearer"
    assert metric(client, "pixel_events_received_total", source="server") == received


def test_the_key_of_another_pixel_is_403(client: TestClient, pixel: dict[str, Any]) -> None:
    other = add_pixel(runtime_of(client), name="Other shop")
    r = send(client, other["api_key"], api_body(pixel["id"], [purchase()]))
    assert_error(r, 403, "wrong_pixel", "event_source_id")
    r = send(client, pixel["api_key"], api_body("px_nosuchpixel", [purchase()]))
    assert_error(r, 403, "wrong_pixel", "event_source_id")


def test_a_disabled_pixel_is_403(client: TestClient, pixel: dict[str, Any]) -> None:
    runtime_of(client).management.run("pixel.update", {"id": pixel["id"], "enabled": False})
    r = send(client, pixel["api_key"], api_body(pixel["id"], [purchase()]))
    assert_error(r, 403, "pixel_disabled")


def test_after_rotating_the_key_only_the_new_key_works(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    body = api_body(pixel["id"], [purchase()])
    assert send(client, pixel["api_key"], body).status_code == 200
    rotated = runtime_of(client).management.run("pixel.rotate_key", {"id": pixel["id"]})
    assert rotated["api_key"] != pixel["api_key"]
    assert_error(send(client, pixel["api_key"], body), 401, "invalid_api_key")
    assert send(client, rotated["api_key"], body).status_code == 200


# ------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b"{not json", 400, "invalid_json", None),
        (b"[]", 400, "invalid_body", None),
        (b"null", 400, "invalid_body", None),
        (b'{"event_source_id": "x", "data": [{}]}', 422, "missing_field", "event_source"),
        (b'{"event_source": "app", "event_source_id": "x", "data": [{}]}', 422,
         "invalid_field", "event_source"),
        (b'{"event_source": "web", "event_source_id": "x", "data": []}', 422,
         "invalid_field", "data"),
        (b'{"event_source": "web", "event_source_id": "", "data": [{}]}', 422,
         "invalid_field", "event_source_id"),
    ],
)  # fmt: skip
def test_a_malformed_envelope_is_refused(
    client: TestClient,
    pixel: dict[str, Any],
    body: bytes,
    status: int,
    code: str,
    field: str | None,
) -> None:
    assert_error(send(client, pixel["api_key"], body), status, code, field)


def test_an_empty_body_is_400(client: TestClient, pixel: dict[str, Any]) -> None:
    assert_error(send(client, pixel["api_key"], b""), 400, "empty_body")


def test_more_than_1000_events_is_413(client: TestClient, pixel: dict[str, Any]) -> None:
    data = [{"event": "PageView", "event_id": str(i)} for i in range(1001)]
    r = send(client, pixel["api_key"], api_body(pixel["id"], data))
    assert_error(r, 413, "too_many_events", "data")
    r = send(client, pixel["api_key"], api_body(pixel["id"], data[:1000]))
    assert r.status_code == 200
    assert r.json()["accepted"] == 1000


def test_a_body_over_5_mb_is_413(client: TestClient, pixel: dict[str, Any]) -> None:
    body = b'{"event_source": "web", "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    assert_error(send(client, pixel["api_key"], body), 413, "body_too_large")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_content_types_other_than_json_are_415(
    client: TestClient, pixel: dict[str, Any], content_type: str
) -> None:
    body = api_body(pixel["id"], [purchase()])
    r = send(client, pixel["api_key"], body, **{"content-type": content_type})
    assert_error(r, 415, "unsupported_media_type")


# ------------------------------------------------------------------ schemas


def test_openapi_json_is_a_valid_openapi_3_1_document(client: TestClient) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    jsonschema_rs.validator_for(OPENAPI_31).validate(doc)
    assert doc["openapi"].startswith("3.1")
    operation = doc["paths"]["/api/v1/events"]["post"]
    assert {"200", "400", "401", "403", "413", "415", "422", "429"} <= set(operation["responses"])
    assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    # Every $ref resolves: validate real bodies against the request schema.
    request = jsonschema_rs.validator_for(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **operation["requestBody"]["content"]["application/json"]["schema"],
            "components": doc["components"],
        }
    )
    assert request.is_valid(api_body("px_x", [purchase(), {"event": "PageView"}]))
    assert not request.is_valid(api_body("px_x", [{"event": 5}]))
    assert not request.is_valid({"event_source": "web", "data": []})


def test_schema_event_json_is_a_json_schema_of_one_event(client: TestClient) -> None:
    r = client.get("/schema/event.json")
    assert r.status_code == 200
    schema = r.json()
    jsonschema_rs.meta.validate(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validator = jsonschema_rs.validator_for(schema)
    assert validator.is_valid(purchase())
    assert validator.is_valid({"event": "ViewContent", "page": {"url": "https://a.example/"}})
    assert not validator.is_valid({"event": "Purchase", "properties": {"value": -1}})
    assert not validator.is_valid({"user": {}})  # event is required


# ------------------------------------------------------------------- dedup


def test_a_second_copy_from_the_same_source_collapses(settings: Settings) -> None:
    with app_client(settings) as client:
        pixel = add_pixel(runtime_of(client))
        before = metric(client, "pixel_duplicates_collapsed_total", source="server")
        body = api_body(pixel["id"], [purchase("dup-1")])
        first = send(client, pixel["api_key"], body).json()
        second = send(client, pixel["api_key"], body).json()
        assert (first["accepted"], first["duplicates"]) == (1, 0)
        assert (second["accepted"], second["duplicates"]) == (1, 1)
        assert second["dropped"] == {"duplicate": 1}
        after = metric(client, "pixel_duplicates_collapsed_total", source="server")
        assert after == before + 1
        # Another event name with the same id is another event.
        third = send(client, pixel["api_key"], api_body(pixel["id"], [
            {**purchase("dup-1"), "event": "AddToCart"}
        ])).json()  # fmt: skip
        assert third["duplicates"] == 0
    ch = open_database(settings)
    rows = select_dicts(ch, "SELECT event, event_id FROM events ORDER BY event")
    assert rows == [
        {"event": "AddToCart", "event_id": "dup-1"},
        {"event": "Purchase", "event_id": "dup-1"},
    ]


def test_browser_and_server_copies_of_one_event_are_both_kept(settings: Settings) -> None:
    with app_client(settings) as client:
        pixel = add_pixel(runtime_of(client))
        event = purchase("order-42")
        r = client.post(
            f"/collect?p={pixel['id']}", content=orjson.dumps(event), headers=browser_headers()
        )
        assert r.status_code == 202
        r = send(client, pixel["api_key"], api_body(pixel["id"], [event]))
        assert r.json()["duplicates"] == 0
    rows = select_dicts(
        open_database(settings),
        "SELECT event, event_id, toString(source) AS source FROM events ORDER BY source",
    )
    assert rows == [
        {"event": "Purchase", "event_id": "order-42", "source": "browser"},
        {"event": "Purchase", "event_id": "order-42", "source": "server"},
    ]


# -------------------------------------------------------- what is stored


_COLUMNS = """
    event, received_event, event_id, toString(source) AS source, event_id_assigned,
    toUnixTimestamp64Milli(event_time) AS event_time_ms,
    toUnixTimestamp64Milli(received_at) AS received_at_ms,
    anonymous_id, ip, user_agent, ttclid, ttp, locale,
    email_sha256, phone_sha256, external_id_sha256,
    page_url, page_referrer, referrer_host, channel,
    utm_source, utm_medium, utm_campaign, utm_content, utm_term,
    value, currency, order_id, search_query, content_type, description,
    contents.content_id AS content_id, contents.item_group_id AS item_group_id,
    contents.name AS content_name, contents.category AS content_category,
    contents.brand AS brand, contents.quantity AS quantity, contents.price AS price,
    properties, toString(consent) AS consent, limited_data_use, test_event_code
"""

# Every column's value when the event says nothing about it.
_EMPTY: dict[str, Any] = {
    "event_id_assigned": False,
    "anonymous_id": "",
    "ip": "",
    "user_agent": "",
    "ttclid": "",
    "ttp": "",
    "locale": "",
    "email_sha256": [],
    "phone_sha256": [],
    "external_id_sha256": [],
    "page_url": "",
    "page_referrer": "",
    "referrer_host": "",
    "channel": "direct",
    "utm_source": "",
    "utm_medium": "",
    "utm_campaign": "",
    "utm_content": "",
    "utm_term": "",
    "value": None,
    "currency": "",
    "order_id": "",
    "search_query": "",
    "content_type": "",
    "description": "",
    "content_id": [],
    "item_group_id": [],
    "content_name": [],
    "content_category": [],
    "brand": [],
    "quantity": [],
    "price": [],
    "properties": "",
    "consent": "unknown",
    "limited_data_use": False,
    "test_event_code": "",
}


def test_every_column_holds_what_was_sent(settings: Settings) -> None:
    now = time.time()
    t_purchase = round(now - 3600, 3) + 0.0004  # sub-millisecond digits are dropped
    t_iso = datetime.fromtimestamp(now - 7200, timezone(timedelta(hours=2)))
    t_view = round(now - 60.5, 3)
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
    server_events = [
        {
            "event": "Purchase",
            "event_id": "order-1001",
            "event_time": t_purchase,
            "user": {
                "email": " ALICE_abc@gmail.com ",
                "phone": "(+1)2133734253",
                "external_id": "user_123",
                "ip": "203.0.113.9",
                "user_agent": iphone,
                "ttclid": "E.C.P.click",
                "ttp": "ttp-cookie",
                "locale": "en-US",
            },
            "properties": {
                "contents": [
                    {
                        "content_id": "sku-1",
                        "item_group_id": 42,
                        "content_name": "Red shoes",
                        "content_category": "Shoes",
                        "brand": "Acme",
                        "price": 19.99,
                        "quantity": 2,
                    },
                    {"content_id": 7, "price": 5},
                ],
                "content_type": "product",
                "value": 44.98,
                "currency": "EUR",
                "order_id": 1001,
                "description": "gift order",
                "gift_wrap": True,
                "coupon": {"code": "SPRING", "percent": 10},
            },
            "page": {
                "url": "https://shop.example.com/checkout?utm_source=tiktok&utm_medium=paid"
                "&utm_campaign=spring&utm_content=v1&utm_term=shoes",
                "referrer": "https://www.tiktok.com/@acme",
            },
            "consent": "granted",
            "limited_data_use": True,
        },
        {"event": "CompletePayment", "event_id": 77, "event_time": t_iso.isoformat()},
        {
            "event": "Search",
            "event_id": "s-1",
            "properties": {"query": "blue socks", "value": 0},
            "page": {
                "url": "https://shop.example.com/search",
                "referrer": "https://www.google.com/search?q=socks",
            },
        },
    ]
    browser_events = [
        {
            "event": "ViewContent",
            "event_id": "v-1",
            "event_time": t_view,
            "user": {"anonymous_id": "anon-1", "ttp": "ttp-b", "ip": "10.9.9.9"},
            "page": {
                "url": "https://shop.example.com/p/1?ttclid=E.C.P.fromurl&utm_source=tiktok",
                "referrer": "https://shop.example.com/",
            },
            "properties": {"contents": [{"content_id": "sku-9", "price": 12.5}]},
        },
        {
            "event": "AddToCart",
            "event_id": "a-1",
            "consent": "denied",
            "user": {"email": "bob@example.com", "ttclid": "x", "anonymous_id": "anon-2"},
            "page": {"url": "https://shop.example.com/p/2?fbclid=abc", "referrer": ""},
        },
        {"event": "PageView", "page": {"url": "https://shop.example.com/?gclid=g1"}},
        {"event": "WishlistShare", "event_id": "c-1", "properties": {"list": [1, "two", None]}},
    ]
    started = time.time()
    with app_client(settings, client=("198.51.100.23", 50000)) as client:
        pixel = add_pixel(runtime_of(client))
        r = send(
            client,
            pixel["api_key"],
            api_body(pixel["id"], server_events, test_event_code="TEST123"),
        )
        assert r.json()["accepted"] == 3, r.text
        r = client.post(
            f"/collect?p={pixel['id']}",
            content=orjson.dumps({"events": browser_events}),
            headers=browser_headers(origin=ORIGIN),
        )
        assert r.json() == {"accepted": 4, "rejected": []}
    finished = time.time()

    ch = open_database(settings)
    rows = select_dicts(ch, f"SELECT {_COLUMNS} FROM events ORDER BY event_time, event")
    for row in rows:
        assert started * 1000 - 1 <= row.pop("received_at_ms") <= finished * 1000 + 1
    assigned = next(r for r in rows if r["event"] == "PageView")
    assert assigned["event_id"].startswith("srv-") and len(assigned["event_id"]) > 10
    custom = next(r for r in rows if r["event"] == "WishlistShare")
    browser = {
        "source": "browser",
        "ip": "198.51.100.23",  # the peer's address, not what the body claims
        "user_agent": BROWSER_UA,
    }

    def ms(seconds: float) -> int:
        return round(seconds * 1000)

    expected = [
        {
            **_EMPTY,
            "event": "Purchase",
            "received_event": "CompletePayment",
            "event_id": "77",
            "source": "server",
            "event_time_ms": ms(t_iso.timestamp()),
            "test_event_code": "TEST123",
        },
        {
            **_EMPTY,
            "event": "Purchase",
            "received_event": "Purchase",
            "event_id": "order-1001",
            "source": "server",
            "event_time_ms": ms(t_purchase),
            "ip": "203.0.113.9",
            "user_agent": iphone,
            "ttclid": "E.C.P.click",
            "ttp": "ttp-cookie",
            "locale": "en-US",
            "email_sha256": [EMAIL_SHA256],
            "phone_sha256": [PHONE_SHA256],
            "external_id_sha256": [EXTERNAL_ID_SHA256],
            "page_url": server_events[0]["page"]["url"],
            "page_referrer": "https://www.tiktok.com/@acme",
            "referrer_host": "tiktok.com",
            "channel": "tiktok_paid",
            "utm_source": "tiktok",
            "utm_medium": "paid",
            "utm_campaign": "spring",
            "utm_content": "v1",
            "utm_term": "shoes",
            "value": Decimal("44.98"),
            "currency": "EUR",
            "order_id": "1001",
            "content_type": "product",
            "description": "gift order",
            "content_id": ["sku-1", "7"],
            "item_group_id": ["42", ""],
            "content_name": ["Red shoes", ""],
            "content_category": ["Shoes", ""],
            "brand": ["Acme", ""],
            "quantity": [2, 1],
            "price": [Decimal("19.99"), Decimal("5")],
            "properties": custom_json(server_events[0]["properties"]),
            "consent": "granted",
            "limited_data_use": True,
            "test_event_code": "TEST123",
        },
        {
            **_EMPTY,
            **browser,
            "event": "ViewContent",
            "received_event": "ViewContent",
            "event_id": "v-1",
            "event_time_ms": ms(t_view),
            "anonymous_id": "anon-1",
            "ttclid": "E.C.P.fromurl",
            "ttp": "ttp-b",
            "page_url": browser_events[0]["page"]["url"],
            "page_referrer": "https://shop.example.com/",
            "referrer_host": "shop.example.com",
            "channel": "tiktok_paid",
            "utm_source": "tiktok",
            "content_id": ["sku-9"],
            "item_group_id": [""],
            "content_name": [""],
            "content_category": [""],
            "brand": [""],
            "quantity": [1],
            "price": [Decimal("12.5")],
        },
        {
            **_EMPTY,
            "event": "Search",
            "received_event": "Search",
            "event_id": "s-1",
            "source": "server",
            "event_time_ms": rows[3]["event_time_ms"],  # "now" at the server: checked below
            "page_url": "https://shop.example.com/search",
            "page_referrer": "https://www.google.com/search?q=socks",
            "referrer_host": "google.com",
            "channel": "referral",
            "value": Decimal("0"),
            "search_query": "blue socks",
            "test_event_code": "TEST123",
        },
        {
            **_EMPTY,
            "source": "browser",  # consent denied: nothing that identifies the shopper
            "event": "AddToCart",
            "received_event": "AddToCart",
            "event_id": "a-1",
            "event_time_ms": rows[4]["event_time_ms"],
            "page_url": "https://shop.example.com/p/2",
            "channel": "tiktok_paid",  # classified from the click id before it was dropped
            "consent": "denied",
        },
        {
            **_EMPTY,
            **browser,
            "event": "PageView",
            "received_event": "PageView",
            "event_id": assigned["event_id"],
            "event_id_assigned": True,
            "event_time_ms": rows[5]["event_time_ms"],
            "page_url": "https://shop.example.com/?gclid=g1",
            "channel": "other_paid",
        },
        {
            **_EMPTY,
            **browser,
            "event": "WishlistShare",
            "received_event": "WishlistShare",
            "event_id": "c-1",
            "event_time_ms": custom["event_time_ms"],
            "properties": custom_json({"list": [1, "two", None]}),
        },
    ]
    # Events sent without event_time take the server's clock at receipt.
    for row in rows[3:]:
        assert started * 1000 - 1 <= row["event_time_ms"] <= finished * 1000 + 1
    assert [r["event_id"] for r in rows] == [e["event_id"] for e in expected]
    # properties is JSON text: compare its meaning, not its spelling.
    for row, want in zip(rows, expected, strict=True):
        assert _parsed(row) == _parsed(want), row["event_id"]


def custom_json(properties: dict[str, Any]) -> str:
    known = {"contents", "content_type", "value", "currency", "order_id", "query", "description"}
    return orjson.dumps({k: v for k, v in properties.items() if k not in known}).decode()


def _parsed(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["properties"] = orjson.loads(row["properties"]) if row["properties"] else None
    return out


def test_iso_event_times_keep_their_instant(client: TestClient, pixel: dict[str, Any]) -> None:
    when = datetime.now(UTC).replace(microsecond=250_000) - timedelta(hours=1)
    body = api_body(
        pixel["id"],
        [
            {
                "event": "Lead",
                "event_id": "iso",
                "event_time": when.astimezone(timezone(timedelta(hours=-5))).isoformat(),
            }
        ],
    )
    assert send(client, pixel["api_key"], body).status_code == 200
    runtime = runtime_of(client)
    assert wait_for_rows(runtime, 1, pixel["id"]) == 1
    (row,) = select_dicts(
        runtime.database.client(),
        "SELECT toUnixTimestamp64Milli(event_time) AS t FROM events WHERE pixel_id = {p:String}",
        {"p": pixel["id"]},
    )
    assert row["t"] == round(when.timestamp() * 1000)
