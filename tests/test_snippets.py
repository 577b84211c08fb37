"""Rendering, escaping, caching and encoding of the per-pixel snippet.

What the script does in a browser is tested in tests/browser/.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import replace

import pytest

from pixel_server.snippets import (
    CACHE_CONTROL,
    ENCODINGS,
    NOOP_ASSET,
    NOOP_SNIPPET,
    PLATFORMS,
    SnippetAsset,
    SnippetSettings,
    choose_encoding,
    gzip_body,
    minified_source,
    render_snippet,
    settings_json,
)

BASE = SnippetSettings(pixel_id="px_abc", endpoint="https://px.example.com", platform="ecwid")

CORE_BUDGET = 2048  # bytes gzipped, minified core
CORE_AND_ADAPTER_BUDGET = 3072  # bytes gzipped, minified core + one adapter
SERVED_BUDGET = 3072  # bytes of the gzip response, wrapper and settings included

HOSTILE_PIXEL = 'px_"</script><script>alert(1)</script>\u2028\u2029<!--&amp;\\'
HOSTILE_ENDPOINT = "https://evil.example/</script><script>alert(2)</script>&x=\"'"


def _asset_again(body: bytes) -> SnippetAsset:
    return SnippetAsset(body, gzip_body(body), None, "")


def settings_literal(body: bytes) -> str:
    """The JSON literal the wrapper passes to the snippet (its last argument)."""
    m = re.search(rb"\}\(self,(\{.*\})\);$", body)
    assert m, "the snippet ends with the settings literal"
    return m.group(1).decode("ascii")


def gz(data: bytes | str) -> int:
    return len(gzip_body(data.encode() if isinstance(data, str) else data))  # as served


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_platform_renders_core_adapter_and_settings(platform: str) -> None:
    settings = replace(BASE, platform=platform)

    asset = render_snippet(settings)

    body = asset.body
    assert re.match(rb'!function\((\w),(\w)\)\{"use strict";try\{if\(\1\._pxs\)return;', body)
    assert re.search(rb"\w\.go\(\)\}catch\(e\)\{\}\}\(self,\{", body)  # started, then the settings
    assert minified_source(platform).encode() in body
    # Short keys, defaults left out (the platform chose the adapter already).
    assert json.loads(settings_literal(body)) == {
        "i": "px_abc",
        "u": "https://px.example.com/collect?p=px_abc",
        "d": 7,
    }
    assert b"/*" not in body and b"\n  " not in body  # minified: no comments, no indentation


def test_the_tiktok_module_comes_only_with_a_tiktok_pixel_code() -> None:
    plain = render_snippet(BASE).body
    with_tiktok = render_snippet(replace(BASE, tiktok_pixel_code="C123ABC")).body
    shopify = render_snippet(replace(BASE, platform="shopify", tiktok_pixel_code="C123")).body

    assert b"analytics.tiktok.com" not in plain
    assert b"analytics.tiktok.com" in with_tiktok
    assert b"analytics.tiktok.com" not in shopify  # no TikTok pixel inside Shopify's sandbox


def test_commerce_helpers_go_only_to_store_adapters() -> None:
    # item_group_id is a key only item() writes.
    assert "item_group_id:" not in minified_source("html")
    assert "item_group_id:" in minified_source("bigcommerce")


def test_form_events_go_to_plain_html_and_bigcommerce_only() -> None:
    # Contact Form 7's class: only forms.js names it. The others have no room
    # for it in the budget (Shopify's sandbox, no page at all).
    assert {p for p in PLATFORMS if "wpcf7" in minified_source(p)} == {"html", "bigcommerce"}


@pytest.mark.parametrize("field", ["pixel_id", "endpoint"])
def test_hostile_settings_cannot_break_out_of_the_script(field: str) -> None:
    hostile = HOSTILE_PIXEL if field == "pixel_id" else HOSTILE_ENDPOINT
    settings = replace(BASE, **{field: hostile})

    body = render_snippet(settings).body
    literal = settings_literal(body)

    assert body.isascii()  # so U+2028/U+2029 can only appear escaped
    assert "</script" not in body.decode().lower()
    assert "<!--" not in body.decode()
    for char in "<>&\u2028\u2029":
        assert char not in literal
    data = json.loads(literal)
    assert (data["i"] if field == "pixel_id" else data["u"].split("/collect?")[0]) == hostile
    assert "\\u003c/script\\u003e" in literal
    assert field == "endpoint" or "\\u2028\\u2029" in literal


def test_settings_json_builds_the_collect_url_from_the_endpoint() -> None:
    data = json.loads(settings_json(replace(BASE, endpoint="https://px.example.com/base/")))
    odd = json.loads(settings_json(replace(BASE, pixel_id="px a/b?&é")))

    assert data["u"] == "https://px.example.com/base/collect?p=px_abc"
    assert (
        odd["u"] == "https://px.example.com/collect?p=px%20a%2Fb%3F%26%C3%A9"
    )  # encodeURIComponent
    assert odd["i"] == "px a/b?&é"


def test_settings_json_carries_every_setting_that_is_not_a_default() -> None:
    settings = replace(
        BASE, consent="hold", tiktok_pixel_code="C123ABC", mirror_to_tiktok_pixel=True,
        currency="EUR", click_window_days=30,
    )  # fmt: skip

    assert json.loads(settings_json(settings)) == {
        "i": "px_abc",
        "u": "https://px.example.com/collect?p=px_abc",
        "d": 30,
        "h": 1,
        "t": "C123ABC",
        "m": 1,
        "c": "EUR",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pixel_id": ""}, "pixel_id"),
        ({"endpoint": "javascript:alert(1)"}, "endpoint"),
        ({"endpoint": "//px.example.com"}, "endpoint"),
        ({"platform": "wix"}, "platform"),
        ({"click_window_days": 0}, "click_window_days"),
        ({"click_window_days": True}, "click_window_days"),
        ({"consent": "denied"}, "consent"),
        ({"tiktok_pixel_code": ""}, "tiktok_pixel_code"),
        ({"currency": "usd"}, "currency"),
        ({"mirror_to_tiktok_pixel": 1}, "mirror_to_tiktok_pixel"),
    ],
)
def test_settings_are_validated(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(BASE, **change)


def test_etag_is_strong_stable_and_follows_the_content() -> None:
    first = render_snippet(BASE)
    again = render_snippet(SnippetSettings("px_abc", "https://px.example.com", "ecwid"))
    other_pixel = render_snippet(replace(BASE, pixel_id="px_abd"))
    held = render_snippet(replace(BASE, consent="hold"))

    assert re.fullmatch(r'"[0-9a-f]{32}"', first.etag)  # strong: no W/ prefix
    assert again.etag == first.etag
    assert len({first.etag, other_pixel.etag, held.etag}) == 3


def test_equal_settings_hit_the_cache() -> None:
    assert render_snippet(BASE) is render_snippet(replace(BASE))


def test_every_encoding_decodes_to_the_body_with_its_own_etag() -> None:
    asset = render_snippet(BASE)

    identity, etag = asset.encoded("identity")
    gzipped, gzip_etag = asset.encoded("gzip")

    assert identity == asset.body and etag == asset.etag
    assert gzip.decompress(gzipped) == asset.body
    assert len(gzipped) < len(asset.body)
    assert gzip_etag == asset.etag[:-1] + '-gzip"'
    assert _asset_again(asset.body).gzip == gzipped  # the same bytes every time


def test_brotli_decodes_to_the_body_with_its_own_etag() -> None:
    brotli = pytest.importorskip("brotli", reason="brotli is optional: gzip serves without it")
    asset = render_snippet(BASE)

    brotlied, br_etag = asset.encoded("br")

    assert brotli.decompress(brotlied) == asset.body
    assert len(brotlied) < len(asset.gzip)
    assert br_etag == asset.etag[:-1] + '-br"'


def test_without_brotli_br_requests_get_gzip() -> None:
    asset = replace(render_snippet(BASE), br=None)

    assert asset.encoded("br") == asset.encoded("gzip")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_size_budget_of_the_served_script(platform: str) -> None:
    # A typical pixel: a store currency, consent held, a long endpoint.
    settings = SnippetSettings(
        "px_8f3k2m9q", "https://px.example-shop.com", platform, consent="hold", currency="USD"
    )

    assert len(render_snippet(settings).gzip) <= SERVED_BUDGET


def test_size_budget_of_the_core() -> None:
    assert gz(minified_source(None)) <= CORE_BUDGET


@pytest.mark.parametrize("platform", PLATFORMS)
def test_size_budget_of_core_and_each_adapter(platform: str) -> None:
    assert gz(minified_source(platform)) <= CORE_AND_ADAPTER_BUDGET


def test_noop_snippet_is_a_tiny_stub_that_leaves_an_existing_ttq_alone() -> None:
    assert len(NOOP_SNIPPET) < 600
    assert NOOP_SNIPPET.startswith(b"!function(w){try{if(w.ttq)return;")
    for method in (b"track", b"page", b"identify", b"grantConsent", b"instance", b"load"):
        assert method in NOOP_SNIPPET
    assert b"fetch" not in NOOP_SNIPPET and b"sendBeacon" not in NOOP_SNIPPET
    assert NOOP_ASSET.body == NOOP_SNIPPET
    assert gzip.decompress(NOOP_ASSET.gzip) == NOOP_SNIPPET


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br, zstd", "br"),
        ("gzip, deflate", "gzip"),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
        ("", "identity"),
        ("deflate", "identity"),
        ("br;q=0, gzip", "gzip"),
        ("br;q=0.5, gzip;q=0.8", "gzip"),
        ("gzip;q=0.5, identity;q=1", "identity"),
        ("*", "br"),
        ("*;q=0, identity", "identity"),
        ("gzip;q=0, br;q=0", "identity"),
        ("gzip;q=oops, br", "br"),
        ("identity;q=0", "identity"),  # nothing better: identity rather than a 406
    ],
)
def test_choose_encoding(header: str, expected: str) -> None:
    assert choose_encoding(header, available=("br", "gzip")) == expected


def test_choose_encoding_offers_only_what_this_process_can_produce() -> None:
    assert choose_encoding("br, gzip") == ENCODINGS[0]  # br only with the brotli module


def test_choose_encoding_only_offers_what_is_available() -> None:
    assert choose_encoding("br, gzip", available=("gzip",)) == "gzip"
    assert choose_encoding("br", available=("gzip",)) == "identity"


def test_recommended_cache_control_lets_settings_changes_through_quickly() -> None:
    assert "max-age=300" in CACHE_CONTROL and "public" in CACHE_CONTROL
