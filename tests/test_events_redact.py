"""Personal data in free text (events.redact): what is found, what replaces it."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pixel_server.events.normalise import hash_email, hash_phone
from pixel_server.events.redact import has_personal_data, redact_json, redact_text, redact_url

JANE = "jane.doe@example.com"
JANE_SHA = hash_email(JANE)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://shop.example.com/thanks?email=jane.doe%40example.com&ttclid=E.C.P.Cs123456789",
            "https://shop.example.com/thanks?ttclid=E.C.P.Cs123456789",
        ),
        ("https://shop.example.com/p?e=Jane.Doe@Example.com", "https://shop.example.com/p"),
        (
            "https://shop.example.com/account/jane.doe@example.com/orders",
            "https://shop.example.com/account/redacted/orders",
        ),
        (
            "https://shop.example.com/p?phone=4155552671&variant=40123456789012",
            "https://shop.example.com/p?variant=40123456789012",
        ),
        (
            "https://shop.example.com/p?q=call+%2B1+415-555-2671&sort=price",
            "https://shop.example.com/p?sort=price",
        ),
        # ids are not phone numbers: order, product and variant numbers stay
        (
            "https://shop.example.com/p/7012345678?variant=40123456789012&order=4155552671",
            "https://shop.example.com/p/7012345678?variant=40123456789012&order=4155552671",
        ),
        ("https://shop.example.com/", "https://shop.example.com/"),
        ("", ""),
    ],
)
def test_urls_lose_the_parameters_that_hold_personal_data(url: str, expected: str) -> None:
    assert redact_url(url, "US") == expected


def test_text_keeps_its_words_and_gets_digests_for_addresses_and_numbers() -> None:
    text = "Gift for JANE.DOE@example.com, call +1 (415) 555-2671. Order 1234567890, 19.99 USD"
    assert redact_text(text, "US") == (
        f"Gift for {JANE_SHA}, call {hash_phone('+14155552671')}. Order 1234567890, 19.99 USD"
    )


def test_phone_numbers_are_read_in_the_pixels_region() -> None:
    assert redact_text("ruf an: 030 12345678", "DE") == f"ruf an: {hash_phone('+493012345678')}"


def test_custom_properties_are_redacted_string_by_string() -> None:
    doc = '{"note":"from jane.doe@example.com","n":4155552671,"tags":["+44 20 7946 0958"]}'
    out = redact_json(doc, "US")
    assert JANE not in out and "7946" not in out
    assert '"n":4155552671' in out  # numbers are data, not contact details
    assert JANE_SHA in out and hash_phone("+442079460958") in out


def test_json_without_personal_data_is_returned_as_is() -> None:
    doc = '{"b": 1, "a": "plain"}'
    assert redact_json(doc, "US") is doc


_local = st.text(string.ascii_letters + string.digits + "._+-", min_size=1, max_size=20).filter(
    lambda s: s[0] not in "._" and s[-1] not in "._"
)
_label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12)
emails = st.builds(lambda a, b, c: f"{a}@{b}.{c}", _local, _label, st.sampled_from(["com", "de"]))
filler = st.text(string.ascii_letters + " ,;:!?()[]", max_size=30)


@given(before=filler, email=emails, after=filler)
def test_no_email_survives_in_text(before: str, email: str, after: str) -> None:
    out = redact_text(f"{before} {email} {after}", "US")
    assert "@" not in out
    assert not has_personal_data(out, "US")


@given(email=emails, key=st.sampled_from(["email", "e", "to", "u"]))
def test_no_email_survives_in_a_url_query(email: str, key: str) -> None:
    out = redact_url(f"https://shop.example.com/p?{key}={email}&a=1", "US")
    assert "@" not in out and "%40" not in out
    assert out.endswith("?a=1")


@given(st.text(string.ascii_letters + " .,-/", max_size=80))
def test_text_without_addresses_or_numbers_is_unchanged(text: str) -> None:
    assert redact_text(text, "US") == text
    url = f"https://shop.example.com/{text}"
    assert redact_url(url, "US") == url


@given(before=filler, email=emails)
def test_redacting_twice_changes_nothing_more(before: str, email: str) -> None:
    once = redact_text(f"{before} {email}", "US")
    assert redact_text(once, "US") == once
