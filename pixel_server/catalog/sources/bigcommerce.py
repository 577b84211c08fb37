"""BigCommerce (REST v3 catalog): products with their variants and images.

``GET {base}/stores/{hash}/v3/catalog/products?include=variants,images&limit=250&page=N``
pages until ``meta.pagination.total_pages``; ``GET .../products/{id}?include=...``
reads one; header ``X-Auth-Token``; ``base`` defaults to
``https://api.bigcommerce.com``. The storefront's address and currency come from
``GET .../v2/store`` (``secure_url``, ``currency``), brand names from
``GET .../v3/catalog/brands``. Rate limits: when ``X-Rate-Limit-Requests-Left``
reaches 0 the pull waits ``X-Rate-Limit-Time-Reset-Ms`` before its next request.

* Hidden: ``is_visible`` false.
* One item per variant (a product without options has one base variant).
  sku_id = the variant's ``sku``, else its ``id`` (BODL's line items carry both;
  the snippet sends the SKU first).
* Price: the variant's ``price`` (null: the product's); ``sale_price`` (the
  variant's, else the product's) when above 0 and below it.
* Availability: ``availability`` ``preorder`` → preorder, ``disabled`` →
  discontinued; a variant with ``purchasing_disabled``, or with no stock when
  inventory is tracked (``inventory_tracking`` product or variant) → out of
  stock.
* Options: ``option_values[] {option_display_name, label}``. Link:
  ``secure_url`` + ``custom_url.url``. Images: the variant's ``image_url``, then
  the product's (thumbnail first, ``url_standard``). Condition: ``condition``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import httpx

from pixel_server.catalog.model import Draft, Product, make_item
from pixel_server.catalog.sources.common import items, num, obj, or_gone, stock, text
from pixel_server.catalog.sources.http import Pacing, StoreHttp
from pixel_server.pixel import Pixel

PAGE: Final = 250
DEFAULT_BASE: Final = "https://api.bigcommerce.com"
INCLUDE: Final = "variants,images"


def pause(response: httpx.Response, body: Any) -> float:
    """Wait out the window once the store says no requests are left in it."""
    left = num(response.headers.get("x-rate-limit-requests-left"))
    reset_ms = num(response.headers.get("x-rate-limit-time-reset-ms"))
    return reset_ms / 1000 if left is not None and left <= 0 and reset_ms else 0.0


class BigCommerceSource:
    def __init__(self, pixel: Pixel, pacing: Pacing | None = None) -> None:
        self.pixel = pixel
        base = (pixel.store_api_base or DEFAULT_BASE).rstrip("/")
        self.root = f"{base}/stores/{pixel.store_id}"
        self.http = StoreHttp({"x-auth-token": pixel.store_api_token}, pacing, pause=pause)
        self._store: dict[str, Any] | None = None
        self._brands: dict[int, str] | None = None

    def close(self) -> None:
        self.http.close()

    def _setup(self) -> tuple[dict[str, Any], dict[int, str]]:
        if self._store is None:
            body, _ = self.http.get(f"{self.root}/v2/store")
            self._store = obj(body)
        if self._brands is None:
            brands: dict[int, str] = {}
            page = 1
            while True:
                body, _ = self.http.get(
                    f"{self.root}/v3/catalog/brands", {"limit": PAGE, "page": page}
                )
                for b in items(obj(body).get("data")):
                    brands[int(num(b.get("id")) or 0)] = text(b.get("name"))
                if page >= _total_pages(body):
                    break
                page += 1
            self._brands = brands
        return self._store, self._brands

    def pages(self) -> Iterator[list[Product]]:
        page = 1
        while True:
            body, _ = self.http.get(
                f"{self.root}/v3/catalog/products",
                {"include": INCLUDE, "limit": PAGE, "page": page},
            )
            yield [self.convert(p) for p in items(obj(body).get("data"))]
            if page >= _total_pages(body):
                return
            page += 1

    def product(self, product_id: str) -> Product:
        url = f"{self.root}/v3/catalog/products/{product_id}"
        return or_gone(
            product_id,
            lambda: self.convert(obj(obj(self.http.get(url, {"include": INCLUDE})[0]).get("data"))),
        )

    def convert(self, p: dict[str, Any]) -> Product:
        store, brands = self._setup()
        product_id = text(p.get("id"))
        if not p.get("is_visible", True):
            return Product(product_id, hidden=True)
        images = sorted(items(p.get("images")), key=lambda i: not i.get("is_thumbnail"))
        product_images = [text(i.get("url_standard"), 2000) for i in images]
        link = text(store.get("secure_url"), 2000).rstrip("/") + text(
            obj(p.get("custom_url")).get("url"), 2000
        )
        tracking = text(p.get("inventory_tracking")) or "none"
        drafts = []
        for v in items(p.get("variants")):
            level = v.get("inventory_level") if tracking == "variant" else p.get("inventory_level")
            in_stock = not v.get("purchasing_disabled") and (
                tracking == "none" or (num(level) or 0) > 0
            )
            drafts.append(
                Draft(
                    sku_id=text(v.get("sku")) or text(v.get("id")),
                    item_group_id=product_id,
                    title=text(p.get("name")),
                    description_html=text(p.get("description"), 100_000),
                    brand=brands.get(int(num(p.get("brand_id")) or 0)) or self.pixel.name,
                    link=link,
                    images=[text(v.get("image_url"), 2000), *product_images],
                    price=v.get("price") if v.get("price") is not None else p.get("price"),
                    sale_price=v.get("sale_price") or p.get("sale_price") or None,
                    currency=text(store.get("currency")),
                    availability=_availability(text(p.get("availability")), in_stock),
                    options=[(text(o.get("option_display_name")), text(o.get("label")))
                             for o in items(v.get("option_values"))],
                    condition=text(p.get("condition")) or "new",
                    gtin=text(v.get("upc") or v.get("gtin") or p.get("upc") or p.get("gtin")),
                    mpn=text(v.get("mpn") or p.get("mpn")),
                )
            )  # fmt: skip
        return Product(product_id, tuple(make_item(d) for d in drafts))


def _availability(state: str, in_stock: bool) -> str:
    if state == "disabled":
        return "discontinued"
    if state == "preorder":
        return "preorder"
    return stock(in_stock)


def _total_pages(body: Any) -> int:
    return int(num(obj(obj(obj(body).get("meta")).get("pagination")).get("total_pages")) or 1)
