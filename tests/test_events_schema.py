"""The event schema: request bodies and events in, validated Events or EventErrors out."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixel_server.events.names import CUSTOM_EVENT_PATTERN
from pixel_server.events.schema import (
    ERROR_CODES,
    ISO_4217_CODES,
    ApiEnvelope,
    Content,
    Event,
    EventError,
    Limits,
    Page,
    Properties,
    Source,
    User,
    decode_api_body,
    decode_collect_body,
    decode_event,
    event_json_schema,
)

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400.0


def purchase(**overrides: Any) -> dict[str, Any]:
    """TikTok's own Events API example event, at NOW - 60 s."""
    event: dict[str, Any] = {
        "event": "Purchase",
        "event_time": int(NOW) - 60,
        "event_id": "purchase:10045",
        "user": {
            "email": "a" * 64,
            "phone": "b" * 64,
            "external_id": "c" * 64,
            "ttclid": "E.C.P.click",
            "ttp": "ttp-cookie",
            "ip": "13.57.97.131",
            "user_agent": "Mozilla/5.0 (...)",
            "locale": "en-US",
        },
        "properties": {
            "contents": [
                {
                    "content_id": "SKU-1077218-RED-M",
                    "content_name": "Sweatshirt",
                    "content_category": "Apparel",
                    "brand": "Acme",
                    "price": 8.0,
                    "quantity": 2,
                }
            ],
            "content_type": "product",
            "currency": "USD",
            "value": 16.0,
            "order_id": "10045",
            "query": "red sweatshirt",
        },
        "page": {
            "url": "https://shop.example.com/thanks?ttclid=x",
            "referrer": "https://shop.example.com/cart",
        },
        "limited_data_use": False,
    }
    event.update(overrides)
    return event


def with_properties(**changes: Any) -> dict[str, Any]:
    event = purchase()
    event["properties"].update(changes)
    return event


def decode(
    event: dict[str, Any] | bytes,
    *,
    source: Source = "server",
    limits: Limits | None = None,
    prefix: str = "data[0]",
) -> Event:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    return decode_event(
        body, source=source, now=NOW, limits=limits or Limits(), field_prefix=prefix
    )


def rejected(event: dict[str, Any] | bytes, **kwargs: Any) -> EventError:
    with pytest.raises(EventError) as info:
        decode(event, **kwargs)
    assert info.value.code in ERROR_CODES
    return info.value


# ===================================================================== events


def test_tiktoks_example_event_decodes_to_an_event() -> None:
    event = decode(purchase())
    assert event.event == event.received_event == "Purchase"
    assert event.event_id == "purchase:10045"
    assert event.event_time == NOW - 60
    assert event.user.ttclid == "E.C.P.click"
    assert event.properties.contents == [
        Content(
            content_id="SKU-1077218-RED-M",
            content_name="Sweatshirt",
            content_category="Apparel",
            brand="Acme",
            price=8.0,
            quantity=2,
        )
    ]
    assert (event.properties.currency, event.properties.value) == ("USD", 16.0)
    assert event.properties.custom is None
    assert event.page == Page(
        url="https://shop.example.com/thanks?ttclid=x", referrer="https://shop.example.com/cart"
    )
    assert event.limited_data_use is False
    assert event.consent is None


def test_a_minimal_event_has_empty_user_and_properties_and_time_now() -> None:
    event = decode({"event": "PageView"})
    assert event == Event(event="PageView", received_event="PageView", event_time=NOW)
    assert event.user == User()
    assert event.properties == Properties()
    assert event.page is None


def test_null_sections_are_the_same_as_absent_ones() -> None:
    event = decode({"event": "ViewContent", "user": None, "properties": None, "page": None})
    assert (event.user, event.properties, event.page) == (User(), Properties(), None)


def test_decode_event_accepts_raw_from_an_envelope() -> None:
    _, raws = decode_collect_body(json.dumps({"events": [purchase()]}).encode())
    event = decode_event(raws[0], source="browser", now=NOW, limits=Limits(), field_prefix="")
    assert event.event == "Purchase"


def test_unknown_keys_outside_properties_are_ignored() -> None:
    event = purchase(pixel_id="C123", context={"x": 1})
    event["user"]["phone_number"] = "123"
    event["page"]["title"] = "Thanks"
    event["properties"]["contents"][0]["color"] = "red"
    decoded = decode(event)
    assert decoded.properties.custom is None
    assert decoded.page is not None and decoded.page.url.startswith("https://")


def test_consent_is_granted_or_denied() -> None:
    assert decode(purchase(consent="denied")).consent == "denied"
    assert rejected(purchase(consent="maybe")).field == "data[0].consent"


# ---------------------------------------------------------------------- names


def test_legacy_name_is_mapped_and_the_sent_name_kept() -> None:
    event = decode(purchase(event="CompletePayment"))
    assert (event.event, event.received_event) == ("Purchase", "CompletePayment")
    event = decode({"event": "SubmitForm"})
    assert (event.event, event.received_event) == ("Lead", "SubmitForm")


def test_custom_names_follow_the_pattern() -> None:
    assert decode({"event": "Wishlist_Share"}).event == "Wishlist_Share"
    error = rejected({"event": "add to cart"})
    assert (error.code, error.field) == ("invalid_event_name", "data[0].event")
    assert CUSTOM_EVENT_PATTERN in error.message


@pytest.mark.parametrize("body", [{}, {"properties": {}}])
def test_the_event_name_is_required(body: dict[str, Any]) -> None:
    error = rejected(body)
    assert (error.code, error.field) == ("missing_field", "data[0].event")


def test_event_name_must_be_a_string() -> None:
    error = rejected({"event": 5})
    assert (error.code, error.field) == ("invalid_field", "data[0].event")


# ------------------------------------------------------------------ event ids


def test_integer_identifiers_are_kept_as_decimal_strings() -> None:
    event = purchase(event_id=10045)
    event["properties"]["order_id"] = 10045
    event["properties"]["contents"] = [{"content_id": 77, "item_group_id": 7, "quantity": 1}]
    decoded = decode(event)
    assert decoded.event_id == "10045"
    assert decoded.properties.order_id == "10045"
    assert decoded.properties.contents == [Content(content_id="77", item_group_id="7", quantity=1)]


def test_event_id_is_bounded() -> None:
    assert decode(purchase(event_id="e" * 128)).event_id == "e" * 128
    assert rejected(purchase(event_id="e" * 129)).field == "data[0].event_id"


# ----------------------------------------------------------------- properties


@pytest.mark.parametrize("currency", ["USD", "EUR", "JPY", "GBP", "BRL", "ZWG"])
def test_iso_4217_currencies_are_accepted(currency: str) -> None:
    assert decode(with_properties(currency=currency)).properties.currency == currency


@pytest.mark.parametrize("currency", ["usd", "Usd", "XYZ", "ABC", "US", "USDT", "XXX", "HRK", 840])
def test_other_currencies_are_rejected(currency: object) -> None:
    error = rejected(with_properties(currency=currency))
    assert (error.code, error.field) == ("invalid_field", "data[0].properties.currency")


def test_the_currency_list_holds_uppercase_three_letter_codes() -> None:
    assert len(ISO_4217_CODES) > 170
    assert all(len(code) == 3 and code.isascii() and code.isupper() for code in ISO_4217_CODES)


@pytest.mark.parametrize("value", [0, 0.0, 16, 1e12])
def test_value_may_be_any_non_negative_number(value: float) -> None:
    assert decode(with_properties(value=value)).properties.value == value


@pytest.mark.parametrize("value", [-0.01, -1, "16.00", True, None])
def test_value_must_be_a_non_negative_number(value: object) -> None:
    if value is None:
        assert decode(with_properties(value=None)).properties.value is None
        return
    error = rejected(with_properties(value=value))
    assert (error.code, error.field) == ("invalid_field", "data[0].properties.value")


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json(literal: bytes) -> None:
    body = (
        json.dumps(with_properties(value=0)).encode().replace(b'"value": 0', b'"value": ' + literal)
    )
    assert literal in body
    error = rejected(body)
    assert error.code == "invalid_json"


def test_a_number_too_large_for_a_float_is_rejected() -> None:
    body = json.dumps(with_properties(value=0)).encode().replace(b'"value": 0', b'"value": 1e400')
    error = rejected(body)
    assert (error.code, error.field) == ("invalid_field", "data[0].properties.value")


def test_a_bad_price_is_reported_with_its_full_path() -> None:
    event = purchase()
    event["properties"]["contents"].append({"content_id": "B", "price": -1, "quantity": 1})
    error = rejected(event, prefix="data[3]")
    assert (error.code, error.field) == ("invalid_field", "data[3].properties.contents[1].price")


@pytest.mark.parametrize("quantity", [0, -1, 100_001, 1.5, "2"])
def test_quantity_is_a_positive_bounded_integer(quantity: object) -> None:
    error = rejected(with_properties(contents=[{"content_id": "A", "quantity": quantity}]))
    assert (error.code, error.field) == ("invalid_field", "data[0].properties.contents[0].quantity")


def test_quantity_bounds_are_inclusive() -> None:
    for quantity in (1, 100_000):
        contents = decode(with_properties(contents=[{"quantity": quantity}])).properties.contents
        assert contents == [Content(quantity=quantity)]


def test_at_most_200_contents() -> None:
    ok = [{"content_id": str(i), "quantity": 1} for i in range(200)]
    contents = decode(with_properties(contents=ok)).properties.contents
    assert contents is not None and len(contents) == 200
    error = rejected(with_properties(contents=[*ok, {"content_id": "x"}]))
    assert (error.code, error.field) == ("invalid_field", "data[0].properties.contents")


def test_content_type_is_product_or_product_group() -> None:
    assert decode(with_properties(content_type="product_group")).properties.content_type == (
        "product_group"
    )
    assert rejected(with_properties(content_type="sku")).field == "data[0].properties.content_type"


# ------------------------------------------------------------- custom properties


def test_unknown_property_keys_are_kept_as_custom_properties() -> None:
    event = decode(with_properties(coupon="SPRING10", tags=["a", "b"], meta={"n": 1, "ok": True}))
    assert event.properties.custom == {
        "coupon": "SPRING10",
        "tags": ["a", "b"],
        "meta": {"n": 1, "ok": True},
    }
    # the known fields are decoded as usual alongside
    assert event.properties.value == 16.0
    assert event.properties.contents is not None and event.properties.contents[0].quantity == 2


def test_a_key_named_custom_is_just_another_custom_property() -> None:
    assert decode(with_properties(custom={"a": 1})).properties.custom == {"custom": {"a": 1}}


def test_known_fields_are_still_validated_when_custom_keys_are_present() -> None:
    error = rejected(with_properties(coupon="X", value=-1), prefix="events[2]")
    assert (error.code, error.field) == ("invalid_field", "events[2].properties.value")
    error = rejected(with_properties(coupon="X", contents=[{"price": -1}]))
    assert error.field == "data[0].properties.contents[0].price"
    error = rejected(with_properties(coupon="X", currency="XYZ"))
    assert error.field == "data[0].properties.currency"


def test_fifty_custom_keys_are_allowed_and_fifty_one_are_too_many() -> None:
    keys = {f"k{i}": i for i in range(50)}
    assert decode(with_properties(**keys)).properties.custom == keys
    error = rejected(with_properties(**keys, k50=50))
    assert (error.code, error.field) == ("properties_too_large", "data[0].properties")
    assert "51" in error.message


def test_custom_properties_are_capped_by_their_json_size() -> None:
    assert decode(with_properties(note="x" * 4000)).properties.custom == {"note": "x" * 4000}
    error = rejected(with_properties(note="x" * 4096))
    assert (error.code, error.field) == ("properties_too_large", "data[0].properties")


def test_custom_property_caps_come_from_limits() -> None:
    limits = Limits(max_custom_properties=1, max_custom_properties_bytes=20)
    assert decode(with_properties(a=1), limits=limits).properties.custom == {"a": 1}
    assert rejected(with_properties(a=1, b=2), limits=limits).code == "properties_too_large"
    assert rejected(with_properties(a="x" * 20), limits=limits).code == "properties_too_large"


def test_deeply_nested_custom_properties_are_refused_not_crashed_on() -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    body = json.dumps(with_properties(deep=0)).encode().replace(b'"deep": 0', b'"deep": ' + nested)
    assert rejected(body).code in {"invalid_json", "properties_too_large"}


# ------------------------------------------------------------------- page


def test_page_url_must_be_an_absolute_http_url() -> None:
    for url in ["http://shop.example.com", "HTTPS://SHOP.EXAMPLE.COM/a?b#c"]:
        page = decode(purchase(page={"url": url})).page
        assert page is not None and page.url == url
    for url in [
        "ftp://shop.example.com/",
        "https://",
        "https:///path",
        "shop.example.com",
        "",
        "https:// x",
    ]:
        error = rejected(purchase(page={"url": url}))
        assert (error.code, error.field) == ("invalid_field", "data[0].page.url"), url


def test_page_url_is_at_most_2048_characters() -> None:
    url = "https://shop.example.com/?q=" + "x" * (2048 - 28)
    assert len(url) == 2048
    assert decode(purchase(page={"url": url})).page == Page(url=url)
    error = rejected(purchase(page={"url": url + "x"}))
    assert (error.code, error.field) == ("invalid_field", "data[0].page.url")


def test_page_referrer_may_be_empty_or_anything_up_to_2048() -> None:
    assert decode(purchase(page={"url": "https://a.example", "referrer": ""})).page == Page(
        url="https://a.example"
    )
    page = decode(purchase(page={"url": "https://a.example", "referrer": "android-app://x"})).page
    assert page is not None and page.referrer == "android-app://x"
    error = rejected(purchase(page={"url": "https://a.example", "referrer": "r" * 2049}))
    assert error.field == "data[0].page.referrer"


def test_page_url_is_required_in_a_page() -> None:
    error = rejected(purchase(page={"referrer": "https://a.example"}))
    assert (error.code, error.field) == ("missing_field", "data[0].page.url")


# ------------------------------------------------------------------- user


@pytest.mark.parametrize(
    ("field", "longest"),
    [
        ("ttclid", 512),
        ("ttp", 256),
        ("locale", 35),
        ("anonymous_id", 128),
        ("ip", 64),
        ("user_agent", 1024),
        ("email", 320),
        ("phone", 64),
        ("external_id", 256),
    ],
)
def test_user_strings_are_bounded(field: str, longest: int) -> None:
    assert getattr(decode(purchase(user={field: "x" * longest})).user, field) == "x" * longest
    error = rejected(purchase(user={field: "x" * (longest + 1)}))
    assert (error.code, error.field) == ("invalid_field", f"data[0].user.{field}")


def test_pii_may_be_a_string_or_a_list_of_up_to_ten_strings() -> None:
    user = decode(purchase(user={"email": ["a@x.com", "b@x.com"], "phone": "+1 213"})).user
    assert (user.email, user.phone) == (["a@x.com", "b@x.com"], "+1 213")
    error = rejected(purchase(user={"email": [f"{i}@x.com" for i in range(11)]}))
    assert error.field == "data[0].user.email"
    error = rejected(purchase(user={"external_id": ["ok", 5]}))
    assert error.field == "data[0].user.external_id[1]"


# ------------------------------------------------------------------- time


def test_event_time_may_be_int_float_or_iso_8601_with_timezone() -> None:
    assert decode(purchase(event_time=int(NOW) - 10)).event_time == NOW - 10
    assert decode(purchase(event_time=NOW - 10.25)).event_time == NOW - 10.25
    assert decode(purchase(event_time="2025-12-31T23:59:00Z")).event_time == NOW - 60
    assert decode(purchase(event_time="2026-01-01T01:59:00+02:00")).event_time == NOW - 60


def test_absent_event_time_is_the_callers_now() -> None:
    event = purchase()
    del event["event_time"]
    assert decode(event).event_time == NOW


@pytest.mark.parametrize("value", ["2025-12-31T23:59:00", "yesterday", True, [1]])
def test_other_event_times_are_invalid(value: object) -> None:
    error = rejected(purchase(event_time=value))
    assert (error.code, error.field) == ("invalid_field", "data[0].event_time")


def test_milliseconds_are_rejected_with_a_clear_message() -> None:
    error = rejected(purchase(event_time=int(NOW * 1000)))
    assert (error.code, error.field) == ("invalid_field", "data[0].event_time")
    assert "milliseconds" in error.message


@pytest.mark.parametrize(
    ("source", "horizon"), [("browser", DAY), ("server", 7 * DAY), ("webhook", 7 * DAY)]
)
def test_events_older_than_the_horizon_of_their_source_are_rejected(
    source: Source, horizon: float
) -> None:
    assert decode(purchase(event_time=NOW - horizon), source=source).event_time == NOW - horizon
    error = rejected(purchase(event_time=NOW - horizon - 1), source=source)
    assert (error.code, error.field) == ("event_too_old", "data[0].event_time")
    assert source in error.message


def test_a_two_day_old_event_is_too_old_from_a_browser_but_fine_from_a_server() -> None:
    event = purchase(event_time=NOW - 2 * DAY)
    assert rejected(event, source="browser").code == "event_too_old"
    assert decode(event, source="server").event_time == NOW - 2 * DAY


def test_events_more_than_five_minutes_in_the_future_are_rejected() -> None:
    assert decode(purchase(event_time=NOW + 300)).event_time == NOW + 300
    error = rejected(purchase(event_time=NOW + 301))
    assert (error.code, error.field) == ("event_in_future", "data[0].event_time")
    error = rejected(purchase(event_time="2026-01-01T00:10:00Z"))
    assert error.code == "event_in_future"


def test_time_limits_come_from_limits() -> None:
    limits = Limits(browser_horizon_s=60, server_horizon_s=120, future_skew_s=0)
    assert rejected(purchase(event_time=NOW - 61), source="browser", limits=limits).code == (
        "event_too_old"
    )
    assert decode(purchase(event_time=NOW - 61), source="server", limits=limits)
    assert rejected(purchase(event_time=NOW + 1), limits=limits).code == "event_in_future"


# ------------------------------------------------------------- errors, paths


def test_error_paths_use_the_callers_prefix() -> None:
    assert rejected(with_properties(value=-1), prefix="").field == "properties.value"
    assert rejected(with_properties(value=-1), prefix="events[7]").field == (
        "events[7].properties.value"
    )
    assert rejected({"event": "X", "user": {"ip": 1}}, prefix="data[999]").field == (
        "data[999].user.ip"
    )


def test_an_event_that_is_not_an_object_is_invalid_at_its_prefix() -> None:
    for body in (b"[]", b"1", b'"Purchase"', b"null"):
        error = rejected(body, prefix="data[2]")
        assert (error.code, error.field) == ("invalid_field", "data[2]")


@pytest.mark.parametrize("body", [b"", b"{", b'{"event": "X",}', b"\xff\xfe", b'{"event": "\xff"}'])
def test_malformed_json_is_invalid_json(body: bytes) -> None:
    assert rejected(body).code == "invalid_json"


def test_event_error_carries_code_message_and_field() -> None:
    error = rejected(with_properties(value=-1))
    assert error.code == "invalid_field"
    assert error.message
    assert error.field == "data[0].properties.value"
    assert "data[0].properties.value" in str(error)


def test_long_offending_values_are_not_echoed_in_full() -> None:
    error = rejected(with_properties(content_type="x" * 10_000))
    assert len(error.message) <= 300


# ================================================================ envelopes


def test_collect_body_with_one_event_and_pixel_id() -> None:
    body = json.dumps({"pixel_id": "px_1", **purchase()}).encode()
    pixel_id, events = decode_collect_body(body)
    assert pixel_id == "px_1"
    assert len(events) == 1
    assert decode(bytes(events[0])).event == "Purchase"


def test_collect_body_with_a_batch() -> None:
    body = json.dumps({"pixel_id": "px_1", "events": [purchase(), {"event": "PageView"}]})
    pixel_id, events = decode_collect_body(body.encode())
    assert pixel_id == "px_1"
    assert [decode(bytes(raw)).event for raw in events] == ["Purchase", "PageView"]


def test_collect_body_without_pixel_id() -> None:
    assert decode_collect_body(b'{"event": "PageView"}')[0] is None
    assert decode_collect_body(b'{"events": [{"event": "PageView"}]}')[0] is None


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"[]", "invalid_body", ""),
        (b'"x"', "invalid_body", ""),
        (b"{", "invalid_json", ""),
        (b"", "invalid_json", ""),
        (b'{"events": []}', "invalid_body", "events"),
        (b'{"events": {}}', "invalid_field", "events"),
        (b'{"event": "X", "events": [{"event": "X"}]}', "invalid_body", ""),
        (b'{"pixel_id": 5, "event": "X"}', "invalid_field", "pixel_id"),
    ],
)
def test_bad_collect_bodies(body: bytes, code: str, field: str) -> None:
    with pytest.raises(EventError) as info:
        decode_collect_body(body)
    assert (info.value.code, info.value.field) == (code, field)


def test_collect_body_event_count_is_capped() -> None:
    body = json.dumps({"events": [{"event": "PageView"}] * 51}).encode()
    with pytest.raises(EventError) as info:
        decode_collect_body(body)
    assert (info.value.code, info.value.field) == ("too_many_events", "events")
    assert len(decode_collect_body(body, max_events=51)[1]) == 51


def api_body(**overrides: Any) -> bytes:
    body: dict[str, Any] = {
        "event_source": "web",
        "event_source_id": "CABC123",
        "test_event_code": "TEST12345",
        "data": [purchase()],
    }
    body.update(overrides)
    return json.dumps(body).encode()


def test_tiktok_events_api_body() -> None:
    envelope = decode_api_body(api_body(partner_name="Ecwid"))
    assert isinstance(envelope, ApiEnvelope)
    assert (envelope.event_source, envelope.event_source_id) == ("web", "CABC123")
    assert (envelope.test_event_code, envelope.partner_name) == ("TEST12345", "Ecwid")
    assert [decode(bytes(raw)).event for raw in envelope.data] == ["Purchase"]


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"event_source": "app"}, "invalid_field", "event_source"),
        ({"event_source_id": ""}, "invalid_field", "event_source_id"),
        ({"event_source_id": 5}, "invalid_field", "event_source_id"),
        ({"data": []}, "invalid_field", "data"),
        ({"data": {"event": "X"}}, "invalid_field", "data"),
    ],
)
def test_bad_api_bodies(overrides: dict[str, Any], code: str, field: str) -> None:
    with pytest.raises(EventError) as info:
        decode_api_body(api_body(**overrides))
    assert (info.value.code, info.value.field) == (code, field)


@pytest.mark.parametrize("missing", ["event_source", "event_source_id", "data"])
def test_api_body_required_fields(missing: str) -> None:
    body = json.loads(api_body())
    del body[missing]
    with pytest.raises(EventError) as info:
        decode_api_body(json.dumps(body).encode())
    assert (info.value.code, info.value.field) == ("missing_field", missing)


def test_api_body_event_count_is_capped_at_1000() -> None:
    assert len(decode_api_body(api_body(data=[{}] * 1000)).data) == 1000
    with pytest.raises(EventError) as info:
        decode_api_body(api_body(data=[{}] * 1001))
    assert (info.value.code, info.value.field) == ("too_many_events", "data")


@pytest.mark.parametrize("body", [b"[]", b"null", b"{", b"\x00"])
def test_api_body_must_be_a_json_object(body: bytes) -> None:
    with pytest.raises(EventError) as info:
        decode_api_body(body)
    assert info.value.code in {"invalid_body", "invalid_json"}


# ============================================================== JSON Schema

jsonschema_rs = pytest.importorskip("jsonschema_rs")


def test_event_json_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = event_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert jsonschema_rs.meta.is_valid(schema)
    json.dumps(schema)  # serialisable as is


def test_every_field_in_the_schema_is_described() -> None:
    schema = event_json_schema()
    for name, definition in [("Event", schema), *schema["$defs"].items()]:
        assert definition.get("description"), name
        for field, spec in definition["properties"].items():
            assert spec.get("description"), f"{name}.{field}"


def test_the_schema_accepts_valid_events_and_rejects_invalid_ones() -> None:
    validator = jsonschema_rs.validator_for(event_json_schema())
    assert validator.is_valid(purchase())
    assert validator.is_valid(with_properties(coupon="SPRING10"))
    assert not validator.is_valid({"event": "add to cart"})
    assert not validator.is_valid(with_properties(value=-1))
    assert not validator.is_valid(purchase(page={"url": "ftp://x"}))


def test_the_schema_documents_the_limits_it_is_given() -> None:
    schema = event_json_schema(Limits(max_custom_properties=7))
    assert "at most 7 keys" in schema["$defs"]["PropertiesInput"]["description"]


# ====================================================== properties (hypothesis)

_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=10,
)


def _only_event_errors(call: Any) -> None:
    try:
        call()
    except EventError as error:
        assert error.code in ERROR_CODES
        assert isinstance(error.field, str) and isinstance(error.message, str)


def _all_decoders(body: bytes) -> None:
    _only_event_errors(lambda: decode_collect_body(body))
    _only_event_errors(lambda: decode_api_body(body))
    for source in ("browser", "server"):
        _only_event_errors(
            lambda source=source: decode_event(
                body, source=source, now=NOW, limits=Limits(), field_prefix="data[0]"
            )
        )


@_FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_ever_raise_event_error(body: bytes) -> None:
    _all_decoders(body)


@_FUZZ
@given(json_values)
def test_arbitrary_json_only_ever_raises_event_error(value: Any) -> None:
    _all_decoders(msgspec.json.encode(value))


# Event-shaped JSON: the right keys with arbitrary values reach deeper checks.
_event_shaped = st.fixed_dictionaries(
    {"event": st.sampled_from(["Purchase", "CompletePayment", "x y", "Custom_1"]) | json_values},
    optional={
        "event_id": json_values,
        "event_time": st.integers(int(NOW - 10 * DAY), int(NOW + DAY)) | json_values,
        "user": st.dictionaries(
            st.sampled_from(["email", "phone", "external_id", "ip", "ttclid"]), json_values
        )
        | json_values,
        "properties": st.dictionaries(
            st.sampled_from(["contents", "value", "currency", "content_type", "order_id", "x"]),
            json_values,
        )
        | json_values,
        "page": st.fixed_dictionaries({"url": json_values}) | json_values,
        "consent": json_values,
        "limited_data_use": json_values,
    },
)


@_FUZZ
@given(_event_shaped)
def test_event_shaped_json_only_ever_raises_event_error(value: dict[str, Any]) -> None:
    body = msgspec.json.encode(value)
    _all_decoders(body)
    _all_decoders(
        msgspec.json.encode({"event_source": "web", "event_source_id": "C", "data": [value]})
    )
    _all_decoders(msgspec.json.encode({"events": [value]}))


# Valid events, generated from the rules, round-trip.
_short = st.text(min_size=1, max_size=20)
_ids = _short | st.integers(min_value=0, max_value=2**53)
_contents = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "content_id": _ids,
            "item_group_id": _ids,
            "content_name": _short,
            "brand": _short,
            "price": st.floats(min_value=0, max_value=1e9),
            "quantity": st.integers(min_value=1, max_value=100_000),
        },
    ),
    max_size=4,
)
_valid_properties = st.fixed_dictionaries(
    {},
    optional={
        "contents": _contents,
        "content_type": st.sampled_from(["product", "product_group"]),
        "value": st.floats(min_value=0, max_value=1e12),
        "currency": st.sampled_from(sorted(ISO_4217_CODES)),
        "order_id": _ids,
        "query": _short,
        "coupon": _short,  # a custom property
        "extra": st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    },
)
_valid_events = st.fixed_dictionaries(
    {
        "event": st.sampled_from(["Purchase", "AddToCart", "ViewCategory", "CompletePayment"])
        | st.from_regex(CUSTOM_EVENT_PATTERN, fullmatch=True),
        "event_time": st.integers(int(NOW - DAY), int(NOW + 300)),
    },
    optional={
        "event_id": _ids,
        "user": st.fixed_dictionaries(
            {},
            optional={
                "email": _short | st.lists(_short, max_size=10),
                "ttclid": _short,
                "ip": st.ip_addresses().map(str),
            },
        ),
        "properties": _valid_properties,
        "page": st.fixed_dictionaries(
            {"url": st.sampled_from(["https://a.example/", "http://b.example/p?q=1#x"])},
            optional={"referrer": st.text(max_size=50)},
        ),
        "consent": st.sampled_from(["granted", "denied"]),
        "limited_data_use": st.booleans(),
    },
)


def _id(value: str | int) -> str:
    return str(value)


@settings(max_examples=300, deadline=None)
@given(_valid_events)
def test_valid_generated_events_round_trip(sent: dict[str, Any]) -> None:
    event = decode_event(
        msgspec.json.encode(sent), source="browser", now=NOW, limits=Limits(), field_prefix=""
    )
    assert event.received_event == sent["event"]
    assert event.event_time == sent["event_time"]
    assert event.event_id == (_id(sent["event_id"]) if "event_id" in sent else None)
    assert msgspec.to_builtins(event.user) == sent.get("user", {})
    assert event.consent == sent.get("consent")
    assert event.limited_data_use == sent.get("limited_data_use", False)

    sent_properties = copy.deepcopy(sent.get("properties", {}))
    custom = {k: sent_properties.pop(k) for k in ("coupon", "extra") if k in sent_properties}
    assert event.properties.custom == (custom or None)
    for content in sent_properties.get("contents", []):
        for key in ("content_id", "item_group_id"):
            if key in content:
                content[key] = _id(content[key])
    if "order_id" in sent_properties:
        sent_properties["order_id"] = _id(sent_properties["order_id"])
    decoded = msgspec.to_builtins(event.properties)
    decoded.pop("custom", None)
    assert decoded == sent_properties

    # What we decoded encodes and decodes to the same Event.
    assert msgspec.json.decode(msgspec.json.encode(event), type=Event) == event


_SCHEMA_VALIDATOR = jsonschema_rs.validator_for(event_json_schema())


@settings(max_examples=200, deadline=None)
@given(_valid_events)
def test_the_json_schema_accepts_every_valid_generated_event(sent: dict[str, Any]) -> None:
    assert _SCHEMA_VALIDATOR.is_valid(sent)


# ------------------------------------------------------------ refund lines

REFUND_LINES = [
    {"content_id": "SW-RED-M", "price": 25, "quantity": 1, "refunded": 25},
    {"content_id": "MUG-1", "price": 10, "quantity": 0, "refunded_share": 2},
]


def refund(**changes: Any) -> dict[str, Any]:
    event = purchase(event="Refund", event_id="refund:1001:7")
    event["properties"].update({"value": -27, "contents": copy.deepcopy(REFUND_LINES), **changes})
    return event


def test_a_webhook_refund_has_refunded_amounts_and_lines_without_units() -> None:
    contents = decode(refund(), source="webhook").properties.contents
    assert contents is not None
    assert [(c.quantity, c.refunded, c.refunded_share) for c in contents] == [
        (1, 25, None), (0, None, 2),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("event", "source", "field"),
    [
        (refund(value=27), "server", "data[0].properties.contents[0].refunded"),
        (refund(value=27), "browser", "data[0].properties.contents[0].refunded"),
        (with_properties(contents=[{"content_id": "A", "quantity": 1, "refunded_share": 1}]),
         "webhook", "data[0].properties.contents[0].refunded_share"),
        (with_properties(contents=[{"content_id": "A", "quantity": 0}]), "webhook",
         "data[0].properties.contents[0].quantity"),
        (refund(contents=[{"content_id": "A", "quantity": -1}]), "webhook",
         "data[0].properties.contents[0].quantity"),
    ],
)  # fmt: skip
def test_only_a_webhook_refund_has_refunded_amounts_or_zero_units(
    event: dict[str, Any], source: Source, field: str
) -> None:
    error = rejected(event, source=source)
    assert (error.code, error.field) == ("invalid_field", field)


def test_refunded_amounts_are_not_negative() -> None:
    event = refund()
    event["properties"]["contents"][0]["refunded"] = -25
    error = rejected(event, source="webhook")
    assert error.field == "data[0].properties.contents[0].refunded"
