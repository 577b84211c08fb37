"""The seed's events that no platform fires by itself (snippets/forms.js):
registration, newsletter, contact, other forms, wishlists and the merchant's
data-ttq-event override, each exactly once.

forms.js comes with plain-HTML and BigCommerce pixels (WooCommerce's and
Ecwid's adapters leave it no room in the 3 KB budget): the WordPress pages
here (WooCommerce, Contact Form 7, Mailchimp for WP and YITH markup) are what
a WordPress site with a plain-HTML pixel serves."""

from __future__ import annotations

from pixel_server.snippets import SnippetSettings
from tests.browser.flow import Journey, props
from tests.browser.harness import Collector, Store, Tab


def open_page(tab: Tab, store: Store, collector: Collector, page: str, platform: str) -> Journey:
    store.configure(SnippetSettings(collector.pixel_id, collector.endpoint, platform))
    tab.goto(store.url(page, collector.pixel_id))
    journey = Journey(collector)
    journey.next("PageView")
    return journey


def test_wordpress_registration_is_complete_registration_once(
    tab: Tab, store: Store, collector: Collector
) -> None:
    journey = open_page(tab, store, collector, "woocommerce-account.html", "html")

    tab.page.click("#register")  # the form posts: the event leaves with the page
    tab.page.wait_for_url("**registered=1**")
    tab.page.wait_for_function("window._pxs")
    (registered, _) = journey.next("CompleteRegistration", "PageView")
    journey.end()

    assert props(registered) == {}  # the form's fields are never read
    assert tab.errors == []


def test_newsletter_contact_and_other_forms_each_fire_their_event_once(
    tab: Tab, store: Store, collector: Collector
) -> None:
    journey = open_page(tab, store, collector, "woocommerce-account.html", "html")
    page = tab.page

    # Searching and logging in are no leads.
    page.click("#search")
    page.click("#log-in")
    for button, event in [("#newsletter", "Subscribe"), ("#contact", "Contact"),
                          ("#quote", "Lead")]:  # fmt: skip
        page.click(button)
        page.click(button)  # sent again: not a second event
        journey.next(event)
    events = journey.end()

    assert all(e["properties"] == {} for e in events[1:])
    assert tab.errors == []


def test_an_email_only_form_is_a_newsletter(tab: Tab, store: Store, collector: Collector) -> None:
    journey = open_page(tab, store, collector, "woocommerce-account.html", "html")

    tab.page.click("#email-only")
    journey.next("Subscribe")
    journey.end()


def test_data_ttq_event_is_the_merchants_override(
    tab: Tab, store: Store, collector: Collector
) -> None:
    journey = open_page(tab, store, collector, "woocommerce-account.html", "html")

    tab.page.click("#booked")
    tab.page.click("#booked")
    journey.next("Schedule")
    tab.page.click("#find-store span")  # inside the tagged element
    journey.next("FindLocation")
    journey.end()


def test_yith_wishlist_is_add_to_wishlist_once_per_product(
    tab: Tab, store: Store, collector: Collector
) -> None:
    journey = open_page(tab, store, collector, "woocommerce-product.html", "html")

    tab.page.click(".add_to_wishlist")
    tab.page.click(".add_to_wishlist")
    (wished,) = journey.next("AddToWishlist")
    journey.end()

    assert props(wished) == {"content_type": "product", "contents": [{"content_id": "77"}]}


def test_bigcommerce_account_wishlist_contact_and_newsletter_forms(
    tab: Tab, store: Store, collector: Collector
) -> None:
    journey = open_page(tab, store, collector, "bigcommerce-forms.html", "bigcommerce")
    page = tab.page

    for button in ("#create", "#wishlist", "#contact", "#subscribe"):
        page.click(button)
        page.click(button)
    _, wished, _, _ = journey.next("CompleteRegistration", "AddToWishlist", "Contact", "Subscribe")
    journey.end()

    assert props(wished) == {"content_type": "product", "contents": [{"content_id": "77"}]}
    assert tab.errors == []


def test_ecwid_a_new_customer_signed_in_is_complete_registration_once(
    tab: Tab, store: Store, collector: Collector
) -> None:
    store.configure(SnippetSettings(collector.pixel_id, collector.endpoint, "ecwid"))
    tab.goto(store.url("ecwid.html", collector.pixel_id))
    tab.page.wait_for_function("window.Ecwid && ecwidFake.listeners('OnSetProfile') > 0")
    journey = Journey(collector)

    # A customer of last year signs in: no registration. Then one who has
    # just signed up (Ecwid signs them in), heard twice.
    old = "{id: 7, email: 'old@example.com', registered: '' + (Math.floor(Date.now() / 1e3) - 3e7)}"
    new = "{id: 8, email: 'new@example.com', registered: '' + (Math.floor(Date.now() / 1e3) - 30)}"
    tab.page.evaluate(f"ecwidFake.signIn({old}); ecwidFake.signIn(null)")
    tab.page.evaluate(f"ecwidFake.signIn({new}); ecwidFake.signIn({new})")
    tab.page.evaluate("ecwidFake.openPage({type: 'ACCOUNT_SETTINGS'})")
    registered, _ = journey.next("CompleteRegistration", "PageView")
    journey.end()

    # One id per customer: the server keeps one, should a later page say it again.
    assert registered["event_id"] == "registration:8"
    assert registered["user"]["email"] == "new@example.com"
