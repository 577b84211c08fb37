"""PII normalising and hashing, checked against TikTok's published vectors."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixel_server.events.normalise import (
    hash_email,
    hash_external_id,
    hash_phone,
    hash_user,
    is_sha256_hex,
    normalise_email,
    normalise_external_id,
    normalise_phone,
    sha256_hex,
)
from pixel_server.events.schema import User

# TikTok's published examples (reference/tiktok-events-api.md).
ALICE_EMAIL = " ALICE_abc@gmail.com "
ALICE_EMAIL_SHA = "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f"
PHONE = "(+1)2133734253"
PHONE_E164 = "+12133734253"
PHONE_SHA = "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd"
EXTERNAL_ID = "user_123"
EXTERNAL_ID_SHA = "80fba0ae1c48e3978e43e4efc365e14e12ea0c830ba8ba5b9a2dafc7e3f2ab8b"


# ------------------------------------------------------------- TikTok vectors


def test_email_vector() -> None:
    assert normalise_email(ALICE_EMAIL) == "alice_abc@gmail.com"
    assert hash_email(ALICE_EMAIL) == ALICE_EMAIL_SHA


def test_phone_vector() -> None:
    assert normalise_phone(PHONE) == PHONE_E164
    assert hash_phone(PHONE) == PHONE_SHA


def test_external_id_vector() -> None:
    assert hash_external_id(EXTERNAL_ID) == EXTERNAL_ID_SHA


def test_sha256_hex_is_plain_sha256_of_utf8() -> None:
    assert sha256_hex("ü") == hashlib.sha256("ü".encode()).hexdigest()
    assert sha256_hex(PHONE_E164) == PHONE_SHA


# ------------------------------------------------------------------- email


@pytest.mark.parametrize("raw", ["", "   ", "\t\n"])
def test_an_empty_email_is_none(raw: str) -> None:
    assert normalise_email(raw) is None
    assert hash_email(raw) is None


# ------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("2133734253", "US", "+12133734253"),
        ("+1 (213) 373-4253", "US", "+12133734253"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),  # an explicit country code wins
        ("030 123456", "DE", "+4930123456"),
    ],
)
def test_phones_become_e164_using_the_default_region(raw: str, region: str, e164: str) -> None:
    assert normalise_phone(raw, region) == e164
    assert hash_phone(raw, region) == sha256_hex(e164)


@pytest.mark.parametrize("raw", ["", "abc", "12", "+999 1234", "001 213 373 4253"])
def test_an_unparseable_or_impossible_phone_is_none(raw: str) -> None:
    assert normalise_phone(raw) is None
    assert hash_phone(raw) is None


def test_an_unknown_default_region_does_not_raise() -> None:
    assert normalise_phone("2133734253", "ZZ") is None
    assert normalise_phone("+12133734253", "ZZ") == "+12133734253"


# -------------------------------------------------------------- external id


def test_external_id_is_trimmed_but_keeps_its_case() -> None:
    assert normalise_external_id("  User_123 ") == "User_123"
    assert hash_external_id(" user_123\n") == EXTERNAL_ID_SHA
    assert hash_external_id("USER_123") != EXTERNAL_ID_SHA
    assert hash_external_id("  ") is None


# ------------------------------------------------------------ already hashed


@pytest.mark.parametrize(
    "hash_fn", [hash_email, hash_phone, hash_external_id], ids=["email", "phone", "external_id"]
)
def test_a_sha256_hex_value_is_kept_lowercased_not_hashed_again(hash_fn) -> None:  # type: ignore[no-untyped-def]
    assert hash_fn(ALICE_EMAIL_SHA) == ALICE_EMAIL_SHA
    assert hash_fn(ALICE_EMAIL_SHA.upper()) == ALICE_EMAIL_SHA
    assert hash_fn(f" {ALICE_EMAIL_SHA} ") == ALICE_EMAIL_SHA


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (ALICE_EMAIL_SHA, True),
        (ALICE_EMAIL_SHA.upper(), True),
        (ALICE_EMAIL_SHA[:-1], False),
        (ALICE_EMAIL_SHA + "0", False),
        ("g" * 64, False),
        (ALICE_EMAIL_SHA + "\n", False),
    ],
)
def test_is_sha256_hex(value: str, expected: bool) -> None:
    assert is_sha256_hex(value) is expected


# ------------------------------------------------------------------- lists


def test_lists_hash_each_value_and_drop_empty_and_duplicate_ones() -> None:
    assert hash_email([ALICE_EMAIL, "", "alice_abc@gmail.com", "  "]) == [ALICE_EMAIL_SHA]
    assert hash_phone([PHONE, "nope", "+44 20 7946 0958"]) == [
        PHONE_SHA,
        sha256_hex("+442079460958"),
    ]
    assert hash_external_id([]) == []


# ---------------------------------------------------------------- hash_user


def test_hash_user_replaces_pii_with_lists_of_digests() -> None:
    user = User(
        email=ALICE_EMAIL,
        phone=[PHONE, "garbage"],
        external_id=EXTERNAL_ID,
        ttclid="E.C.P.abc",
        ip="13.57.97.131",
    )
    hashed = hash_user(user, "US")
    assert hashed.email == [ALICE_EMAIL_SHA]
    assert hashed.phone == [PHONE_SHA]
    assert hashed.external_id == [EXTERNAL_ID_SHA]
    # Not PII to hash: passed on as TikTok expects.
    assert (hashed.ttclid, hashed.ip) == ("E.C.P.abc", "13.57.97.131")


def test_hash_user_gives_none_when_nothing_usable_is_left() -> None:
    hashed = hash_user(User(email=" ", phone=["x", ""], external_id=[]), "US")
    assert (hashed.email, hashed.phone, hashed.external_id) == (None, None, None)


def test_hash_user_without_pii_is_unchanged() -> None:
    user = User(anonymous_id="a-1")
    assert hash_user(user, "US") == user


def test_hash_user_uses_the_default_region_for_phones() -> None:
    assert hash_user(User(phone="020 7946 0958"), "GB").phone == [sha256_hex("+442079460958")]


# ------------------------------------------------------------------ properties

_HEX = st.text(alphabet="0123456789abcdefABCDEF", min_size=64, max_size=64)


@settings(max_examples=300)
@given(st.text(max_size=100))
def test_hashes_are_always_64_lowercase_hex_and_idempotent(raw: str) -> None:
    for digest in (hash_email(raw), hash_phone(raw), hash_external_id(raw)):
        if digest is not None:
            assert is_sha256_hex(digest) and digest == digest.lower()
            assert hash_email(digest) == digest  # hashing a digest again changes nothing


@settings(max_examples=300)
@given(st.text(max_size=100))
def test_email_normalising_is_idempotent(raw: str) -> None:
    once = normalise_email(raw)
    assert once is None or normalise_email(once) == once


@settings(max_examples=300)
@given(st.text(max_size=40), st.sampled_from(["US", "GB", "DE", "IN", "BR", "ZZ", ""]))
def test_phone_normalising_never_raises_and_gives_e164(raw: str, region: str) -> None:
    e164 = normalise_phone(raw, region)
    if e164 is not None:
        assert e164.startswith("+") and e164[1:].isdigit()
        assert normalise_phone(e164, region) == e164


@settings(max_examples=200)
@given(_HEX)
def test_any_digest_is_kept(digest: str) -> None:
    assert hash_user(User(email=digest, phone=digest, external_id=[digest]), "US") == User(
        email=[digest.lower()], phone=[digest.lower()], external_id=[digest.lower()]
    )
