"""The per-pixel JavaScript snippet served at ``GET /p/{pixel_id}.js``.

A snippet is ``snippets/core.js`` plus the pixel's platform adapter
(``snippets/adapters/<platform>.js``); every platform but Shopify (whose pixel
sandbox shares no ``ttq`` with the page) gets the ttq API in
``snippets/ttq.js``, store adapters the helpers in ``snippets/commerce.js``,
BigCommerce and plain HTML the form and click events of ``snippets/forms.js``,
and ``snippets/tiktok.js`` is added when the pixel also loads TikTok's own
browser pixel. All of it is wrapped in one function that receives the pixel's
settings as an escaped JSON object, minified as one program (tdewolff's
minifier: every name is local to the wrapper, so all are shortened), and
pre-compressed (gzip by zopfli, and brotli when available) with a
strong ETag.

Serving it (the route lives in the app; this module stays pure):

- ``asset = render_snippet(settings)`` (cached), or ``NOOP_ASSET`` for a
  disabled or unknown pixel;
- ``encoding = choose_encoding(request.headers.get("accept-encoding", ""))``,
  ``payload, etag = asset.encoded(encoding)``;
- 304 when ``If-None-Match`` lists ``etag``; otherwise 200 with
  ``Content-Type: CONTENT_TYPE``, ``Content-Encoding: <encoding>`` (omitted
  for identity), ``Vary: Accept-Encoding``, ``ETag: <etag>``,
  ``Cache-Control: CACHE_CONTROL`` (``NOOP_CACHE_CONTROL`` for the no-op) and
  ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote

import minify
import zopfli.gzip

try:  # brotli is an extra encoding; gzip always works without it
    import brotli
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None

#: The content codings this process can produce, best first.
ENCODINGS: Final[tuple[str, ...]] = ("br", "gzip") if brotli is not None else ("gzip",)

__all__ = [
    "CACHE_CONTROL",
    "CONTENT_TYPE",
    "ENCODINGS",
    "NOOP_ASSET",
    "NOOP_CACHE_CONTROL",
    "NOOP_SNIPPET",
    "PLATFORMS",
    "SNIPPETS_DIR",
    "SnippetAsset",
    "SnippetSettings",
    "choose_encoding",
    "gzip_body",
    "minified_source",
    "render_snippet",
    "settings_json",
]

Platform = Literal["ecwid", "bigcommerce", "shopify", "woocommerce", "html"]
Encoding = Literal["br", "gzip", "identity"]

PLATFORMS: Final[tuple[str, ...]] = ("ecwid", "bigcommerce", "shopify", "woocommerce", "html")
SNIPPETS_DIR: Final[Path] = Path(__file__).resolve().parent.parent / "snippets"

CONTENT_TYPE: Final = "text/javascript; charset=utf-8"
# Five minutes fresh: a settings change (consent mode, TikTok pixel code)
# reaches every store within that. Stale-while-revalidate keeps store pages
# from ever waiting on a revalidation, which the ETag turns into a 304.
CACHE_CONTROL: Final = "public, max-age=300, stale-while-revalidate=86400"
# Short for the no-op: a pixel that gets enabled should start soon.
NOOP_CACHE_CONTROL: Final = "public, max-age=60"

_MAX_CLICK_WINDOW_DAYS: Final = 365
_CURRENCY = re.compile(r"[A-Z]{3}")
_ENDPOINT = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")
_URI_COMPONENT_SAFE: Final = "-_.!~*'()"  # what encodeURIComponent leaves as it is
_ZOPFLI_ITERATIONS: Final = 5  # more buys a few bytes at several times the time

# The assembly. Strict mode and the double-load guard belong to the wrapper,
# not to core.js, so core.js stays a plain readable file; the adapter gets its
# own try so a broken adapter still leaves the ttq API working. The guard is a
# global of its own: with TikTok's pixel on the page, ttq is not ours.
_HEAD: Final = '!function(w,S){"use strict";try{if(w._pxs)return;w._pxs=1;'
_ADAPTER_OPEN: Final = "try{"
_TAIL: Final = "}catch(e){}P.go()}catch(e){}}(self,"
_CORE_TAIL: Final = "P.go()}catch(e){}}(self,"  # the core alone (its size budget)
_END: Final = ");"
# Stands for the settings literal while the program is minified: a global
# name, which the minifier leaves as it is.
_SETTINGS: Final = "__PXS__"
_MEDIA_TYPE: Final = "application/javascript"
# The seed's form and click events (forms.js, ~400 B gzipped): Shopify's
# sandbox sees no page, and the WooCommerce and Ecwid adapters leave no room
# for them under the 3 KB budget.
_FORMS_PLATFORMS: Final = ("bigcommerce", "html")
# ES2017 at most (core.js's house rules): the minifier must not emit ?. or ??.
minify.config({"js-version": 2017})


@dataclass(frozen=True, slots=True)
class SnippetSettings:
    """What a pixel's snippet needs to know; rendered into it as JSON."""

    pixel_id: str
    endpoint: str  # base URL of this server, e.g. "https://px.example.com"
    platform: Platform = "html"
    click_window_days: int = 7  # how long a ttclid is kept first-party
    consent: Literal["granted", "hold"] = "granted"
    tiktok_pixel_code: str | None = None  # also load TikTok's browser pixel
    currency: str | None = None  # ISO 4217 fallback where the platform has none (Ecwid)
    # With TikTok's own pixel on the page: also feed it our adapters' events
    # (same event_ids). Off, it gets only what the page itself calls.
    mirror_to_tiktok_pixel: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.pixel_id, str) or not self.pixel_id:
            raise ValueError("pixel_id must be a non-empty string")
        if not isinstance(self.endpoint, str) or not _ENDPOINT.fullmatch(self.endpoint):
            raise ValueError(f"endpoint must be an http(s) base URL, got {self.endpoint!r}")
        if self.platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {', '.join(PLATFORMS)}")
        days = self.click_window_days
        if not isinstance(days, int) or isinstance(days, bool):
            raise ValueError("click_window_days must be an integer")
        if not 1 <= days <= _MAX_CLICK_WINDOW_DAYS:
            raise ValueError(f"click_window_days must be 1..{_MAX_CLICK_WINDOW_DAYS}")
        if self.consent not in ("granted", "hold"):
            raise ValueError('consent must be "granted" or "hold"')
        if self.tiktok_pixel_code is not None and (
            not isinstance(self.tiktok_pixel_code, str) or not self.tiktok_pixel_code
        ):
            raise ValueError("tiktok_pixel_code must be a non-empty string or None")
        if self.currency is not None and not _CURRENCY.fullmatch(str(self.currency)):
            raise ValueError("currency must be an ISO 4217 code such as 'USD'")
        if not isinstance(self.mirror_to_tiktok_pixel, bool):
            raise ValueError("mirror_to_tiktok_pixel must be true or false")


@dataclass(frozen=True, slots=True)
class SnippetAsset:
    """One script, ready to serve in every encoding."""

    body: bytes
    gzip: bytes
    br: bytes | None
    etag: str  # strong, of the identity body

    def encoded(self, encoding: str) -> tuple[bytes, str]:
        """The payload and ETag of one representation.

        A strong ETag names exact bytes, so each content coding gets its own
        (RFC 9110 §8.8.3): ``"<hash>"``, ``"<hash>-gzip"``, ``"<hash>-br"``.
        Asking for br when brotli is unavailable gives the gzip one.
        """
        if encoding == "br" and self.br is not None:
            return self.br, self.etag[:-1] + '-br"'
        if encoding in ("br", "gzip"):
            return self.gzip, self.etag[:-1] + '-gzip"'
        return self.body, self.etag


def settings_json(settings: SnippetSettings) -> str:
    """The settings as a JS-safe JSON literal, with the short keys core.js reads.

    Every byte here is downloaded by every shopper, so keys are one letter and
    settings at their default (false, None) are left out: ``i`` pixel id,
    ``u`` the collect URL (endpoint without its trailing slash, ``/collect?p=``
    and the pixel id, encoded as ``encodeURIComponent`` would), ``d`` click
    window days, ``h`` consent held, ``t`` TikTok pixel code, ``m`` mirror to
    TikTok's pixel, ``c`` currency. The platform is not sent: it chose the
    adapter already.

    ``ensure_ascii`` escapes every non-ASCII character, U+2028/U+2029 (line
    terminators in older JS) included; ``<``, ``>`` and ``&`` are escaped too,
    so nothing in a setting can close a ``<script>`` element or open a comment
    when the snippet is inlined in HTML.
    """
    endpoint = settings.endpoint.rstrip("/")
    data: dict[str, Any] = {
        "i": settings.pixel_id,
        "u": f"{endpoint}/collect?p={quote(settings.pixel_id, safe=_URI_COMPONENT_SAFE)}",
        "d": settings.click_window_days,
        "h": 1 if settings.consent == "hold" else None,
        "t": settings.tiktok_pixel_code,
        "m": 1 if settings.mirror_to_tiktok_pixel else None,
        "c": settings.currency,
    }
    data = {k: v for k, v in data.items() if v is not None}
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _read(name: str) -> str:
    return (SNIPPETS_DIR / name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=2 * len(PLATFORMS) + 1)
def minified_source(platform: str | None = None, tiktok: bool = False) -> str:
    """The minified script of one platform (the core alone for
    ``platform=None``), wrapper included, up to its settings literal.

    ``tiktok`` adds the module that loads TikTok's own browser pixel (never
    for Shopify, whose sandbox cannot host it). Minified once per process:
    the sources are part of the release, not data.
    """
    parts = [_read("core.js")]
    if platform is not None:
        if platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}")
        if platform != "shopify":  # the sandbox shares no ttq with the page
            parts.append(_read("ttq.js"))
        if tiktok and platform != "shopify":
            parts.append(_read("tiktok.js"))
        if platform != "html":  # item/props/wait helpers, for the store adapters
            parts.append(_read("commerce.js"))
        if platform in _FORMS_PLATFORMS:
            parts.append(_read("forms.js"))
        # The adapter gets its own try: a broken adapter leaves the ttq API working.
        tail = _ADAPTER_OPEN + _read(f"adapters/{platform}.js") + _TAIL
    else:
        tail = _CORE_TAIL
    program = _HEAD + "\n".join(parts) + "\n" + tail + _SETTINGS + _END
    head, _, _ = minify.string(_MEDIA_TYPE, program).rpartition(_SETTINGS)
    return head


# Plain string assembly rather than a Jinja2 template: the only variable part
# is one JSON literal whose escaping is JavaScript's, not HTML's (autoescape
# would be wrong here), and Jinja's {{ }} / {% %} would collide with the JS.
# The minified code is shared by every pixel of a platform; only the settings
# differ. Bounded LRU: a few thousand pixels' assets (~8 KB each) stay warm.
@functools.lru_cache(maxsize=4096)
def render_snippet(settings: SnippetSettings) -> SnippetAsset:
    """The pixel's script: core + its adapter, with its settings embedded."""
    source = minified_source(settings.platform, settings.tiktok_pixel_code is not None)
    text = source + settings_json(settings) + _END
    return _asset(text.encode("utf-8"))


def gzip_body(body: bytes) -> bytes:
    """The gzip representation the server sends (and the size budget counts).

    Zopfli: a gzip stream any client reads, about 1.5% smaller than zlib's
    level 9, for ~10 ms once per asset. Its header carries no time, so the
    same body always gives the same bytes.
    """
    return zopfli.gzip.compress(body, numiterations=_ZOPFLI_ITERATIONS)


def _asset(body: bytes) -> SnippetAsset:
    digest = hashlib.sha256(body).hexdigest()[:32]
    return SnippetAsset(
        body=body,
        gzip=gzip_body(body),
        br=brotli.compress(body, quality=11) if brotli is not None else None,
        etag=f'"{digest}"',
    )


# For disabled or unknown pixels: a stub that swallows every ttq call, so a
# store's own ttq code never throws. It leaves an existing ttq (TikTok's base
# code, say) alone.
NOOP_SNIPPET: Final[bytes] = (
    b"!function(w){try{if(w.ttq)return;var n=function(){},t={push:n,load:n,"
    b'instance:function(){return t}};"page track identify instances debug on off once '
    b'ready alias group enableCookie disableCookie holdConsent revokeConsent grantConsent".'
    b'split(" ").forEach(function(m){t[m]=n});w.ttq=t}catch(e){}}(self);'
)
NOOP_ASSET: Final[SnippetAsset] = _asset(NOOP_SNIPPET)

_PREFERENCE: Final[dict[str, int]] = {"br": 3, "gzip": 2, "identity": 1}


def choose_encoding(accept_encoding: str, available: tuple[str, ...] = ENCODINGS) -> Encoding:
    """The content coding to send for an ``Accept-Encoding`` header.

    Highest q-value wins, ties go to the smaller payload (br, then gzip);
    ``q=0`` refuses a coding, ``*`` stands for the codings not named,
    ``x-gzip`` is gzip, and identity not named comes after any named
    coding. Identity is the answer when nothing else is acceptable (even if
    refused: a 406 for a tracking script helps nobody). ``available``
    defaults to what this process can produce (br needs the brotli module).
    """
    weights: dict[str, float] = {}
    star: float | None = None
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        if name == "x-gzip":
            name = "gzip"
        if not name:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if name == "*":
            star = q
        else:
            weights[name] = q

    def weight(coding: str) -> float:
        if coding in weights:
            return weights[coding]
        if star is not None:
            return star
        # Unnamed identity is acceptable but the last choice.
        return 0.001 if coding == "identity" else 0.0

    candidates = [c for c in ("br", "gzip") if c in available]
    best: Encoding = "identity"
    best_key = (weight("identity"), _PREFERENCE["identity"])
    for coding in candidates:
        key = (weight(coding), _PREFERENCE[coding])
        if key[0] > 0 and key > best_key:
            best, best_key = coding, key  # type: ignore[assignment]
    return best
