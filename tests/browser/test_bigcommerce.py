"""BigCommerce: the adapter subscribes to the Open Data Layer (window.bodlEvents)."""

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
HOODIE = {  # no SKU and no variant: the product id stands in
    "content_id": "78",
    "item_group_id": "78",
    "content_name": "Hoodie",
    "content_category": "Apparel",
    "brand": "Acme",
    "price": 30,
    "quantity": 1,
}


def lines(quantity: int, value: float | None = None) -> dict[str, object]:
    result: dict[str, object] = {
        "contents": [{**SWEATSHIRT, "quantity": quantity}],
        "content_type": "product",
        "value": 8 * quantity if value is None else value,
        "currency": "USD",
    }
    return result


def test_a_shopper_from_a_tiktok_ad_through_to_purchase(
    tab: Tab, store: Store, collector: Collector
) -> None:
    store.configure(SnippetSettings(collector.pixel_id, collector.endpoint, "bigcommerce"))
    page, journey = tab.page, Journey(collector)

    def visit(view: str, **query: str) -> None:
        tab.goto(store.url("bigcommerce.html", collector.pixel_id, view=view, **query))

    visit("product", ttclid=TTCLID, utm_source="tiktok")
    landing, viewed = journey.next("PageView", "ViewContent")
    page.click("#add")
    (added,) = journey.next("AddToCart")
    visit("category")
    _, category = journey.next("PageView", "ViewCategory")
    visit("search")
    _, search = journey.next("PageView", "Search")
    visit("checkout")
    _, checkout = journey.next("PageView", "InitiateCheckout")
    page.click("#pay")
    (payment,) = journey.next("AddPaymentInfo")
    visit("order")
    _, purchase = journey.next("PageView", "Purchase")
    events = journey.end()

    assert props(viewed) == lines(1)
    assert props(added) == lines(2)
    assert props(category) == {
        "contents": [{**SWEATSHIRT, "quantity": 1}, HOODIE],
        "content_type": "product",
        "currency": "USD",
    }
    assert props(search) == {"query": "red sweatshirt"}
    assert props(checkout) == props(payment) == lines(2, value=16)
    assert props(purchase) == {**lines(2, value=21.5), "order_id": "250"}
    assert purchase["event_id"] == "purchase:250"
    # BODL's own event_id is the cart id; ours are unique per event.
    assert checkout["event_id"] != payment["event_id"]
    assert "utm_source=tiktok" in landing["page"]["url"]
    assert_one_shopper(events)
    assert tab.errors == []


def test_order_confirmation_without_bodl_still_sends_the_purchase(
    tab: Tab, store: Store, collector: Collector
) -> None:
    store.configure(SnippetSettings(collector.pixel_id, collector.endpoint, "bigcommerce"))
    journey = Journey(collector)
    tab.goto(store.url("bigcommerce-order-confirmation.html", collector.pixel_id))
    _, purchase = journey.next("PageView", "Purchase")
    journey.end()
    assert purchase["event_id"] == "purchase:250"  # the webhook copy's id
    assert props(purchase)["order_id"] == "250"
    assert tab.errors == []
