"""WooCommerce: page facts from window.pixelServerWoo, cart events from jQuery."""

from __future__ import annotations

from pixel_server.snippets import SnippetSettings
from tests.browser.flow import TTCLID, Journey, assert_one_shopper, props
from tests.browser.harness import Collector, Store, Tab

SWEATSHIRT = {
    "content_id": "SKU-77-RED-M",
    "item_group_id": "77",
    "content_name": "Sweatshirt",
    "content_category": "Apparel",
    "brand": "Acme",
    "price": 8,
}
HOODIE = {
    "content_id": "HOODIE-1",
    "item_group_id": "78",
    "content_name": "Hoodie",
    "price": 30,
    "quantity": 1,
}
CART = [{**SWEATSHIRT, "quantity": 2}, HOODIE]


def test_a_shopper_from_a_tiktok_ad_through_to_purchase(
    tab: Tab, store: Store, collector: Collector
) -> None:
    store.configure(SnippetSettings(collector.pixel_id, collector.endpoint, "woocommerce"))
    page, journey = tab.page, Journey(collector)

    def visit(view: str, **query: str) -> None:
        tab.goto(store.url("woocommerce.html", collector.pixel_id, view=view, **query))

    visit("product", ttclid=TTCLID, utm_source="tiktok")
    landing, viewed = journey.next("PageView", "ViewContent")
    # The single-product form posts and the page comes back with the line added.
    page.click("#add-single")
    page.wait_for_url("**added=1**")
    page.wait_for_function("window._pxs && window.ttq")
    _, _, added = journey.next("PageView", "ViewContent", "AddToCart")
    visit("category")
    _, category = journey.next("PageView", "ViewCategory")
    page.click("#add-ajax")  # AJAX add-to-cart: jQuery's added_to_cart
    (added_ajax,) = journey.next("AddToCart")
    visit("search")
    _, search = journey.next("PageView", "Search")
    visit("checkout")
    _, checkout = journey.next("PageView", "InitiateCheckout")
    page.check("input[value=bacs]")
    (payment,) = journey.next("AddPaymentInfo")
    page.check("input[value=stripe]")  # a second choice is not a second event
    visit("order-received")
    _, purchase = journey.next("PageView", "Purchase")
    events = journey.end()

    assert props(viewed) == {
        "contents": [{**SWEATSHIRT, "quantity": 1}],
        "content_type": "product",
        "value": 8,
        "currency": "USD",
    }
    assert props(added) == {
        "contents": [{**SWEATSHIRT, "quantity": 2}],
        "content_type": "product",
        "value": 16,
        "currency": "USD",
    }
    assert props(category) == {
        "contents": [
            {"content_id": "SKU-77-RED-M", "item_group_id": "77", "content_name": "Sweatshirt",
             "content_category": "Apparel", "price": 8, "quantity": 1},
            {**HOODIE, "content_category": "Apparel"},
        ],
        "content_type": "product",
        "currency": "USD",
    }  # fmt: skip
    assert props(added_ajax) == {
        "contents": [HOODIE],
        "content_type": "product",
        "value": 30,
        "currency": "USD",
    }
    assert props(search) == {"query": "red sweatshirt"}
    checkout_props = {"contents": CART, "content_type": "product", "value": 46, "currency": "USD"}
    assert props(checkout) == props(payment) == checkout_props
    assert props(purchase) == {**checkout_props, "value": 50.5, "order_id": "10045"}
    assert purchase["event_id"] == "purchase:10045"
    assert purchase["user"]["email"] == "carol@example.com"  # sent raw; the server hashes it
    assert "utm_source=tiktok" in landing["page"]["url"]
    assert_one_shopper(events)
    assert tab.errors == []
