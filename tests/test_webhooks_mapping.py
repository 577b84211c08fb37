"""Order → events rules, platform by platform, as pure functions; and the one
schema exception they need: a Refund from a webhook may carry a negative value."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pixel_server.events.schema import EventError, decode_event, event_json_schema
from pixel_server.ingest.webhooks import bigcommerce, ecwid, shopify, woocommerce
from pixel_server.ingest.webhooks.common import (
    Buyer,
    Line,
    OrderState,
    RefundEntry,
    RefundLine,
    Unauthorized,
    order_events,
    unix_time,
)
from tests.webhook_helpers import (
    SECRET,
    b64_hmac,
    bigcommerce_order,
    ecwid_event,
    ecwid_headers,
    ecwid_order,
    encode,
    fixture,
    shopify_order,
    woo_order,
)

NOW = time.time()


def ids_and_values(events: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
    return [(e["event"], e["event_id"], e["properties"].get("value")) for e in events]


# ------------------------------------------------------------------ Shopify


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (5396439498987, "5396439498987"),
        ("5396439498987", "5396439498987"),
        ("gid://shopify/Order/5396439498987", "5396439498987"),
        ("gid://shopify/OrderIdentity/5396439498987", "5396439498987"),
        ("gid://shopify/Order/5396439498987?x=1", "5396439498987"),
    ],
)
def test_shopify_order_ids_are_numeric(raw: Any, expected: str) -> None:
    assert shopify.numeric_id(raw) == expected


@pytest.mark.parametrize(
    ("status", "counts"),
    [("pending", True), ("authorized", True), ("partially_paid", True), ("paid", True),
     ("partially_refunded", True), ("refunded", True), ("voided", False), ("expired", False)],
)  # fmt: skip
def test_shopify_financial_status_decides_whether_an_order_counts(
    status: str, counts: bool
) -> None:
    state = shopify.order_state(shopify_order(financial_status=status))
    assert state.placed is counts


def test_shopify_purchase_event_shape() -> None:
    (purchase,) = order_events(shopify.order_state(shopify_order())).events
    assert purchase["event"] == "Purchase" and purchase["event_id"] == "purchase:5396439498987"
    props = purchase["properties"]
    assert (props["value"], props["currency"], props["order_id"]) == (64.9, "USD", "5396439498987")
    assert props["content_type"] == "product"
    assert props["contents"][0] == {
        "content_id": "LS-M-SAND",
        "item_group_id": "8092309471467",
        "content_name": "Linen Shirt",
        "brand": "Acme Apparel",
        "price": 24.5,
        "quantity": 2,
    }
    user = purchase["user"]
    assert user["email"] == "Jon.Doe@Example.com"  # raw here: the pipeline hashes it
    assert user["phone"] == "+16135550142"  # read in the billing country (CA)
    assert (user["external_id"], user["ip"]) == ("7036120891627", "203.0.113.7")
    assert user["user_agent"].startswith("Mozilla/5.0 (iPhone")


def test_shopify_refund_without_money_returned_makes_no_event() -> None:
    refund = fixture("shopify_refunds_create.json")
    refund["transactions"] = []  # a restock-only refund
    assert shopify.refund_events(refund)[0].events == []


def test_shopify_failed_refund_transactions_do_not_count() -> None:
    refund = fixture("shopify_refunds_create.json")
    refund["transactions"][0]["status"] = "failure"
    assert shopify.refund_events(refund)[0].events == []


# -------------------------------------------------------------- WooCommerce


@pytest.mark.parametrize(
    ("status", "paid", "counts"),
    [("processing", True, True), ("completed", True, True), ("on-hold", False, True),
     ("refunded", True, True), ("cancelled", True, True), ("cancelled", False, False),
     ("pending", False, False), ("failed", False, False), ("checkout-draft", False, False),
     ("trash", True, False)],
)  # fmt: skip
def test_woocommerce_status_decides_whether_an_order_counts(
    status: str, paid: bool, counts: bool
) -> None:
    order = woo_order(status=status)
    if not paid:
        order.update(date_paid=None, date_paid_gmt=None)
    assert woocommerce.order_state(order).placed is counts


def test_woocommerce_refunds_are_negative_and_learnt_once() -> None:
    order = woo_order(refunds=[{"id": 7, "reason": "", "total": "-5.00"},
                               {"id": 8, "reason": "", "total": "-2.50"}])  # fmt: skip
    mapped = order_events(woocommerce.order_state(order))
    assert ids_and_values(mapped.events) == [
        ("Purchase", "purchase:10045", 50.5),
        ("Refund", "refund:10045:7", -5.0),
        ("Refund", "refund:10045:8", -2.5),
    ]
    assert mapped.once == {"refund:10045:7", "refund:10045:8"}


def test_woocommerce_guest_and_simple_products_have_no_zero_ids() -> None:
    state = woocommerce.order_state(woo_order())
    assert state.buyer.external_id == ""  # customer_id 0: a guest
    assert (state.lines[1].content_id, state.lines[1].item_group_id) == ("15", "15")


def test_woocommerce_ping_is_only_the_exact_form_body() -> None:
    assert woocommerce.is_ping({}, b"webhook_id=12")
    assert not woocommerce.is_ping({}, b"webhook_id=12&x=1")
    assert not woocommerce.is_ping({"X-WC-Webhook-Signature": "x"}, b"webhook_id=12")


# ------------------------------------------------------------------- Ecwid


@pytest.mark.parametrize(
    ("status", "counts"),
    [("PAID", True), ("AWAITING_PAYMENT", True), ("PARTIALLY_REFUNDED", True),
     ("REFUNDED", True), ("CANCELLED", True), ("INCOMPLETE", False)],
)  # fmt: skip
def test_ecwid_payment_status_decides_whether_an_order_counts(status: str, counts: bool) -> None:
    assert ecwid.order_state(ecwid_order(paymentStatus=status), "USD").placed is counts


def test_ecwid_order_id_is_the_vendor_order_number() -> None:
    order = ecwid_order(vendorOrderNumber="SHOP-XJ12H")
    (purchase,) = order_events(ecwid.order_state(order, "EUR")).events
    assert purchase["event_id"] == "purchase:SHOP-XJ12H"
    assert purchase["properties"]["currency"] == "EUR"


def test_ecwid_cancelled_order_nets_out_once() -> None:
    mapped = order_events(ecwid.order_state(ecwid_order(paymentStatus="CANCELLED"), "USD"))
    assert ids_and_values(mapped.events) == [
        ("Purchase", "purchase:XJ12H", 35.5),
        ("Refund", "refund:XJ12H", -35.5),
    ]
    assert mapped.once == {"refund:XJ12H"}  # timed by updateTimestamp: stored once


def test_ecwid_signature_covers_event_created_and_event_id() -> None:
    event = ecwid_event()
    ecwid.verify(ecwid_headers(event), encode(event), SECRET)
    message = f"{event['eventCreated']}.{event['eventId']}".encode()
    assert ecwid_headers(event)["x-ecwid-webhook-signature"] == b64_hmac(SECRET, message)
    with pytest.raises(Unauthorized) as info:
        ecwid.verify(ecwid_headers(event, secret="other"), encode(event), SECRET)
    assert info.value.reason == "bad_signature"


# -------------------------------------------------------------- BigCommerce


@pytest.mark.parametrize("status_id", range(15))
def test_bigcommerce_status_decides_whether_an_order_counts(status_id: int) -> None:
    counts = status_id not in (0, 1, 6)  # Incomplete, Pending, Declined
    assert bigcommerce.order_state(bigcommerce_order(status_id=status_id)).placed is counts


def test_bigcommerce_refunded_order_nets_what_refunds_do_not_cover() -> None:
    state = bigcommerce.order_state(bigcommerce_order(status_id=4, refunded_amount="21.5000"))
    state.refunds = [RefundEntry("12", 10.75, NOW - 60)]
    assert ids_and_values(order_events(state).events) == [
        ("Purchase", "purchase:250", 21.5),
        ("Refund", "refund:250:12", -10.75),
        ("Refund", "refund:250", -10.75),
    ]


# ----------------------------------------------------------------- shared


def test_an_order_not_placed_makes_no_events_at_all() -> None:
    state = OrderState("1", False, NOW, 10.0, "USD", refunds=[RefundEntry("r", 10.0, NOW)],
                       cancelled_at=NOW)  # fmt: skip
    assert order_events(state).events == []


def test_too_long_user_values_are_left_out_rather_than_losing_the_event() -> None:
    state = OrderState("1", True, NOW, 10.0, "USD", buyer=Buyer(email="x" * 400, ip="1.2.3.4"))
    (purchase,) = order_events(state).events
    assert purchase["user"] == {"ip": "1.2.3.4"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1714557600, 1714557600.0),
        ("2024-05-01T06:00:00-04:00", 1714557600.0),
        ("2024-05-01T10:00:00Z", 1714557600.0),
        ("2024-05-01T10:00:00", 1714557600.0),  # WooCommerce *_gmt: UTC without a zone
        ("Wed, 01 May 2024 10:00:00 +0000", 1714557600.0),  # BigCommerce v2
        ("2024-05-01 10:00:00 +0000", 1714557600.0),  # Ecwid
        ("yesterday", None),
        (None, None),
        (True, None),
    ],
)
def test_platform_dates(raw: Any, expected: float | None) -> None:
    assert unix_time(raw) == expected


# ------------------------------------------------------------------ schema


def refund(value: float, name: str = "Refund") -> bytes:
    return encode({"event": name, "event_id": "refund:1", "event_time": NOW,
                   "properties": {"value": value, "currency": "USD", "order_id": "1"}})  # fmt: skip


def test_a_webhook_refund_may_carry_a_negative_value() -> None:
    event = decode_event(refund(-12.5), source="webhook", now=NOW)
    assert (event.event, event.properties.value) == ("Refund", -12.5)


@pytest.mark.parametrize("source", ["browser", "server"])
def test_other_sources_may_not_send_negative_refunds(source: Any) -> None:
    with pytest.raises(EventError) as info:
        decode_event(refund(-12.5), source=source, now=NOW, field_prefix="events[0]")
    assert (info.value.code, info.value.field) == ("invalid_field", "events[0].properties.value")


@pytest.mark.parametrize("name", ["Purchase", "CompletePayment", "RefundRequested"])
def test_other_webhook_events_may_not_carry_negative_values(name: str) -> None:
    with pytest.raises(EventError) as info:
        decode_event(refund(-1, name), source="webhook", now=NOW)
    assert (info.value.code, info.value.field) == ("invalid_field", "properties.value")


def test_the_published_schema_still_says_values_are_not_negative() -> None:
    value = event_json_schema()["$defs"]["PropertiesInput"]["properties"]["value"]
    assert any(v.get("minimum") == 0 for v in value.get("anyOf", [value]))


# ------------------------------------------------------------ refund lines


def _order(*refunds: RefundEntry, cancelled: bool = False) -> OrderState:
    """2 × A at 25.00, 1 × B at 10.00, shipping 5.00: 65.00."""
    lines = [Line("A", "a", price=25.0, quantity=2), Line("B", "b", price=10.0, quantity=1)]
    return OrderState("o1", True, 1.0, 65.0, "USD", lines, refunds=list(refunds),
                      cancelled_at=9.0 if cancelled else None)  # fmt: skip


def _lines(event: dict[str, Any]) -> list[tuple[str, int, float, float]]:
    return [(c["content_id"], c["quantity"], c["refunded"], c["refunded_share"])
            for c in event["properties"]["contents"]]  # fmt: skip


def test_money_without_lines_goes_to_the_largest_fractions_first() -> None:
    lines = [Line(x, price=10.0) for x in "XYZ"]
    order = OrderState("o2", True, 1.0, 30.0, "USD", lines, refunds=[RefundEntry("r", 10.0, 2.0)])
    refund = order_events(order).events[1]
    assert _lines(refund) == [("X", 0, 0.0, 3.34), ("Y", 0, 0.0, 3.33), ("Z", 0, 0.0, 3.33)]


def test_money_without_lines_never_exceeds_what_is_left_of_them() -> None:
    first = RefundEntry("r1", 50.0, 2.0, lines=[RefundLine("A", 50.0, 2)])
    rest = RefundEntry("r2", 15.0, 3.0)  # 10.00 is left of the lines; 5.00 is shipping
    events = order_events(_order(first, rest)).events
    assert _lines(events[1]) == [("A", 2, 50.0, 0.0)]
    assert _lines(events[2]) == [("B", 0, 0.0, 10.0)]


def test_lines_worth_more_than_the_money_are_scaled_to_it() -> None:
    short = RefundEntry("r1", 20.0, 2.0, lines=[RefundLine("A", 25.0, 1), RefundLine("B", 10.0, 1)])
    assert _lines(order_events(_order(short)).events[1]) == [
        ("A", 1, 14.29, 0.0), ("B", 1, 5.71, 0.0),
    ]  # fmt: skip


def test_shipping_and_tax_stay_at_order_level() -> None:
    entry = RefundEntry("r1", 16.0, 2.0, lines=[RefundLine("B", 10.0, 1)], order_level=6.0)
    refund = order_events(_order(entry)).events[1]
    assert refund["properties"]["value"] == -16.0
    assert _lines(refund) == [("B", 1, 10.0, 0.0)]


def test_a_cancellation_returns_what_is_left_of_every_line_and_covers_later_refunds() -> None:
    first = RefundEntry("r1", 25.0, 2.0, lines=[RefundLine("A", 25.0, 1)])
    mapped = order_events(_order(first, cancelled=True))
    cancel = mapped.events[-1]
    assert cancel["event_id"] == "refund:o1" and cancel["properties"]["value"] == -40.0
    assert _lines(cancel) == [("A", 1, 25.0, 0.0), ("B", 1, 10.0, 0.0)]
    assert mapped.covered == {"refund:o1:r1": "refund:o1"} and "refund:o1" in mapped.once
