"""Normalise and SHA-256 hash personal data (email, phone, external id).

docs/architecture.md §4: these are normalised and hashed before they are stored or sent; raw
values never reach disk. The rules are TikTok's, so our hashes match the ones
TikTok computes from its own pixel:

* email: trim surrounding whitespace, lowercase.
* phone: E.164 (``+``, country code, digits), parsed by ``phonenumbers``
  (libphonenumber's rules) with a default region for numbers written without a
  country code; a value that is not a possible phone number is dropped.
* external_id: trim surrounding whitespace only. TikTok's published example
  hashes the value as is, and store customer ids may be case-sensitive, so
  lowercasing could merge different customers; the snippet and the back ends
  must send the same id, which trimming does not endanger.

A value that already is a SHA-256 hex digest (64 hex characters) is kept, only
lowercased, never hashed again. Empty values are dropped.

:func:`hash_user` returns a :class:`User` whose ``email``, ``phone`` and
``external_id`` are each ``None`` or a non-empty **list** of distinct lowercase
hex digests (one representation, ready for an ``Array(String)`` column and for
TikTok, which accepts a string or an array).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Final, overload

import msgspec
import phonenumbers

from pixel_server.events.schema import User

__all__ = [
    "hash_email",
    "hash_external_id",
    "hash_phone",
    "hash_user",
    "is_sha256_hex",
    "normalise_email",
    "normalise_external_id",
    "normalise_phone",
    "sha256_hex",
]

_SHA256_HEX: Final = re.compile(r"[0-9a-fA-F]{64}")
_E164: Final = phonenumbers.PhoneNumberFormat.E164


def sha256_hex(value: str) -> str:
    """SHA-256 of the UTF-8 bytes of ``value``, as 64 lowercase hex characters."""
    return hashlib.sha256(value.encode()).hexdigest()


def is_sha256_hex(value: str) -> bool:
    """True if ``value`` looks like a SHA-256 digest: exactly 64 hex characters."""
    return _SHA256_HEX.fullmatch(value) is not None


# ----------------------------------------------------------------- normalise


def normalise_email(raw: str) -> str | None:
    """Trim and lowercase; None when nothing is left."""
    return raw.strip().lower() or None


def normalise_phone(raw: str, default_region: str = "US") -> str | None:
    """E.164 form of ``raw`` (``+12133734253``), or None if it is not a possible number.

    ``default_region`` (ISO 3166 alpha-2, e.g. the store's country) applies to
    numbers written without ``+`` and a country code.
    """
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, _E164)


def normalise_external_id(raw: str) -> str | None:
    """Trim only (see the module docstring for why); None when nothing is left."""
    return raw.strip() or None


# ---------------------------------------------------------------------- hash


def _hash_one(raw: str, normalise: Callable[[str], str | None]) -> str | None:
    """A digest kept as is (lowercased), else normalise-then-hash; None if empty."""
    stripped = raw.strip()
    if is_sha256_hex(stripped):
        return stripped.lower()
    normalised = normalise(raw)
    return sha256_hex(normalised) if normalised is not None else None


def _hash_many(raw: Sequence[str], normalise: Callable[[str], str | None]) -> list[str]:
    """Hash each value; drop empty and duplicate results, keeping order."""
    hashed = (_hash_one(value, normalise) for value in raw)
    return list(dict.fromkeys(digest for digest in hashed if digest is not None))


@overload
def hash_email(raw: str) -> str | None: ...
@overload
def hash_email(raw: Sequence[str]) -> list[str]: ...
def hash_email(raw: str | Sequence[str]) -> str | list[str] | None:
    """SHA-256 of the normalised email; a list gives a list (empties dropped)."""
    if isinstance(raw, str):
        return _hash_one(raw, normalise_email)
    return _hash_many(raw, normalise_email)


@overload
def hash_phone(raw: str, default_region: str = "US") -> str | None: ...
@overload
def hash_phone(raw: Sequence[str], default_region: str = "US") -> list[str]: ...
def hash_phone(raw: str | Sequence[str], default_region: str = "US") -> str | list[str] | None:
    """SHA-256 of the E.164 phone number; a list gives a list (unparseable dropped)."""

    def normalise(value: str) -> str | None:
        return normalise_phone(value, default_region)

    if isinstance(raw, str):
        return _hash_one(raw, normalise)
    return _hash_many(raw, normalise)


@overload
def hash_external_id(raw: str) -> str | None: ...
@overload
def hash_external_id(raw: Sequence[str]) -> list[str]: ...
def hash_external_id(raw: str | Sequence[str]) -> str | list[str] | None:
    """SHA-256 of the trimmed external id; a list gives a list (empties dropped)."""
    if isinstance(raw, str):
        return _hash_one(raw, normalise_external_id)
    return _hash_many(raw, normalise_external_id)


def _as_list(hashed: str | list[str] | None) -> list[str] | None:
    """One representation for storage: None or a non-empty list of digests."""
    if hashed is None:
        return None
    if isinstance(hashed, str):
        return [hashed]
    return hashed or None


def hash_user(user: User, default_region: str = "US") -> User:
    """``user`` with email, phone and external_id replaced by lists of SHA-256 digests.

    Each becomes None (absent, or nothing usable) or a non-empty list of distinct
    lowercase hex digests. Other fields are unchanged.
    """
    if user.email is None and user.phone is None and user.external_id is None:
        return user
    return msgspec.structs.replace(
        user,
        email=None if user.email is None else _as_list(hash_email(user.email)),
        phone=None if user.phone is None else _as_list(hash_phone(user.phone, default_region)),
        external_id=(
            None if user.external_id is None else _as_list(hash_external_id(user.external_id))
        ),
    )
