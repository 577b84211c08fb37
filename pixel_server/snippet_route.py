"""``GET /p/{pixel_id}.js``: the pixel's snippet, cached and compressed.

A disabled or unknown pixel gets a tiny no-op script with 200, so a store that
removed the channel never shows errors in its shoppers' consoles.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pixel_server.pixel import Pixel
from pixel_server.registry import PixelRegistry
from pixel_server.snippets import (
    CACHE_CONTROL,
    CONTENT_TYPE,
    NOOP_ASSET,
    NOOP_CACHE_CONTROL,
    SnippetSettings,
    choose_encoding,
    render_snippet,
)


def snippet_settings(pixel: Pixel, endpoint: str) -> SnippetSettings:
    return SnippetSettings(
        pixel_id=pixel.id,
        endpoint=endpoint,
        platform=pixel.platform,  # type: ignore[arg-type]
        tiktok_pixel_code=(pixel.tiktok_pixel_code or None) if pixel.load_tiktok_pixel else None,
        consent="hold" if pixel.consent_mode == "hold" else "granted",
        click_window_days=pixel.click_window_days,
        currency=pixel.currency or None,
        mirror_to_tiktok_pixel=pixel.mirror_to_tiktok_pixel,
    )


def routes(registry: PixelRegistry, endpoint: str) -> list[Route]:
    """``endpoint``: the server's public URL, where the snippet sends events."""

    async def snippet(request: Request) -> Response:
        pixel = registry.get(request.path_params["pixel_id"])
        if pixel is None or not pixel.enabled:
            asset, cache_control = NOOP_ASSET, NOOP_CACHE_CONTROL
        else:
            asset = render_snippet(snippet_settings(pixel, endpoint))
            cache_control = CACHE_CONTROL
        encoding = choose_encoding(request.headers.get("accept-encoding", ""))
        payload, etag = asset.encoded(encoding)
        headers = {
            "etag": etag,
            "cache-control": cache_control,
            "vary": "Accept-Encoding",
            "x-content-type-options": "nosniff",
            # Store pages on any origin load this script.
            "cross-origin-resource-policy": "cross-origin",
        }
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        if encoding != "identity":
            headers["content-encoding"] = encoding
        return Response(payload, media_type=CONTENT_TYPE, headers=headers)

    return [Route("/p/{pixel_id}.js", snippet, methods=["GET"])]
