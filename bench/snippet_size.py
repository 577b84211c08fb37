"""Snippet size: how many bytes a store's shoppers download.

Run: ``.venv/bin/python bench/snippet_size.py`` (results go to the section
"Snippet size" of docs/benchmarks.md).

Rows:

* ``core``: ``snippets/core.js`` in the wrapper, minified (tdewolff-minify),
  what every pixel ships;
* ``core + <platform>``: core + that platform's adapter, minified, with what
  the platform also gets (the ttq layer ``snippets/ttq.js`` everywhere but
  Shopify, the commerce helpers for the store adapters): the code of one pixel;
* ``served <platform>``: the whole script as ``GET /p/{pixel_id}.js`` serves
  it, wrapper and a typical pixel's settings JSON included (store currency,
  consent held);
* ``served <platform> + TikTok pixel``: the same with ``tiktok_pixel_code``
  set (adds the module that loads TikTok's own browser pixel);
* ``noop``: the stub served for disabled or unknown pixels.

gzip is what the server stores (zopfli, ``snippets.gzip_body``), brotli
quality 11. Budgets (asserted in tests/test_snippets.py): core <= 2048 bytes
gzipped, core + one adapter <= 3072, and the served script <= 3072.
"""

from __future__ import annotations

import brotli

from pixel_server.snippets import (
    NOOP_SNIPPET,
    PLATFORMS,
    SnippetSettings,
    gzip_body,
    minified_source,
    render_snippet,
)

CORE_BUDGET = 2048
ADAPTER_BUDGET = 3072
SERVED_BUDGET = 3072


def sizes(data: bytes) -> tuple[int, int, int]:
    return len(data), len(gzip_body(data)), len(brotli.compress(data, quality=11))


def rows() -> list[tuple[str, bytes, int | None]]:
    settings = SnippetSettings(
        pixel_id="px_8f3k2m9q", endpoint="https://px.example-shop.com", platform="html"
    )
    out: list[tuple[str, bytes, int | None]] = [
        ("core", minified_source(None).encode(), CORE_BUDGET)
    ]
    for platform in PLATFORMS:
        out.append((f"core + {platform}", minified_source(platform).encode(), ADAPTER_BUDGET))
    for platform in PLATFORMS:
        s = SnippetSettings(
            settings.pixel_id, settings.endpoint, platform, consent="hold", currency="USD"
        )
        out.append((f"served {platform}", render_snippet(s).body, SERVED_BUDGET))
    for platform in PLATFORMS:
        if platform == "shopify":  # never bundled inside Shopify's sandbox
            continue
        s = SnippetSettings(
            settings.pixel_id, settings.endpoint, platform, consent="hold", currency="USD",
            tiktok_pixel_code="CABCDEF0123456789",
        )  # fmt: skip
        out.append((f"served {platform} + TikTok pixel", render_snippet(s).body, None))
    out.append(("noop", NOOP_SNIPPET, None))
    return out


def main() -> None:
    print("| what | minified | gzip | brotli | gzip budget |")
    print("|---|---:|---:|---:|---:|")
    for name, data, budget in rows():
        raw, gz, br = sizes(data)
        mark = "" if budget is None else f"{budget} ({'ok' if gz <= budget else 'OVER'})"
        print(f"| {name} | {raw} | {gz} | {br} | {mark} |")


if __name__ == "__main__":
    main()
