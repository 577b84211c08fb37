"""Issued secrets: pixel API keys and report tokens.

They are random 256-bit values shown once and stored only as SHA-256 hashes.
A fast hash is right here (unlike for passwords): the values are random, so
there is nothing to brute-force, and every ingest request checks a key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_KEY_PREFIX = "psk_"
TOKEN_PREFIX = "prt_"
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no look-alikes (l/1, o/0)


def new_pixel_id() -> str:
    return "px_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_report_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_feed_token() -> str:
    # In a URL path: URL-safe characters only, no prefix a crawler could key on.
    return secrets.token_urlsafe(32)


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def matches(value: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret against a stored hash."""
    return hmac.compare_digest(hash_secret(value), stored_hash)


def token_id(token_hash: str) -> str:
    """A short public handle for a token (for listing and revoking)."""
    return token_hash[:12]
