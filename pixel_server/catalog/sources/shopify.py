"""Shopify (Admin GraphQL API): products and their variants, by cursor pages.

``POST {base}/admin/api/2024-10/graphql.json`` with ``X-Shopify-Access-Token``;
``base`` defaults to ``https://{shop domain}``. ``products(first: 50, after:
$cursor)`` pages by ``pageInfo.endCursor`` while ``hasNextPage``; ``product(id:)``
reads one (``null``: gone). Variants: the first 100 of each product.

Throttling is by query cost: an answer whose ``errors`` say ``THROTTLED`` is
retried after the time the bucket needs to refill
(``(requestedQueryCost - currentlyAvailable) / restoreRate`` from
``extensions.cost``), and when the bucket left after a page is below the
page's cost the pull waits for it to refill before the next.

* Hidden: ``status`` other than ``ACTIVE``, or no ``onlineStoreUrl`` (not
  published to the online store).
* sku_id = the variant's ``sku``, else its numeric id (the snippet's rule for
  Web Pixels' ``productVariant``). Shopify's placeholder option
  ("Title: Default Title") of a product without options is left out.
* Price: the variant's ``price`` (missing: the product's lowest price);
  ``compareAtPrice`` above it makes it a sale. Availability:
  ``availableForSale``. Link: ``onlineStoreUrl?variant=<id>`` (Shopify opens
  the product page on that variant). Images: the variant's, the featured one,
  then the product's. Brand: ``vendor``. Product type: ``productType``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import httpx

from pixel_server.catalog.model import Draft, Product, make_item
from pixel_server.catalog.sources.common import items, num, obj, stock, text
from pixel_server.catalog.sources.http import Pacing, SourceError, StoreHttp
from pixel_server.pixel import Pixel

API_VERSION: Final = "2024-10"
PAGE: Final = 50
_PRODUCT_FIELDS: Final = """
  id title descriptionHtml vendor productType status onlineStoreUrl
  priceRangeV2 { minVariantPrice { amount } }
  featuredImage { url }
  images(first: 10) { nodes { url } }
  variants(first: 100) {
    nodes { id sku price compareAtPrice availableForSale barcode
            selectedOptions { name value } image { url } }
  }
"""
PRODUCTS_QUERY: Final = (
    "query Products($first: Int!, $after: String) { shop { currencyCode } "
    "products(first: $first, after: $after) { pageInfo { hasNextPage endCursor } "
    f"nodes {{ {_PRODUCT_FIELDS} }} }} }}"
)
PRODUCT_QUERY: Final = (
    "query Product($id: ID!) { shop { currencyCode } "
    f"product(id: $id) {{ {_PRODUCT_FIELDS} }} }}"
)


def _cost(body: Any) -> dict[str, Any]:
    return obj(obj(obj(body).get("extensions")).get("cost"))


def throttled(response: httpx.Response, body: Any) -> float | None:
    errors = items(obj(body).get("errors"))
    if not any(text(obj(e.get("extensions")).get("code")) == "THROTTLED" for e in errors):
        return None
    cost = _cost(body)
    status = obj(cost.get("throttleStatus"))
    needed = (num(cost.get("requestedQueryCost")) or 0) - (
        num(status.get("currentlyAvailable")) or 0
    )
    return max(0.5, needed / (num(status.get("restoreRate")) or 50.0))


def pause(response: httpx.Response, body: Any) -> float:
    cost = _cost(body)
    status = obj(cost.get("throttleStatus"))
    available = num(status.get("currentlyAvailable"))
    wanted = num(cost.get("requestedQueryCost"))
    if available is None or wanted is None or available >= wanted:
        return 0.0
    return (wanted - available) / (num(status.get("restoreRate")) or 50.0)


def numeric_id(gid: Any) -> str:
    return text(gid).rsplit("/", 1)[-1]


class ShopifySource:
    def __init__(self, pixel: Pixel, pacing: Pacing | None = None) -> None:
        self.pixel = pixel
        base = (pixel.store_api_base or f"https://{pixel.store_id}").rstrip("/")
        self.url = f"{base}/admin/api/{API_VERSION}/graphql.json"
        self.http = StoreHttp(
            {"x-shopify-access-token": pixel.store_api_token},
            pacing,
            throttled=throttled,
            pause=pause,
        )

    def close(self) -> None:
        self.http.close()

    def _query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body, _ = self.http.post(self.url, {"query": query, "variables": variables})
        errors = items(obj(body).get("errors"))
        if errors:
            raise SourceError("bad_response", f"Shopify: {text(errors[0].get('message'))}")
        return obj(obj(body).get("data"))

    def pages(self) -> Iterator[list[Product]]:
        after: str | None = None
        while True:
            data = self._query(PRODUCTS_QUERY, {"first": PAGE, "after": after})
            currency = text(obj(data.get("shop")).get("currencyCode"))
            products = obj(data.get("products"))
            yield [self.convert(p, currency) for p in items(products.get("nodes"))]
            info = obj(products.get("pageInfo"))
            if not info.get("hasNextPage"):
                return
            after = text(info.get("endCursor"), 1000)

    def product(self, product_id: str) -> Product:
        gid = (
            product_id if product_id.startswith("gid://") else f"gid://shopify/Product/{product_id}"
        )
        data = self._query(PRODUCT_QUERY, {"id": gid})
        product = data.get("product")
        if not isinstance(product, dict):
            return Product(numeric_id(gid), hidden=True)
        return self.convert(product, text(obj(data.get("shop")).get("currencyCode")))

    def convert(self, p: dict[str, Any], currency: str) -> Product:
        product_id = numeric_id(p.get("id"))
        url = text(p.get("onlineStoreUrl"), 2000)
        if text(p.get("status")) != "ACTIVE" or not url:
            return Product(product_id, hidden=True)
        images = [text(obj(p.get("featuredImage")).get("url"), 2000)] + [
            text(i.get("url"), 2000) for i in items(obj(p.get("images")).get("nodes"))
        ]
        fallback_price = obj(obj(p.get("priceRangeV2")).get("minVariantPrice")).get("amount")
        drafts = []
        for v in items(obj(p.get("variants")).get("nodes")):
            variant_id = numeric_id(v.get("id"))
            options = [
                (text(o.get("name")), text(o.get("value")))
                for o in items(v.get("selectedOptions"))
                if (o.get("name"), o.get("value")) != ("Title", "Default Title")
            ]
            drafts.append(
                Draft(
                    sku_id=text(v.get("sku")) or variant_id,
                    item_group_id=product_id,
                    title=text(p.get("title")),
                    description_html=text(p.get("descriptionHtml"), 100_000),
                    brand=text(p.get("vendor")) or self.pixel.name,
                    link=f"{url}?variant={variant_id}",
                    images=[text(obj(v.get("image")).get("url"), 2000), *images],
                    price=v.get("price") if v.get("price") is not None else fallback_price,
                    compare_at=v.get("compareAtPrice"),
                    currency=currency,
                    availability=stock(bool(v.get("availableForSale"))),
                    options=options,
                    product_type=text(p.get("productType")),
                    gtin=text(v.get("barcode")),
                )
            )
        return Product(product_id, tuple(make_item(d) for d in drafts))
