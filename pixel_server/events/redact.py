"""Personal data in free text: found and taken out before anything is written.

``user.email`` / ``user.phone`` are hashed by :mod:`pixel_server.events.normalise`.
Shoppers' addresses also turn up where nobody meant to put them: a page URL
such as ``/thanks?email=jane@example.com``, a search for one's own phone
number, a description or a custom property a theme filled from a form. This
module finds them in the free-text fields we keep and:

* in **URLs** (page URL and referrer), removes every query parameter whose
  value holds an email address or a phone number, and replaces such text in the
  path or fragment by ``redacted`` — a hash of a URL part is of no use to
  anyone;
* in **other text** (description, search query, custom property strings),
  replaces each email address or phone number by its normalised SHA-256 (the
  same digest TikTok computes), so a store that put a customer's email there
  can still match on it without it being stored in clear.

What counts (a deliberate, documented heuristic, in ``docs/security.md``):

* an email address is ``local@domain.tld`` (also written ``%40``); in a URL's
  query any value with ``@domain.tld`` counts;
* a phone number is what libphonenumber's matcher accepts as a *valid* number
  for the pixel's default region, in text that has at least 7 digits; plain
  digit runs without ``+`` or separators are taken as ids (order, product,
  variant) and left alone, unless a URL parameter's name says phone
  (``phone``, ``tel``, ``mobile``, ``sms``, ``whatsapp``).

Everything here is pure and cached per string: one page's events share their
URLs, so the work is done once per page, not per event.
"""

from __future__ import annotations

import functools
import re
from typing import Final
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import msgspec
import phonenumbers

from pixel_server.events.normalise import hash_email, hash_phone

URL_REDACTED: Final = "redacted"

_EMAIL: Final = re.compile(
    r"[A-Za-z0-9._%+\-]{1,64}(?:@|%40)[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}"
)
# In a query value anything "@domain.tld" goes, even with an odd local part
# (a raw "+" in a query decodes to a space: "jane+shop@x.com").
_AT_DOMAIN: Final = re.compile(r"@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}")
_DIGITS: Final = re.compile(r"\d")
_FORMATTED_PHONE: Final = re.compile(r"\+\s*\d|\d[\s().\-]+\d")
# A URL may hold a phone number only if some digits are written like one
# (in a query "+" is a space and "%2B" a plus) or a parameter is named like one.
_URL_PHONEISH: Final = re.compile(r"(?:\+|%2[bB])\d|\d[\s().\-+]{1,3}\d|\d%20\d")
_PHONE_WORDS: Final = ("phone", "tel", "mobile", "sms", "whatsapp", "cell")
_PHONE_KEYS: Final = re.compile("|".join(_PHONE_WORDS), re.IGNORECASE)
_MIN_PHONE_DIGITS: Final = 7
_CACHE: Final = 4096


def _phones(text: str, region: str, *, bare_digits: bool) -> list[tuple[int, int, str]]:
    """(start, end, raw) of each valid phone number in ``text``."""
    if len(_DIGITS.findall(text)) < _MIN_PHONE_DIGITS:
        return []
    if not bare_digits and not _FORMATTED_PHONE.search(text):
        return []
    leniency = phonenumbers.Leniency.VALID
    return [
        (m.start, m.end, m.raw_string)
        for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency)
    ]


def has_personal_data(text: str, region: str, *, bare_digits: bool = False) -> bool:
    return bool(_EMAIL.search(text)) or bool(_phones(text, region, bare_digits=bare_digits))


@functools.lru_cache(maxsize=_CACHE)
def redact_text(text: str, region: str) -> str:
    """``text`` with each email and phone number replaced by its SHA-256."""
    if not text:
        return text

    def email_digest(match: re.Match[str]) -> str:
        return hash_email(unquote(match.group(0))) or URL_REDACTED

    out = _EMAIL.sub(email_digest, text)
    phones = _phones(out, region, bare_digits=False)
    for start, end, raw in reversed(phones):
        out = out[:start] + (hash_phone(raw, region) or URL_REDACTED) + out[end:]
    return out


@functools.lru_cache(maxsize=_CACHE)
def redact_url(url: str, region: str) -> str:
    """``url`` without the query parameters that hold personal data, and with
    any left in its path or fragment replaced by ``redacted``."""
    if not url or not (
        "@" in url
        or "%40" in url
        or _URL_PHONEISH.search(url)
        or any(word in url.lower() for word in _PHONE_WORDS)
    ):
        return url
    try:
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:  # not a URL we can take apart: treat it as text
        return _redact_url_part(url, region)
    kept = [
        (key, value)
        for key, value in pairs
        if not _AT_DOMAIN.search(value)
        and not has_personal_data(value, region, bare_digits=bool(_PHONE_KEYS.search(key)))
        and not has_personal_data(key, region)
    ]
    query = parts.query if len(kept) == len(pairs) else urlencode(kept)
    return urlunsplit(
        (
            parts.scheme,
            parts.netloc,
            _redact_url_part(parts.path, region),
            query,
            _redact_url_part(parts.fragment, region),
        )
    )


def _redact_url_part(text: str, region: str) -> str:
    decoded = unquote(text)
    if not has_personal_data(decoded, region):
        return text
    out = _EMAIL.sub(URL_REDACTED, decoded)
    for start, end, _ in reversed(_phones(out, region, bare_digits=False)):
        out = out[:start] + URL_REDACTED + out[end:]
    return out


def redact_json(text: str, region: str) -> str:
    """A JSON document (custom properties) with its strings redacted; keys too."""
    if not text or not ("@" in text or len(_DIGITS.findall(text)) >= _MIN_PHONE_DIGITS):
        return text
    value = msgspec.json.decode(text)
    cleaned = _redact_value(value, region)
    return text if cleaned == value else msgspec.json.encode(cleaned).decode()


def _redact_value(value: object, region: str) -> object:
    if isinstance(value, str):
        return redact_text(value, region)
    if isinstance(value, list):
        return [_redact_value(v, region) for v in value]
    if isinstance(value, dict):
        return {redact_text(k, region): _redact_value(v, region) for k, v in value.items()}
    return value
