"""What TikTok receives: the exact JSON of each event, per source, built
through the real app (``/collect``, ``/api/v1/events``, a Shopify webhook) and
checked field by field at the stand-in; plus how answers are classified and
how the retry delay grows.

The expected hashes are the reference page's own examples
(``reference/tiktok-events-api.md``), not values computed by our code.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient

from pixel_server.app import create_app
from pixel_server.events.names import STANDARD_EVENTS
from pixel_server.pipeline.record import Record
from pixel_server.sinks.tiktok import RetryPolicy, classify, tiktok_event
from tests.ingest_helpers import shared_settings
from tests.standins.tiktok_api import TikTokStandIn, validate_event
from tests.test_forwarder import FAST, wait_for
from tests.webhook_helpers import (
    SECRET,
    ago,
    encode,
    fixture,
    iso_local,
    post_webhook,
    shopify_headers,
    shopify_order,
)

ORIGIN = "https://shop.example.com"
BROWSER_IP = "203.0.113.9"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
CODE, TOKEN = "C4GOLDEN01", "tt-golden-token"
# reference page, "Normalising and hashing"
EMAIL, EMAIL_SHA = (
    " ALICE_abc@gmail.com ",
    ("848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f"),
)
PHONE, PHONE_SHA = (
    "(+1)2133734253",
    ("9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd"),
)
EXTERNAL_ID, EXTERNAL_ID_SHA = (
    "user_123",
    ("80fba0ae1c48e3978e43e4efc365e14e12ea0c830ba8ba5b9a2dafc7e3f2ab8b"),
)
NOW = int(time.time()) - 60
EXTRA_NAMES = ["ViewCategory", "PageView", "SpinTheWheel"]  # sent as custom events
NAMES = sorted(STANDARD_EVENTS) + EXTRA_NAMES


def sent_properties() -> dict[str, Any]:
    return {
        "contents": [{"content_id": "SKU-1077218-RED-M", "item_group_id": 1077218,
                      "content_name": "Sweatshirt", "content_category": "Apparel",
                      "brand": "Acme", "price": 8, "quantity": 2}],
        "content_type": "product", "currency": "USD", "value": 16, "order_id": 10045,
        "query": "red sweatshirt", "description": "kept by us, not sent",
        "colour": "red",  # a custom property: kept by us, not sent
    }  # fmt: skip


EXPECTED_PROPERTIES = {
    "contents": [{"content_id": "SKU-1077218-RED-M", "content_name": "Sweatshirt",
                  "content_category": "Apparel", "brand": "Acme", "price": 8.0, "quantity": 2}],
    "content_type": "product", "currency": "USD", "value": 16.0, "order_id": "10045",
    "query": "red sweatshirt",
}  # fmt: skip
PAGE = {"url": f"{ORIGIN}/p/sweatshirt?ttclid=E.C.P.click-7", "referrer": f"{ORIGIN}/cart"}


def server_input(name: str) -> dict[str, Any]:
    return {
        "event": name,
        "event_id": f"srv-{name}",
        "event_time": NOW,
        "user": {"email": EMAIL, "phone": PHONE, "external_id": EXTERNAL_ID,
                 "ip": "13.57.97.131", "user_agent": "Mozilla/5.0 (iPhone)",
                 "ttclid": "E.C.P.click-7", "ttp": "ttp.1700000000.abc", "locale": "en-US"},
        "properties": sent_properties(),
        "page": PAGE,
    }  # fmt: skip


def server_expected(name: str) -> dict[str, Any]:
    return {
        "event": name,
        "event_time": NOW,
        "event_id": f"srv-{name}",
        "user": {"email": EMAIL_SHA, "phone": PHONE_SHA, "external_id": EXTERNAL_ID_SHA,
                 "ttclid": "E.C.P.click-7", "ttp": "ttp.1700000000.abc", "ip": "13.57.97.131",
                 "user_agent": "Mozilla/5.0 (iPhone)", "locale": "en-US"},
        "properties": EXPECTED_PROPERTIES,
        "page": PAGE,
        "limited_data_use": False,
    }  # fmt: skip


def browser_input(name: str) -> dict[str, Any]:
    return {
        "event": name,
        "event_id": f"web-{name}",
        "event_time": NOW + 0.75,  # milliseconds from the browser: TikTok wants seconds
        "user": {"email": EMAIL, "ttp": "ttp.1700000000.abc", "locale": "en-GB",
                 "anonymous_id": "anon-1"},
        "properties": sent_properties(),
        "page": PAGE,
        "limited_data_use": True,
    }  # fmt: skip


def browser_expected(name: str) -> dict[str, Any]:
    return {
        "event": name,
        "event_time": NOW,
        "event_id": f"web-{name}",
        # ttclid from the landing URL; IP and user agent from the request itself
        "user": {"email": EMAIL_SHA, "ttclid": "E.C.P.click-7", "ttp": "ttp.1700000000.abc",
                 "ip": BROWSER_IP, "user_agent": BROWSER_UA, "locale": "en-GB"},
        "properties": EXPECTED_PROPERTIES,
        "page": PAGE,
        "limited_data_use": True,
    }  # fmt: skip


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def shopify_expected(order: dict[str, Any]) -> dict[str, Any]:
    """The webhook copy of a Shopify order, per shopify.py's documented rules."""
    lines = order["line_items"]
    return {
        "event": "Purchase",
        "event_time": int(order["_created_ts"]),
        "event_id": f"purchase:{order['id']}",
        "user": {"email": sha(order["email"].strip().lower()),
                 # the billing phone "+1 (613) 555-0142" in E.164
                 "phone": sha("+" + "".join(c for c in order["billing_address"]["phone"]
                                            if c.isdigit())),
                 "external_id": sha(str(order["customer"]["id"])),
                 "ip": order["browser_ip"], "user_agent": order["client_details"]["user_agent"],
                 "locale": order["customer_locale"]},
        "properties": {
            "contents": [{"content_id": line["sku"] or str(line["variant_id"]),
                          "content_name": line["title"], "brand": line["vendor"],
                          "price": float(line["price"]), "quantity": line["quantity"]}
                         for line in lines],
            "content_type": "product",
            "currency": order["currency"],
            "value": float(order["total_price"]),
            "order_id": str(order["id"]),
        },
        "limited_data_use": False,
    }  # fmt: skip


@pytest.fixture(scope="module")
def api() -> Iterator[TikTokStandIn]:
    with TikTokStandIn({TOKEN: {CODE}}) as standin:
        yield standin


@pytest.fixture(scope="module")
def received(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path, api: TikTokStandIn
) -> Iterator[dict[str, dict[str, Any]]]:
    """Every golden input sent through the app; what TikTok got, by event_id."""
    app = create_app(shared_settings(tmp_path_factory, engine_dir), forwarder_options=FAST)
    with TestClient(app, client=(BROWSER_IP, 50000)) as client:
        pixel = app.state.runtime.management.run("pixel.add", {
            "name": "Golden", "origins": [ORIGIN], "platform": "shopify",
            "webhook_secret": SECRET, "forward_browser": True, "tiktok_pixel_code": CODE,
            "tiktok_access_token": TOKEN, "tiktok_api_base": api.base_url,
        })  # fmt: skip
        answer = client.post(
            "/api/v1/events",
            json={"event_source": "web", "event_source_id": pixel["id"],
                  "data": [server_input(n) for n in NAMES]},
            headers={"authorization": f"Bearer {pixel['api_key']}"},
        )  # fmt: skip
        assert answer.status_code == 200 and answer.json()["accepted"] == len(NAMES)
        answer = client.post(
            f"/collect?p={pixel['id']}",
            json={"events": [browser_input(n) for n in NAMES]},
            headers={"origin": ORIGIN, "user-agent": BROWSER_UA},
        )
        assert answer.status_code == 202, answer.text
        order = shopify_order_now()
        raw = encode(order)
        answer = post_webhook(client, "shopify", pixel["id"], raw, shopify_headers(raw))
        assert answer.status_code == 200, answer.text
        refund = shopify_refund_now()
        raw = encode(refund)
        answer = post_webhook(client, "shopify", pixel["id"], raw,
                              shopify_headers(raw, topic="refunds/create"))  # fmt: skip
        assert answer.status_code == 200, answer.text
        expected = 2 * len(NAMES) + 2
        assert wait_for(lambda: len(api.events(CODE)) >= expected)
        events = api.events(CODE)
        assert len(events) == expected, "an event was sent twice"
        by_id = {e["event_id"]: e for e in events}
        by_id["_shopify_order"] = order
        by_id["_shopify_refund"] = refund
        yield by_id


def shopify_order_now() -> dict[str, Any]:
    created = ago(30).replace(microsecond=0)
    order = shopify_order(created)
    order["_created_ts"] = created.timestamp()  # unknown keys are ignored by the mapping
    return order


def shopify_refund_now() -> dict[str, Any]:
    created = ago(5).replace(microsecond=0)
    refund: dict[str, Any] = fixture("shopify_refunds_create.json")
    refund["created_at"] = iso_local(created)
    refund["_created_ts"] = created.timestamp()
    return refund


@pytest.mark.parametrize("name", NAMES)
def test_server_copy_is_sent_as_tiktok_expects(name: str, received: dict[str, Any]) -> None:
    assert received[f"srv-{name}"] == server_expected(name)


@pytest.mark.parametrize("name", NAMES)
def test_browser_copy_is_sent_as_tiktok_expects(name: str, received: dict[str, Any]) -> None:
    assert received[f"web-{name}"] == browser_expected(name)


def test_webhook_copy_is_sent_as_tiktok_expects(received: dict[str, Any]) -> None:
    order = received["_shopify_order"]
    assert received[f"purchase:{order['id']}"] == shopify_expected(order)


def test_a_refund_webhook_goes_as_a_custom_event_with_the_amount(
    received: dict[str, Any],
) -> None:
    refund = received["_shopify_refund"]
    (transaction,) = refund["transactions"]
    (line,) = refund["refund_line_items"]
    item = line["line_item"]
    event_id = f"refund:{refund['order_id']}:{refund['id']}"
    # our tables keep -11.00 (revenue nets out); TikTok gets the amount
    assert received[event_id] == {
        "event": "Refund",
        "event_time": int(refund["_created_ts"]),
        "event_id": event_id,
        "properties": {"currency": transaction["currency"],
                       "value": float(transaction["amount"]),
                       "order_id": str(refund["order_id"]),
                       # the line returned: money back for it per unit (10.00 of 11.00;
                       # the 1.00 of tax stays at order level)
                       "content_type": "product",
                       "contents": [{"content_id": str(item["variant_id"]),
                                     "content_name": item["title"], "brand": item["vendor"],
                                     "price": float(line["subtotal"]),
                                     "quantity": line["quantity"]}]},
        "limited_data_use": False,
    }  # fmt: skip


def test_the_request_around_the_events(api: TikTokStandIn, received: dict[str, Any]) -> None:
    exchanges = [x for x in api.exchanges if x.pixel_code == CODE]
    assert exchanges and all(x.http_status == 200 and x.code == 0 for x in exchanges)
    assert all(x.token == TOKEN and x.test_event_code is None for x in exchanges)
    assert all(len(x.event_ids) <= 1000 for x in exchanges)


# ------------------------------------------------------------- the mapping


def record(**fields: Any) -> Record:
    base: dict[str, Any] = {
        "pixel_id": "px_1", "event": "Lead", "received_event": "SubmitForm", "event_id": "lead-1",
        "source": "server", "event_time": 1_767_225_600.9, "received_at": 1_767_225_601.0,
    }  # fmt: skip
    return Record(**{**base, **fields})


def test_an_event_with_nothing_but_its_name_sends_nothing_empty() -> None:
    assert tiktok_event(record()) == {
        "event": "Lead", "event_time": 1_767_225_600, "event_id": "lead-1",
        "limited_data_use": False,
    }  # fmt: skip


def test_several_hashes_go_as_an_array_and_contents_default_to_products() -> None:
    event = tiktok_event(record(
        email_sha256=["a" * 64, "b" * 64], phone_sha256=["c" * 64],
        contents=[("SKU-1", "G1", "", "", "", 3, None)], value=0.0, currency="EUR",
    ))  # fmt: skip
    assert event["user"] == {"email": ["a" * 64, "b" * 64], "phone": "c" * 64}
    assert event["properties"] == {
        "contents": [{"content_id": "SKU-1", "quantity": 3}], "content_type": "product",
        "currency": "EUR", "value": 0.0,
    }  # fmt: skip


@pytest.mark.parametrize("name", ["ViewCategory", "PageView", "Refund", "PlaceAnOrder"])
def test_non_standard_names_pass_as_custom_events(name: str) -> None:
    event = tiktok_event(record(event=name, event_time=time.time()))
    assert event["event"] == name
    validate_event(json.loads(json.dumps(event)), "data.0", time.time())  # the stand-in's rules


# ----------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, {"code": 0, "message": "OK"}, "sent"),
        (200, {"code": 20001, "message": "Partial success"}, "sent"),
        (200, {"code": 40100, "message": "Too many requests"}, "retry"),
        (429, {"code": 40100, "message": "Too many requests"}, "retry"),
        (500, b"upstream error", "retry"),
        (503, b"", "retry"),
        (408, b"", "retry"),
        (200, b"<html>gateway</html>", "retry"),  # unreadable: outcome unknown
        (200, {"code": 40001, "message": "No permission"}, "dead"),
        (200, {"code": 40002, "message": "data.0.event: Missing data"}, "dead"),
        (200, {"code": 40105, "message": "Access token invalid"}, "dead"),
        (200, {"code": 41000, "message": "Something else"}, "dead"),
        (400, {"code": 40002, "message": "Bad request"}, "dead"),
        (403, b"forbidden", "dead"),
    ],
)
def test_answers_are_sent_retried_or_dead(status: int, body: Any, kind: str) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = classify(status, raw)
    assert answer.kind == kind
    assert answer.http_status == status
    if isinstance(body, dict):
        assert (answer.code, answer.message) == (body["code"], body["message"])


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    assert classify(429, b"", "7").retry_after == 7.0
    policy = RetryPolicy(base=0.5, factor=2, max_delay=30, jitter=0.5)
    assert 7.0 <= policy.delay(1, retry_after=7.0) <= 30
    assert policy.delay(1, retry_after=3600) == 30


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base=1.0, factor=2.0, max_delay=60.0, jitter=0.5)
    for failures, top in [(1, 1.0), (2, 2.0), (3, 4.0), (7, 60.0), (30, 60.0)]:
        delays = [policy.delay(failures) for _ in range(200)]
        assert all(top / 2 <= d <= top for d in delays)
        assert len(set(delays)) > 1  # jittered: pixels failing together do not retry together


# ------------------------------------------------------- the stand-in itself


def _valid_body() -> dict[str, Any]:
    event = copy.deepcopy(server_expected("Purchase"))
    event["event_time"] = int(time.time())
    return {"event_source": "web", "event_source_id": CODE, "data": [event]}


def _broken(path: str, value: Any) -> dict[str, Any]:
    body = _valid_body()
    *parents, last = path.split(".")
    node: Any = body
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return body


_DELETE = object()
BROKEN = [
    ("event_source", "app"), ("event_source_id", ""), ("data", []), ("extra", 1),
    ("data.0.event", "Not A Name!"), ("data.0.event", _DELETE),
    ("data.0.event_time", time.time() * 1000), ("data.0.event_time", 1.5e9),
    ("data.0.event_time", True), ("data.0.event_time", 1_000_000),
    ("data.0.event_id", 7), ("data.0.user.email", "ALICE@EXAMPLE.COM"),
    ("data.0.user.email", "A" * 64), ("data.0.user.phone", []), ("data.0.user.ip", "1.2.3"),
    ("data.0.user.ttp", 5), ("data.0.user.ttclids", "x"),
    ("data.0.properties.contents.0.content_id", 1077218),
    ("data.0.properties.contents.0.content_id", ""),
    ("data.0.properties.contents.0.quantity", 1.5), ("data.0.properties.contents.0.quantity", 0),
    ("data.0.properties.contents.0.price", "8.00"), ("data.0.properties.contents.0.price", -1),
    ("data.0.properties.content_type", "products"), ("data.0.properties.currency", "usd"),
    ("data.0.properties.currency", "XXX"), ("data.0.properties.value", "16"),
    ("data.0.properties.value", False), ("data.0.properties.content_ids", ["x"]),
    ("data.0.page.url", "shop.example.com/thanks"), ("data.0.limited_data_use", "no"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "value"), BROKEN, ids=[p for p, _ in BROKEN])
def test_the_standin_refuses_what_tiktok_refuses(path: str, value: Any) -> None:
    from tests.standins.tiktok_api import Invalid, fast_valid, validate_body

    body = _broken(path, value)
    assert not fast_valid(json.dumps(body).encode(), time.time())
    with pytest.raises(Invalid) as error:
        validate_body(body, time.time())
    assert error.value.code == 40002
    field = path.rsplit(".", 1)[0] if value is _DELETE and path != "data.0.event" else path
    assert error.value.message.startswith(field if path != "extra" else "extra")


def test_the_standin_takes_a_valid_request_on_both_paths() -> None:
    from tests.standins.tiktok_api import fast_valid, validate_body

    body = _valid_body()
    assert fast_valid(json.dumps(body).encode(), time.time())
    validate_body(body, time.time())
    body["data"] = body["data"] * 1001
    assert not fast_valid(json.dumps(body).encode(), time.time())


def test_routing_reads_only_the_records_leading_fields() -> None:
    """The forwarder skips events from a partial decode of the stored record;
    that holds as long as Record keeps these fields first (it only grows at the end)."""
    from pixel_server.pipeline import record as records

    fields = records.RecordKey.__struct_fields__
    assert fields == Record.__struct_fields__[: len(fields)]
    head = records.decode_key(records.encode(record(source="webhook", consent="denied")))
    assert (head.pixel_id, head.event, head.event_id, head.source) == (
        "px_1", "Lead", "lead-1", "webhook"
    )  # fmt: skip


def test_the_forwarders_partial_decode_maps_like_the_whole_record() -> None:
    """The forwarder decodes stored records into its own struct (fields TikTok
    does not get stay undecoded): same field order as Record, same result, and
    records written before later fields existed still decode."""
    from pixel_server.pipeline import record as records
    from pixel_server.sinks.tiktok.payload import STORED, Stored, encode_event

    assert Stored.__struct_fields__ == Record.__struct_fields__[: len(Stored.__struct_fields__)]
    full = record(
        email_sha256=["a" * 64], ip="203.0.113.9", ttclid="E.C.P.x", page_url="https://s.example/",
        value=-5.5, currency="USD", contents=[("A", "G", "Name", "Cat", "Brand", 2, 2.75)],
        consent="granted", test_event_code="TEST1", utm_source="tiktok", description="d",
    )  # fmt: skip
    for r in (full, record()):
        stored = STORED.decode(records.encode(r))
        assert encode_event(stored) == encode_event(r)
        assert json.loads(encode_event(r)) == tiktok_event(r)
    assert STORED.decode(records.encode(full)).test_event_code == "TEST1"
    short = msgspec.msgpack.encode(["px_1", "Lead", "Lead", "lead-1", "server", 1.0e9, 1.0e9])
    assert json.loads(encode_event(STORED.decode(short)))["event_id"] == "lead-1"


def test_a_refunds_lines_go_with_the_money_returned_per_unit() -> None:
    """Two units returned for 45.00 of a line, and 2.50 of an amount-only
    refund's money on another line (no units: TikTok wants quantity >= 1)."""
    event = tiktok_event(record(
        event="Refund", received_event="Refund", event_id="refund:1001:7", source="webhook",
        event_time=time.time(),
        value=-47.5, currency="USD", order_id="1001",
        contents=[("SW-RED-M", "SW", "Sweater", "", "", 2, 25.0),
                  ("MUG-1", "MUG", "Mug", "", "", 0, 10.0)],
        content_refunds=[(45.0, 0.0), (0.0, 2.5)],
    ))  # fmt: skip
    assert event["properties"]["value"] == 47.5
    assert event["properties"]["contents"] == [
        {"content_id": "SW-RED-M", "content_name": "Sweater", "price": 22.5, "quantity": 2},
        {"content_id": "MUG-1", "content_name": "Mug", "price": 2.5, "quantity": 1},
    ]
    validate_event(json.loads(json.dumps(event)), "data.0", time.time())  # the stand-in's rules
