"""TikTok's rules for a catalog item, checked before TikTok sees it.

:func:`problems` returns the reasons an item would be rejected, from the
closed list :data:`REASONS` (empty: the item is valid). Invalid items are
stored with their reasons, left out of the feed and the Catalog API upload,
and listed by ``pixel-server catalog status``.

The rules: the nine required fields (``sku_id``, ``title``, ``description``,
``availability``, ``condition``, ``price``, ``link``, ``image_link``,
``brand``) are present; ``sku_id`` at most 100 characters without control
characters; title at most 150 and description at most 5,000 characters (the
model cuts them; a longer one here is a bug upstream); ``link``, ``image_link``
and every additional image are absolute ``https`` URLs; price > 0 with an
ISO 4217 currency; sale price, when given, > 0 and below the price;
availability and condition from TikTok's lists; no emoji or promotional text
("free shipping") in the title.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final, Literal, get_args
from urllib.parse import urlsplit

from pixel_server.catalog.model import AVAILABILITY, CONDITIONS, DESCRIPTION_MAX, TITLE_MAX, Item
from pixel_server.events.schema import ISO_4217_CODES

Reason = Literal[
    "missing_sku_id", "bad_sku_id", "missing_title", "title_too_long", "promotional_title",
    "missing_description", "description_too_long", "missing_brand", "bad_link",
    "bad_image_link", "bad_additional_image_link", "bad_price", "bad_currency",
    "bad_sale_price", "bad_availability", "bad_condition", "duplicate_sku_id",
]  # fmt: skip
REASONS: Final = get_args(Reason)
SKU_ID_MAX: Final = 100
_PROMOTIONAL: Final = re.compile(
    r"(free shipping|free delivery|best price|buy now|\d+\s*% off)", re.IGNORECASE
)


def https_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme == "https" and bool(parts.hostname) and " " not in value


def problems(item: Item) -> list[Reason]:
    out: list[Reason] = []
    if not item.sku_id:
        out.append("missing_sku_id")
    elif len(item.sku_id) > SKU_ID_MAX or any(
        unicodedata.category(c)[0] == "C" for c in item.sku_id
    ):
        out.append("bad_sku_id")
    if not item.title:
        out.append("missing_title")
    elif len(item.title) > TITLE_MAX:
        out.append("title_too_long")
    elif _PROMOTIONAL.search(item.title):
        out.append("promotional_title")
    if not item.description:
        out.append("missing_description")
    elif len(item.description) > DESCRIPTION_MAX:
        out.append("description_too_long")
    if not item.brand:
        out.append("missing_brand")
    if not https_url(item.link):
        out.append("bad_link")
    if not https_url(item.image_link):
        out.append("bad_image_link")
    if not all(https_url(u) for u in item.additional_image_links):
        out.append("bad_additional_image_link")
    if item.price is None or item.price <= 0:
        out.append("bad_price")
    if item.currency not in ISO_4217_CODES:
        out.append("bad_currency")
    if item.sale_price is not None and (
        item.sale_price <= 0 or (item.price is not None and item.sale_price >= item.price)
    ):
        out.append("bad_sale_price")
    if item.availability not in AVAILABILITY:
        out.append("bad_availability")
    if item.condition not in CONDITIONS:
        out.append("bad_condition")
    return out
