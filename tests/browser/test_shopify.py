"""Shopify: the custom pixel runs in a sandbox and feeds on analytics.subscribe."""

from __future__ import annotations

from pixel_server.runtime import Runtime
from pixel_server.snippets import SnippetSettings
from tests.browser.flow import TTCLID, Journey, assert_one_shopper, props
from tests.browser.harness import Collector, Store, Tab
from tests.browser.webhook_copy import merged_purchase

VARIANT = {
    "content_id": "SKU-1-RED-M",
    "item_group_id": "7424001",
    "content_name": "Sweatshirt",
    "content_category": "Tops",
    "brand": "Acme",
    "price": 8,
}


def test_a_shopper_from_a_tiktok_ad_through_to_purchase(
    tab: Tab, store: Store, collector: Collector, _real_server: tuple[Runtime, str]
) -> None:
    store.configure(SnippetSettings(collector.pixel_id, collector.endpoint, "shopify"))
    page, journey = tab.page, Journey(collector)

    def visit(view: str, **query: str) -> None:
        url = store.url("shopify.html", collector.pixel_id, view=view, **query)
        tab.goto(url, ready="shopifyFake.isReady()")

    # Shopify publishes page_viewed + product_viewed at once: they wait in the
    # custom pixel's queue until our script has loaded in the sandbox.
    visit("product", ttclid=TTCLID, utm_source="tiktok")
    landing, viewed = journey.next("PageView", "ViewContent")
    visit("collection")
    _, collection = journey.next("PageView", "ViewCategory")
    page.evaluate(
        "shopifyFake.publish('product_added_to_cart', {cartLine: {merchandise: shopifyFake.variant,"
        " quantity: 2, cost: {totalAmount: {amount: 16.0, currencyCode: 'USD'}}}})"
    )
    (added,) = journey.next("AddToCart")
    visit("search")
    _, search = journey.next("PageView", "Search")
    visit("checkout")
    _, checkout = journey.next("PageView", "InitiateCheckout")
    page.evaluate("shopifyFake.publish('payment_info_submitted', shopifyFake.checkout(false))")
    (payment,) = journey.next("AddPaymentInfo")
    visit("thank-you")
    _, purchase = journey.next("PageView", "Purchase")
    events = journey.end()

    assert props(viewed) == {
        "contents": [{**VARIANT, "quantity": 1}],
        "content_type": "product",
        "value": 8,
        "currency": "USD",
    }
    assert props(collection) == {
        "contents": [{**VARIANT, "quantity": 1}],
        "content_type": "product",
    }
    assert props(added) == {
        "contents": [{**VARIANT, "quantity": 2}],
        "content_type": "product",
        "value": 16,
        "currency": "USD",
    }
    assert props(search) == {"query": "red sweatshirt"}
    cart = {"contents": [{**VARIANT, "quantity": 2}], "content_type": "product", "currency": "USD"}
    assert props(checkout) == props(payment) == {**cart, "value": 21.5}
    assert props(purchase) == {**cart, "value": 21.5, "order_id": "5396439498987"}
    assert purchase["event_id"] == "purchase:5396439498987"  # the GID's numeric tail
    # Pages are the store's, not the sandbox's; identity from the checkout.
    assert all(e["page"]["url"].startswith(store.origin + "/pages/shopify.html") for e in events)
    assert "utm_source=tiktok" in landing["page"]["url"]
    assert checkout["user"]["email"] == "bob@example.com"
    assert checkout["user"]["phone"] == "+15551234567"
    assert_one_shopper(events)
    assert tab.errors == []
    # Kept first-party through Shopify's browser.cookie: on the store's own origin.
    cookies = {c["name"]: c["value"] for c in page.context.cookies(store.origin)}
    assert cookies["_px_aid"] == events[0]["user"]["anonymous_id"]
    assert cookies["_px_ttclid"] == TTCLID

    # The orders/create webhook of the same order: one purchase, two copies,
    # the browser's ttclid and anonymous id on the back end's order.
    merged = merged_purchase(_real_server, collector.pixel_id, "shopify")
    assert merged["copies"] == 2
    assert merged["ttclid"] == TTCLID
    assert merged["anonymous_id"] == events[0]["user"]["anonymous_id"]


def test_account_newsletter_and_contact_forms_fire_their_event_once(
    tab: Tab, store: Store, collector: Collector
) -> None:
    store.configure(SnippetSettings(collector.pixel_id, collector.endpoint, "shopify"))
    tab.goto(store.url("shopify.html", collector.pixel_id, view="product"),
             ready="shopifyFake.isReady()")  # fmt: skip
    journey = Journey(collector)
    journey.next("PageView", "ViewContent")

    def submit(form_id: str, action: str, form_type: str) -> None:
        # form_submitted as Shopify publishes it for a Dawn theme form.
        elements = [
            {"id": None, "name": "form_type", "tagName": "INPUT", "type": "hidden",
             "value": form_type},
            {"id": "Email", "name": "customer[email]", "tagName": "INPUT", "type": "email",
             "value": ""},
        ]  # fmt: skip
        element = {"id": form_id, "action": action, "elements": elements}
        tab.page.evaluate("(e) => shopifyFake.publish('form_submitted', {element: e})", element)

    submit("product-form", "/cart/add", "product")  # the add-to-cart form: nothing
    for form_id, action, form_type, event in [
        ("create_customer", "/account", "create_customer", "CompleteRegistration"),
        ("ContactFooter", "/contact#ContactFooter", "customer", "Subscribe"),
        ("ContactForm", "/contact#ContactForm", "contact", "Contact"),
    ]:
        submit(form_id, action, form_type)
        submit(form_id, action, form_type)  # sent again: not a second event
        journey.next(event)
    journey.end()
    assert tab.errors == []
