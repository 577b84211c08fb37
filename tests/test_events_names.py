"""Event names: standard, store, legacy and custom names, and their canonical form."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel_server.events.names import (
    CUSTOM_EVENT_PATTERN,
    KNOWN_EVENTS,
    LEGACY_EVENTS,
    LEGACY_KEPT_EVENTS,
    PAGE_VIEW,
    REFUND,
    STANDARD_EVENTS,
    STORE_EVENTS,
    VIEW_CATEGORY,
    canonical_event_name,
    is_custom,
    is_tiktok_standard,
)


def test_standard_events_are_tiktoks_2025_list() -> None:
    assert {
        "AddPaymentInfo",
        "AddToCart",
        "AddToWishlist",
        "ApplicationApproval",
        "CompleteRegistration",
        "Contact",
        "CustomizeProduct",
        "Download",
        "FindLocation",
        "InitiateCheckout",
        "Lead",
        "Purchase",
        "Schedule",
        "Search",
        "StartTrial",
        "SubmitApplication",
        "Subscribe",
        "ViewContent",
    } == STANDARD_EVENTS


def test_store_events_are_the_twelve_of_the_merchant_faq() -> None:
    assert STORE_EVENTS == (
        "ViewContent",
        "AddToCart",
        "InitiateCheckout",
        "Purchase",
        "Search",
        "AddPaymentInfo",
        "CompleteRegistration",
        "Contact",
        "Lead",
        "AddToWishlist",
        "Subscribe",
        "ViewCategory",
    )


def test_every_store_event_but_view_category_is_tiktok_standard() -> None:
    assert [name for name in STORE_EVENTS if not is_tiktok_standard(name)] == [VIEW_CATEGORY]


@pytest.mark.parametrize("name", sorted(STANDARD_EVENTS | set(STORE_EVENTS)))
def test_standard_and_store_names_are_canonical(name: str) -> None:
    assert canonical_event_name(name) == name


@pytest.mark.parametrize("name", [VIEW_CATEGORY, PAGE_VIEW, REFUND])
def test_our_own_events_are_accepted_but_not_tiktok_standard(name: str) -> None:
    assert canonical_event_name(name) == name
    assert not is_tiktok_standard(name)
    assert not is_custom(name)


@pytest.mark.parametrize(
    ("legacy", "current"), [("CompletePayment", "Purchase"), ("SubmitForm", "Lead")]
)
def test_legacy_names_map_to_current_ones(legacy: str, current: str) -> None:
    assert LEGACY_EVENTS[legacy] == current
    assert canonical_event_name(legacy) == current


@pytest.mark.parametrize("name", ["PlaceAnOrder", "ClickButton"])
def test_older_names_are_accepted_unchanged(name: str) -> None:
    assert name in LEGACY_KEPT_EVENTS
    assert canonical_event_name(name) == name
    assert not is_tiktok_standard(name)


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [
        ("purchase", "Purchase"),
        ("ADDTOCART", "AddToCart"),
        ("Pageview", "PageView"),  # the name TikTok's own pixel uses
        ("completepayment", "Purchase"),
        ("viewcategory", "ViewCategory"),
    ],
)
def test_known_names_match_case_insensitively(sent: str, canonical: str) -> None:
    assert canonical_event_name(sent) == canonical


@pytest.mark.parametrize("name", ["Wishlist_Share", "x", "A" * 50, "newsletter_signup2", "Z_9"])
def test_custom_names_matching_the_pattern_are_kept_as_sent(name: str) -> None:
    assert canonical_event_name(name) == name
    assert is_custom(name)
    assert not is_tiktok_standard(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "A" * 51,
        "1stVisit",
        "_private",
        "add to cart",
        "add-to-cart",
        "Käse",
        "Purchase\n",
        "a.b",
    ],
)
def test_names_outside_the_pattern_are_rejected_with_a_clear_message(name: str) -> None:
    with pytest.raises(ValueError, match="invalid event name") as info:
        canonical_event_name(name)
    assert CUSTOM_EVENT_PATTERN in str(info.value)


def test_the_error_message_does_not_echo_a_huge_name() -> None:
    with pytest.raises(ValueError) as info:
        canonical_event_name("x" * 10_000 + " ")
    assert len(str(info.value)) < 300


def test_every_known_name_also_matches_the_custom_pattern() -> None:
    # So the JSON Schema can state one pattern for all event names.
    assert all(re.fullmatch(CUSTOM_EVENT_PATTERN, name) for name in KNOWN_EVENTS)


@settings(max_examples=500)
@given(st.text(max_size=80))
def test_any_string_is_either_rejected_or_canonical_and_valid(name: str) -> None:
    try:
        canonical = canonical_event_name(name)
    except ValueError:
        assert re.fullmatch(CUSTOM_EVENT_PATTERN, name) is None
        return
    assert re.fullmatch(CUSTOM_EVENT_PATTERN, canonical)
    assert canonical_event_name(canonical) == canonical  # idempotent
    if not is_custom(canonical):  # a known name, in any case
        assert name.lower() in {known.lower() for known in KNOWN_EVENTS}


@settings(max_examples=300)
@given(st.from_regex(CUSTOM_EVENT_PATTERN, fullmatch=True))
def test_every_name_matching_the_pattern_is_accepted(name: str) -> None:
    canonical = canonical_event_name(name)
    if is_custom(canonical):
        assert canonical == name
