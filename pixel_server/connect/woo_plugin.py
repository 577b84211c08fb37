"""``GET /integrations/woocommerce.zip?pixel=ID``: a minimal WordPress plugin that
prints the pixel's tag on every page.

WooCommerce's REST API cannot add scripts, so the merchant uploads this zip
once (Plugins > Add New > Upload Plugin). It is written here, built in memory,
and holds one file, ``pixel-server-<pixel id>/pixel-server.php``, which hooks
``wp_head`` (every front-end page: shop, product, cart, checkout, Blocks
checkout and order-received) and echoes the same tag ``pixel-server install``
puts into themes. The tag sits in a PHP nowdoc, so nothing in it is evaluated.
The folder carries the pixel id, so two pixels are two plugins.

An unknown or missing pixel is a JSON error (404 / 400), never an empty zip.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pixel_server.errors import ApiError
from pixel_server.install import snippet_tag
from pixel_server.registry import PixelRegistry

VERSION: Final = "1.0.0"
_END: Final = "PIXEL_SERVER_TAG"
_FIXED_TIME: Final = (2024, 1, 1, 0, 0, 0)  # same bytes for the same pixel: a stable ETag


def plugin_php(pixel_id: str, script_url: str) -> str:
    tag = snippet_tag(script_url)
    function = "pixel_server_tag_" + re.sub(r"\W", "_", pixel_id)
    if _END in tag:
        raise ValueError("the tag may not contain the nowdoc terminator")
    return f"""<?php
/**
 * Plugin Name: pixel-server ({pixel_id})
 * Description: Prints the pixel-server tag on every page, checkout and order received included.
 * Version: {VERSION}
 * Requires at least: 5.2
 * Requires PHP: 7.0
 * License: MIT
 */

if (!defined('ABSPATH')) {{
    exit;
}}

function {function}() {{
    echo <<<'{_END}'
{tag}
{_END};
    echo "\\n";
}}

add_action('wp_head', '{function}', 1);
"""


def plugin_zip(pixel_id: str, script_url: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(f"pixel-server-{pixel_id}/pixel-server.php", _FIXED_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, plugin_php(pixel_id, script_url))
    return buffer.getvalue()


def routes(registry: PixelRegistry, base_url: str) -> list[BaseRoute]:
    async def woocommerce_zip(request: Request) -> Response:
        pixel_id = request.query_params.get("pixel", "")
        if not pixel_id:
            raise ApiError(400, "missing_pixel", "add ?pixel=<pixel id> to the URL", "pixel")
        pixel = registry.get(pixel_id)
        if pixel is None:
            raise ApiError(404, "unknown_pixel", f"no pixel {pixel_id[:64]!r}", "pixel")
        body = plugin_zip(pixel.id, f"{base_url}/p/{pixel.id}.js")
        return Response(
            body,
            media_type="application/zip",
            headers={
                "content-disposition": f'attachment; filename="pixel-server-{pixel.id}.zip"',
                "cache-control": "no-store",
            },
        )

    return [Route("/integrations/woocommerce.zip", woocommerce_zip, methods=["GET"])]
