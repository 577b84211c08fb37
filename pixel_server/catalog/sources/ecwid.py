"""Ecwid (REST API v3): products with their combinations.

``GET {base}/api/v3/{storeId}/products?offset=N&limit=100`` pages by offset
until ``offset + count >= total``; ``GET .../products/{id}`` reads one;
``Authorization: Bearer <token>``; ``base`` defaults to ``https://app.ecwid.com``.
Products carry no currency: the pixel's ``currency`` setting, else the store
profile's ``formatsAndUnits.currency``.

* Hidden: ``enabled`` false.
* One item per combination (``combinations[]``); a product without
  combinations is one item. sku_id = the combination's ``sku``, else its
  ``id``; for a product without combinations its ``sku``, else its ``id``
  (what the storefront snippet sends: ``product.sku || product.id``).
* Price: the combination's ``price``, else the product's; ``compareToPrice``
  above it makes it a sale. Stock: ``unlimited`` is in stock, else ``inStock``
  and ``quantity``.
* Options: the combination's ``options[] {name, value}``. Link: ``url``.
  Images: the combination's ``imageUrl``, the product's ``imageUrl`` and
  ``galleryImages[].url``. Brand: the attribute named "Brand", else the pixel's
  name (the store's).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from pixel_server.catalog.model import Draft, Product, make_item
from pixel_server.catalog.sources.common import (
    items,
    num,
    obj,
    or_gone,
    stock,
    text,
)
from pixel_server.catalog.sources.http import Pacing, StoreHttp
from pixel_server.pixel import Pixel

PAGE: Final = 100
DEFAULT_BASE: Final = "https://app.ecwid.com"


class EcwidSource:
    def __init__(self, pixel: Pixel, pacing: Pacing | None = None) -> None:
        self.pixel = pixel
        base = (pixel.store_api_base or DEFAULT_BASE).rstrip("/")
        self.root = f"{base}/api/v3/{pixel.store_id}"
        self.http = StoreHttp({"authorization": f"Bearer {pixel.store_api_token}"}, pacing)
        self._currency = pixel.currency

    def close(self) -> None:
        self.http.close()

    def currency(self) -> str:
        if not self._currency:
            profile, _ = self.http.get(f"{self.root}/profile")
            self._currency = text(obj(obj(profile).get("formatsAndUnits")).get("currency"))
        return self._currency

    def pages(self) -> Iterator[list[Product]]:
        offset = 0
        while True:
            body, _ = self.http.get(f"{self.root}/products", {"offset": offset, "limit": PAGE})
            page = items(obj(body).get("items"))
            yield [self.convert(p) for p in page]
            offset += len(page)
            if not page or offset >= int(num(obj(body).get("total")) or 0):
                return

    def product(self, product_id: str) -> Product:
        url = f"{self.root}/products/{product_id}"
        return or_gone(product_id, lambda: self.convert(obj(self.http.get(url)[0])))

    def convert(self, p: dict[str, Any]) -> Product:
        product_id = text(p.get("id"))
        if not p.get("enabled", True):
            return Product(product_id, hidden=True)
        brand = next(
            (text(a.get("value")) for a in items(p.get("attributes"))
             if text(a.get("name")).lower() == "brand"), "",
        ) or self.pixel.name  # fmt: skip
        gallery = [text(g.get("url")) for g in items(p.get("galleryImages"))]
        combos = items(p.get("combinations")) or [{}]
        drafts = []
        for c in combos:
            own = bool(c)
            drafts.append(
                Draft(
                    sku_id=text(c.get("sku")) or text(c.get("id")) if own
                    else text(p.get("sku")) or product_id,
                    item_group_id=product_id,
                    title=text(p.get("name")),
                    description_html=text(p.get("description"), 100_000),
                    brand=brand,
                    link=text(p.get("url"), 2000),
                    images=[text(c.get("imageUrl")), text(p.get("imageUrl")), *gallery],
                    price=c.get("price") if c.get("price") is not None else p.get("price"),
                    compare_at=p.get("compareToPrice"),
                    currency=self.currency(),
                    availability=_availability(c if own else p),
                    options=[(text(o.get("name")), text(o.get("value")))
                             for o in items(c.get("options"))],
                    gtin=text(c.get("upc") or p.get("upc")),
                )
            )  # fmt: skip
        return Product(product_id, tuple(make_item(d) for d in drafts))


def _availability(v: dict[str, Any]) -> str:
    if v.get("unlimited"):
        return "in stock"
    quantity = num(v.get("quantity"))
    return stock(bool(v.get("inStock", True)) and (quantity is None or quantity > 0))
