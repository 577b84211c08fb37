"""WooCommerce: the adapter reads stock markup (body classes, product JSON-LD,
loop cards, the order overview), jQuery's cart events and the Store API cart."""

from __future__ import annotations

from pixel_server.runtime import Runtime
from pixel_server.snippets import SnippetSettings
from tests.browser.flow import TTCLID, Journey, assert_one_shopper, props
from tests.browser.harness import Collector, Store, Tab
from tests.browser.webhook_copy import merged_purchase

SWEATSHIRT = {  # variation 501 of product 77
    "content_id": "SKU-77-RED-M",
    "item_group_id": "77",
    "content_name": "Sweatshirt",
    "brand": "Acme",
    "price": 8,
}
HOODIE = {"content_id": "HOODIE-1", "item_group_id": "78", "content_name": "Hoodie",
          "price": 1030, "quantity": 1}  # fmt: skip
# The Store API cart (tests/browser/pages/woocommerce-store-api-cart.json):
# its ids are the variation's and the product's.
CART = {
    "contents": [
        {"content_id": "SKU-77-RED-M", "item_group_id": "501", "content_name": "Sweatshirt",
         "price": 8, "quantity": 2},
        HOODIE,
    ],
    "content_type": "product",
    "value": 1046,
    "currency": "EUR",
}  # fmt: skip
ORDER_KEY = "wc_order_Qm3kT8bZp2xYa"


def settings(collector: Collector) -> SnippetSettings:
    # The order-received page shows no currency code: the pixel's setting.
    return SnippetSettings(collector.pixel_id, collector.endpoint, "woocommerce", currency="EUR")


def test_a_shopper_from_a_tiktok_ad_through_to_purchase(
    tab: Tab, store: Store, collector: Collector, _real_server: tuple[Runtime, str]
) -> None:
    store.configure(settings(collector))
    page, journey = tab.page, Journey(collector)

    def visit(name: str, **query: str) -> None:
        tab.goto(store.url(f"woocommerce-{name}.html", collector.pixel_id, **query))

    visit("product", ttclid=TTCLID, utm_source="tiktok")
    landing, viewed = journey.next("PageView", "ViewContent")
    # Choose a size, add two: the form posts and the product page comes back.
    page.select_option("#pa_size", "m")
    page.fill("input[name=quantity]", "2")
    page.click("#add-single")
    page.wait_for_load_state("load")
    page.wait_for_function("window._pxs && window.ttq")
    added, _, _ = journey.next("AddToCart", "PageView", "ViewContent")
    visit("category")
    _, category = journey.next("PageView", "ViewCategory")
    page.click("#add-ajax")  # AJAX add-to-cart: jQuery's added_to_cart
    (added_ajax,) = journey.next("AddToCart")
    visit("category", s="sweatshirt", post_type="product")
    _, search = journey.next("PageView", "Search")
    # checkout.js preselects the first method itself: not yet payment info.
    visit("checkout")
    _, checkout = journey.next("PageView", "InitiateCheckout")
    page.check("#payment_method_stripe")
    (payment,) = journey.next("AddPaymentInfo")
    page.check("#payment_method_bacs")  # a second choice is not a second event
    page.click("#place_order")
    visit("order-received", page_id="9", **{"order-received": "10045", "key": ORDER_KEY})
    _, purchase = journey.next("PageView", "Purchase")
    events = journey.end()

    assert props(viewed) == {  # a variable product: its lowest price, the parent SKU
        "contents": [{**SWEATSHIRT, "content_id": "SKU-77", "quantity": 1}],
        "content_type": "product",
        "value": 8,
        "currency": "EUR",
    }
    assert props(added) == {
        "contents": [{**SWEATSHIRT, "quantity": 2}],
        "content_type": "product",
        "value": 16,
        "currency": "EUR",
    }
    assert props(category) == {
        "contents": [
            {"content_id": "SKU-77", "item_group_id": "77", "content_name": "Sweatshirt",
             "price": 8, "quantity": 1},
            HOODIE,  # the sale price
        ],
        "content_type": "product",
        "currency": "EUR",
    }  # fmt: skip
    assert props(added_ajax) == {
        "contents": [HOODIE],
        "content_type": "product",
        "value": 1030,
        "currency": "EUR",
    }
    assert props(search) == {"query": "sweatshirt"}
    assert props(checkout) == props(payment) == CART
    assert props(purchase) == {
        "contents": [],
        "content_type": "product",
        "value": 50.5,
        "currency": "EUR",
        "order_id": "10045",
    }
    assert purchase["event_id"] == "purchase:10045"  # the webhook copy brings the email
    assert "utm_source=tiktok" in landing["page"]["url"]
    assert_one_shopper(events)
    assert tab.errors == []

    # The order.created webhook of the same order: one purchase, two copies,
    # the browser's ttclid and anonymous id on the back end's order.
    merged = merged_purchase(_real_server, collector.pixel_id, "woocommerce")
    assert merged["copies"] == 2
    assert merged["ttclid"] == TTCLID
    assert merged["anonymous_id"] == events[0]["user"]["anonymous_id"]
    assert merged["order_id"] == "10045"


def test_the_blocks_checkout_sends_initiate_checkout_and_payment_info_once(
    tab: Tab, store: Store, collector: Collector
) -> None:
    store.configure(settings(collector))
    journey = Journey(collector)

    tab.goto(store.url("woocommerce-checkout-blocks.html", collector.pixel_id))
    _, checkout = journey.next("PageView", "InitiateCheckout")
    tab.page.check("#radio-control-wc-payment-method-options-stripe")
    (payment,) = journey.next("AddPaymentInfo")
    tab.page.click(".wc-block-components-checkout-place-order-button")
    journey.end()

    assert props(checkout) == props(payment) == CART
    assert tab.errors == []


def test_placing_the_order_is_payment_info_when_the_preselected_method_is_kept(
    tab: Tab, store: Store, collector: Collector
) -> None:
    store.configure(settings(collector))
    journey = Journey(collector)

    tab.goto(store.url("woocommerce-checkout.html", collector.pixel_id))
    journey.next("PageView", "InitiateCheckout")
    tab.page.click("#place_order")
    (payment,) = journey.next("AddPaymentInfo")
    journey.end()

    assert props(payment) == CART


def test_a_failed_order_or_no_order_id_is_no_purchase(
    tab: Tab, store: Store, collector: Collector
) -> None:
    store.configure(settings(collector))
    journey = Journey(collector)

    failed = {"order-received": "10046", "key": "wc_order_Zz9"}
    tab.goto(store.url("woocommerce-order-failed.html", collector.pixel_id, **failed))
    journey.next("PageView")
    # The order-received page without an order id in its URL.
    tab.goto(store.url("woocommerce-order-received.html", collector.pixel_id))
    journey.next("PageView")
    journey.end()
