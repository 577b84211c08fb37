"""WooCommerce (REST API v3): products and their variations.

``GET {base}/wp-json/wc/v3/products?per_page=100&page=N`` pages until
``X-WP-TotalPages``; a variable product's variations come from
``GET .../products/{id}/variations?per_page=100&page=N``; ``GET .../products/{id}``
reads one. ``base`` is the pixel's ``store_api_base``, else its store id (the
site's URL). Authentication: HTTP Basic with the REST API key, the pixel's
store API token written ``consumer_key:consumer_secret`` (WooCommerce accepts
Basic only over https). Currency: the pixel's ``currency`` setting, else
``GET .../settings/general/woocommerce_currency``.

* Hidden: ``status`` other than ``publish`` (draft, pending, private, trash),
  or ``catalog_visibility`` ``hidden``; a variation whose ``status`` is not
  ``publish`` is left out.
* A ``variable`` product gives one item per variation; any other type one item.
  sku_id = the variation's ``sku``, else its ``id``; a simple product's
  ``sku``, else its ``id`` (the snippet's rule: sku, else variation id, else
  product id).
* Price: ``regular_price`` with ``sale_price`` as the sale (a variation
  without its own price takes the product's). Availability: ``stock_status``
  ``instock`` / ``outofstock`` / ``onbackorder`` (available for order).
* Options: the variation's ``attributes[] {name, option}``. Link: the
  variation's ``permalink``, else the product's. Images: the variation's
  ``image``, then the product's ``images``. Brand: ``brands[0]`` (WooCommerce
  9.6+), else an attribute named "Brand", else the pixel's name. Product type:
  the first category.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from pixel_server.catalog.model import Draft, Product, make_item
from pixel_server.catalog.sources.common import items, num, obj, or_gone, text
from pixel_server.catalog.sources.http import Pacing, StoreHttp
from pixel_server.pixel import Pixel

PAGE: Final = 100
STOCK: Final = {"instock": "in stock", "outofstock": "out of stock",
                "onbackorder": "available for order"}  # fmt: skip


class WooCommerceSource:
    def __init__(self, pixel: Pixel, pacing: Pacing | None = None) -> None:
        self.pixel = pixel
        base = (pixel.store_api_base or pixel.store_id).rstrip("/")
        self.root = f"{base}/wp-json/wc/v3"
        key, _, secret = pixel.store_api_token.partition(":")
        self.http = StoreHttp({}, pacing, auth=(key, secret))
        self._currency = pixel.currency

    def close(self) -> None:
        self.http.close()

    def currency(self) -> str:
        if not self._currency:
            body, _ = self.http.get(f"{self.root}/settings/general/woocommerce_currency")
            self._currency = text(obj(body).get("value"))
        return self._currency

    def _paged(self, url: str) -> Iterator[list[dict[str, Any]]]:
        page = 1
        while True:
            body, response = self.http.get(url, {"per_page": PAGE, "page": page})
            yield items(body)
            if page >= int(num(response.headers.get("x-wp-totalpages")) or 1):
                return
            page += 1

    def pages(self) -> Iterator[list[Product]]:
        for page in self._paged(f"{self.root}/products"):
            yield [self.convert(p) for p in page]

    def product(self, product_id: str) -> Product:
        url = f"{self.root}/products/{product_id}"
        return or_gone(product_id, lambda: self.convert(obj(self.http.get(url)[0])))

    def convert(self, p: dict[str, Any]) -> Product:
        product_id = text(p.get("id"))
        if text(p.get("status")) != "publish" or text(p.get("catalog_visibility")) == "hidden":
            return Product(product_id, hidden=True)
        if text(p.get("type")) == "variable":
            url = f"{self.root}/products/{product_id}/variations"
            variants = [
                v for page in self._paged(url) for v in page
                if text(v.get("status") or "publish") == "publish"
            ]  # fmt: skip
        else:
            variants = [{}]
        brand = (
            next((text(b.get("name")) for b in items(p.get("brands"))), "")
            or next((text((a.get("options") or [""])[0]) for a in items(p.get("attributes"))
                     if text(a.get("name")).lower() == "brand"), "")
            or self.pixel.name
        )  # fmt: skip
        images = [text(i.get("src"), 2000) for i in items(p.get("images"))]
        category = next((text(c.get("name")) for c in items(p.get("categories"))), "")
        drafts = []
        for v in variants:
            own = bool(v)
            source = v if own and text(v.get("price")) else p
            drafts.append(
                Draft(
                    sku_id=(text(v.get("sku")) or text(v.get("id"))) if own
                    else text(p.get("sku")) or product_id,
                    item_group_id=product_id,
                    title=text(p.get("name")),
                    description_html=text(p.get("description"), 100_000)
                    or text(p.get("short_description"), 100_000),
                    brand=brand,
                    link=text(v.get("permalink"), 2000) or text(p.get("permalink"), 2000),
                    images=[text(obj(v.get("image")).get("src"), 2000), *images],
                    price=source.get("regular_price") or source.get("price"),
                    sale_price=source.get("sale_price") or None,
                    currency=self.currency(),
                    availability=STOCK.get(
                        text((v if own else p).get("stock_status")), "out of stock"
                    ),
                    options=[(text(a.get("name")), text(a.get("option")))
                             for a in items(v.get("attributes"))],
                    product_type=category,
                    gtin=text((v if own else p).get("global_unique_id")),
                )
            )  # fmt: skip
        return Product(product_id, tuple(make_item(d) for d in drafts))
