"""The catalog model and TikTok's item rules."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from pixel_server.catalog.model import DESCRIPTION_MAX, TITLE_MAX, Draft, make_item, plain_text
from pixel_server.catalog.validate import problems


def draft(**changes: object) -> Draft:
    base = Draft(
        sku_id="SWEAT-RED-M",
        item_group_id="101",
        title="Sweatshirt",
        description_html="<p>Warm <b>cotton</b> sweatshirt.</p>"
        "<ul><li>Soft</li><li>Roomy</li></ul>",
        brand="Acme",
        link="https://shop.example.com/sweatshirt",
        images=["https://cdn.example.com/red.jpg", "https://cdn.example.com/back.jpg"],
        price="49.90",
        currency="usd",
        availability="in stock",
        options=[("Color", "Red"), ("Size", "M")],
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_a_variant_becomes_an_item_with_options_and_plain_text() -> None:
    item = make_item(draft())
    assert item.description == "Warm cotton sweatshirt.\nSoft\nRoomy"
    assert (item.color, item.size, item.options) == ("Red", "M", "Red / M")
    assert item.image_link == "https://cdn.example.com/red.jpg"
    assert item.additional_image_links == ("https://cdn.example.com/back.jpg",)
    assert (item.price, item.currency, item.sale_price) == (Decimal("49.90"), "USD", None)
    assert problems(item) == []


def test_a_compare_at_price_makes_the_price_a_sale_price() -> None:
    item = make_item(draft(price="39.90", compare_at="49.90"))
    assert (item.price, item.sale_price) == (Decimal("49.90"), Decimal("39.90"))
    assert make_item(draft(price="39.90", compare_at="29.00")).sale_price is None


def test_html_is_cut_to_tiktoks_limits_on_a_word_boundary() -> None:
    long = "<p>" + "word " * 3000 + "</p><script>alert(1)</script>"
    text = plain_text(long, DESCRIPTION_MAX)
    assert len(text) <= DESCRIPTION_MAX and text.endswith("word…") and "alert" not in text
    title = make_item(draft(title="Sweatshirt 🔥 " + "x" * 200)).title
    assert len(title) <= TITLE_MAX and "🔥" not in title
    assert plain_text("Fish &amp; chips&nbsp;\u0007now", 100) == "Fish & chips now"


def test_an_empty_description_falls_back_to_the_title() -> None:
    assert make_item(draft(description_html="")).description == "Sweatshirt"


def test_gender_options_use_tiktoks_values() -> None:
    item = make_item(draft(options=[("Colour", "Blue"), ("Gender", "Women")]))
    assert (item.color, item.gender, item.size) == ("Blue", "female", "")


def test_each_rule_names_its_reason() -> None:
    good = make_item(draft())
    cases = {
        "missing_sku_id": replace(good, sku_id=""),
        "missing_title": replace(good, title=""),
        "promotional_title": replace(good, title="Sweatshirt - FREE SHIPPING"),
        "missing_brand": replace(good, brand=""),
        "bad_link": replace(good, link="/sweatshirt"),
        "bad_image_link": replace(good, image_link="http://cdn.example.com/a.jpg"),
        "bad_additional_image_link": replace(good, additional_image_links=("ftp://x/y.jpg",)),
        "bad_price": replace(good, price=Decimal("0")),
        "bad_currency": replace(good, currency="XXY"),
        "bad_sale_price": replace(good, sale_price=Decimal("60")),
        "bad_availability": replace(good, availability="maybe"),
        "bad_condition": replace(good, condition="mint"),
        "bad_sku_id": replace(good, sku_id="x" * 101),
    }
    for reason, item in cases.items():
        assert problems(item) == [reason], reason
    assert problems(replace(good, price=None, link="")) == ["bad_link", "bad_price"]


def test_the_content_hash_changes_with_any_field() -> None:
    item = make_item(draft())
    assert item.content_hash() == make_item(draft()).content_hash()
    assert item.content_hash() != replace(item, price=Decimal("49.91")).content_hash()
