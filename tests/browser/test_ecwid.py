"""Ecwid: the adapter turns Ecwid's storefront JS events into standard events."""

from __future__ import annotations

from pixel_server.snippets import SnippetSettings
from tests.browser.flow import TTCLID, Journey, assert_one_shopper, props
from tests.browser.harness import Collector, Store, Tab

SWEATSHIRT = "{id: 101, sku: 'SKU-101-RED-M', price: 8, name: 'Sweatshirt'}"
OPTIONS = "{Color: 'Red', Size: 'M'}"


def line(quantity: int) -> dict[str, object]:
    return {
        "content_id": "SKU-101-RED-M",
        "item_group_id": "101",
        "content_name": "Sweatshirt",
        "price": 8,
        "quantity": quantity,
    }


def cart_props(quantity: int, **extra: object) -> dict[str, object]:
    return {
        "contents": [line(quantity)],
        "content_type": "product",
        "value": 8 * quantity,
        "currency": "USD",
        **extra,
    }


def test_a_shopper_from_a_tiktok_ad_through_to_purchase(
    tab: Tab, store: Store, collector: Collector
) -> None:
    store.configure(
        SnippetSettings(collector.pixel_id, collector.endpoint, "ecwid", currency="USD")
    )
    page, journey = tab.page, Journey(collector)
    ecwid_ready = "window.Ecwid && ecwidFake.listeners('OnOrderPlaced') > 0"

    # Page load 1: lands from an ad; Ecwid's widget boots after our script.
    tab.goto(store.url("ecwid.html", collector.pixel_id, ttclid=TTCLID, utm_source="tiktok"))
    page.wait_for_function(ecwid_ready)
    page.evaluate("ecwidFake.openPage({type: 'PRODUCT', productId: 101, name: 'Sweatshirt'})")
    landing, viewed = journey.next("PageView", "ViewContent")
    page.evaluate("ecwidFake.openPage({type: 'CATEGORY', categoryId: 5, name: 'Apparel'})")
    _, category = journey.next("PageView", "ViewCategory")
    assert props(category) == {
        "content_type": "product_group",
        "contents": [{"content_id": "5", "content_name": "Apparel"}],
    }
    page.evaluate("ecwidFake.openPage({type: 'SEARCH', keywords: 'red sweatshirt'})")
    _, search = journey.next("PageView", "Search")
    page.evaluate(f"ecwidFake.add({SWEATSHIRT}, 2, {OPTIONS})")
    (added,) = journey.next("AddToCart")
    page.evaluate(f"ecwidFake.add({SWEATSHIRT}, 1, {OPTIONS})")
    (added_again,) = journey.next("AddToCart")

    # Page load 2: the cart comes back (Ecwid reports it again: not an add).
    tab.goto(store.url("ecwid.html", collector.pixel_id))
    page.wait_for_function(ecwid_ready)
    page.evaluate("ecwidFake.openPage({type: 'CHECKOUT_ADDRESS'})")
    _, checkout = journey.next("PageView", "InitiateCheckout")
    page.evaluate("ecwidFake.openPage({type: 'CHECKOUT_DELIVERY'})")
    journey.next("PageView")
    page.evaluate("ecwidFake.openPage({type: 'CHECKOUT_PAYMENT_DETAILS'})")
    _, payment = journey.next("PageView", "AddPaymentInfo")
    page.evaluate("ecwidFake.openPage({type: 'CHECKOUT_DELIVERY'})")  # back a step
    page.evaluate("ecwidFake.openPage({type: 'CHECKOUT_PAYMENT_DETAILS'})")
    journey.next("PageView", "PageView")  # still the same checkout: no repeats
    page.evaluate("ecwidFake.placeOrder('10045')")
    (purchase,) = journey.next("Purchase")
    page.evaluate("ecwidFake.openPage({type: 'ORDER_CONFIRMATION', orderId: 'XJ12H'})")
    journey.next("PageView")  # and no second Purchase
    events = journey.end()

    assert props(viewed) == {
        "contents": [
            {
                "content_id": "101",
                "item_group_id": "101",
                "content_name": "Sweatshirt",
                "quantity": 1,
            }
        ],
        "content_type": "product",
        "currency": "USD",
    }
    assert props(search) == {"query": "red sweatshirt"}
    assert props(added) == cart_props(2)
    assert props(added_again) == cart_props(1)  # the difference from the previous cart
    assert props(checkout) == props(payment) == cart_props(3)
    assert props(purchase) == cart_props(3, order_id="10045")
    assert purchase["event_id"] == "purchase:10045"
    assert "utm_source=tiktok" in landing["page"]["url"]
    assert_one_shopper(events)
    assert tab.errors == []


def test_a_checkout_left_and_started_again_counts_again(
    tab: Tab, store: Store, collector: Collector
) -> None:
    store.configure(SnippetSettings(collector.pixel_id, collector.endpoint, "ecwid"))
    journey = Journey(collector)
    tab.goto(store.url("ecwid.html", collector.pixel_id))
    tab.page.wait_for_function("window.Ecwid && ecwidFake.listeners('OnOrderPlaced') > 0")
    tab.page.evaluate(f"ecwidFake.add({SWEATSHIRT}, 1, {OPTIONS})")
    journey.next("AddToCart")

    for step in ("CHECKOUT_ADDRESS", "CHECKOUT_PAYMENT_DETAILS", "CART", "CHECKOUT_ADDRESS"):
        tab.page.evaluate(f"ecwidFake.openPage({{type: '{step}'}})")
    events = journey.next(
        "PageView", "InitiateCheckout", "PageView", "AddPaymentInfo", "PageView",
        "PageView", "InitiateCheckout",
    )  # fmt: skip

    assert "currency" not in props(events[1])  # no getStoreCurrency, no currency setting
    journey.end()
