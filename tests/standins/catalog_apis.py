"""Local stand-ins for the four store admin APIs' catalog endpoints.

Each is a real HTTP server on 127.0.0.1 (the shared :class:`StoreApi` base:
one thread per request, fault injection, requests seen) serving a catalog of
:class:`~tests.standins.catalog_seed.SeedProduct` in its platform's JSON, and
checking authentication the way the platform does:

* :class:`EcwidCatalogApi` (extends the Ecwid orders stand-in):
  ``GET /api/v3/{storeId}/products?offset&limit`` (limit at most 100, else
  400), ``GET .../products/{id}``; ``Authorization: Bearer``.
* :class:`BigCommerceCatalogApi` (extends the BigCommerce orders stand-in):
  ``GET /stores/{hash}/v2/store``, ``/v3/catalog/brands``,
  ``/v3/catalog/products?include=variants,images&limit&page`` (limit at most
  250, else 422; sub-resources only when included), ``/v3/catalog/products/{id}``;
  ``X-Auth-Token``; every answer carries ``X-Rate-Limit-*`` headers and a
  request over :attr:`quota` within :attr:`window_ms` is 429.
* :class:`ShopifyCatalogApi`: ``POST /admin/api/2024-10/graphql.json`` with
  ``X-Shopify-Access-Token`` (else 401) and a JSON body; ``products(first,
  after)`` (first at most 250) with base64 cursors and ``product(id:)``; every
  answer reports its query cost; :meth:`ShopifyCatalogApi.throttle` makes the
  next answers ``THROTTLED`` errors.
* :class:`WooCatalogApi`: ``GET /wp-json/wc/v3/products?per_page&page``
  (per_page at most 100, else 400; ``X-WP-Total``, ``X-WP-TotalPages``),
  ``.../products/{id}``, ``.../products/{id}/variations``,
  ``.../settings/general/woocommerce_currency``; HTTP Basic with the
  ``consumer_key:consumer_secret`` pair, else 401.

Common controls: :attr:`page_cap` (serve at most this many per page, the way a
store may answer fewer than asked), :meth:`inject` / :meth:`fail_always` from
the base (a 429 carries ``Retry-After: retry_after``), ``products`` to change
the catalog between pulls, and :meth:`catalog_pages` (how many list pages were
served).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.standins.bigcommerce_api import BigCommerceApi
from tests.standins.catalog_seed import SHOP, SeedProduct, SeedVariant
from tests.standins.ecwid_api import EcwidApi
from tests.standins.store_api import StoreApi


def _send(
    request: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(body).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json; charset=utf-8")
    request.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        request.send_header(k, v)
    request.end_headers()
    request.wfile.write(data)


def _money(value: Any) -> float | None:
    return None if value is None else float(value)


class CatalogMixin:
    """The catalog, paging and 429 parts the four stand-ins share."""

    page_cap: int | None = None
    retry_after: str = "0"
    _fail_after: int | None = None  # catalog requests left before failing for good

    def _init_catalog(self, products: list[SeedProduct]) -> None:
        self.products: dict[int, SeedProduct] = {p.id: p for p in products}
        self.list_paths: list[str] = []

    def catalog_pages(self) -> int:
        return len(self.list_paths)

    def _page(self, offset: int, limit: int) -> list[SeedProduct]:
        ordered = [self.products[k] for k in sorted(self.products)]
        return ordered[offset : offset + limit]

    def _cap(self, limit: int) -> int:
        return min(limit, self.page_cap) if self.page_cap else limit

    def fail_after(self, requests: int, status: int = 503) -> None:
        """Serve ``requests`` more catalog requests, then fail until healed."""
        self._fail_after, self._fail_status = requests, status

    def heal(self) -> None:
        self._fail_after = None
        super().heal()  # type: ignore[misc]

    def _fault_answer(self, request: BaseHTTPRequestHandler, shape: Any) -> bool:
        """Answer an injected fault, if one is due; True when it answered."""
        if self._fail_after is not None:
            if self._fail_after <= 0:
                self._refuse(request, self._fail_status, shape)
                return True
            self._fail_after -= 1
        fault = self._next_fault()  # type: ignore[attr-defined]
        if fault is None:
            return False
        time.sleep(fault.delay)
        if fault.status is None:
            return False
        self._refuse(request, fault.status, shape)
        return True

    def _refuse(self, request: BaseHTTPRequestHandler, status: int, shape: Any) -> None:
        headers = {"Retry-After": self.retry_after} if status == 429 else {}
        _send(request, status, shape, headers)


# -------------------------------------------------------------------- Ecwid


def ecwid_product(p: SeedProduct) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": p.id, "sku": p.sku, "name": p.name, "description": p.description,
        "price": float(p.price), "inStock": p.stock > 0, "quantity": p.stock,
        "unlimited": False, "enabled": p.visible, "url": f"{SHOP}/{p.slug}-p{p.id}",
        "imageUrl": p.images[0] if p.images else "",
        "galleryImages": [{"url": u} for u in p.images[1:]],
        "attributes": [{"name": "Brand", "value": p.brand}],
        "combinations": [],
    }  # fmt: skip
    if p.compare_at is not None:
        out["compareToPrice"] = float(p.compare_at)
    for v in p.variants:
        combo: dict[str, Any] = {
            "id": v.id, "sku": v.sku, "inStock": v.stock > 0, "quantity": v.stock,
            "unlimited": False, "imageUrl": v.image,
            "options": [{"name": n, "value": val} for n, val in v.options],
        }  # fmt: skip
        if v.price is not None:
            combo["price"] = float(v.price)
        out["combinations"].append(combo)
    return out


class EcwidCatalogApi(CatalogMixin, EcwidApi):
    def __init__(self, token: str, products: list[SeedProduct], **kwargs: Any) -> None:
        super().__init__(token, **kwargs)
        self._init_catalog(products)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        parts = url.path.strip("/").split("/")
        if parts[:2] != ["api", "v3"] or len(parts) < 4 or parts[3] != "products":
            return super()._handle(request)
        with self._lock:
            self.requests.append(url.path)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _send(request, 403, {"errorMessage": "Invalid access token"})
        if self._fault_answer(request, {"errorMessage": "injected fault"}):
            return None
        if parts[2] != self.store_id:
            return _send(request, 403, {"errorMessage": "Token is not valid for this store"})
        if len(parts) == 5:
            product = self.products.get(int(parts[4])) if parts[4].isdigit() else None
            if product is None:
                return _send(request, 404, {"errorMessage": f"Product #{parts[4]} not found"})
            return _send(request, 200, ecwid_product(product))
        query = parse_qs(url.query)
        offset, limit = int(query.get("offset", ["0"])[0]), int(query.get("limit", ["100"])[0])
        if limit > 100:
            return _send(request, 400, {"errorMessage": "limit must be at most 100"})
        self.list_paths.append(request.path)
        page = self._page(offset, self._cap(limit))
        body = {"total": len(self.products), "count": len(page), "offset": offset,
                "limit": limit, "items": [ecwid_product(p) for p in page]}  # fmt: skip
        return _send(request, 200, body)


# -------------------------------------------------------------- BigCommerce


def bigcommerce_product(p: SeedProduct, include: set[str]) -> dict[str, Any]:
    variants = p.variants or [SeedVariant(p.id * 10, p.sku, [], None, p.stock)]
    out: dict[str, Any] = {
        "id": p.id, "name": p.name, "sku": p.sku, "description": p.description,
        "brand_id": 1, "price": float(p.price),
        "sale_price": float(p.price) if p.compare_at else 0,
        "retail_price": float(p.compare_at) if p.compare_at else 0,
        "is_visible": p.visible, "availability": "available",
        "inventory_tracking": "variant" if p.variants else "product",
        "inventory_level": sum(v.stock for v in variants),
        "custom_url": {"url": f"/{p.slug}/", "is_customized": False},
        "condition": "New", "type": "physical",
    }  # fmt: skip
    if p.compare_at:  # BigCommerce's sale: price stays the regular price
        out["price"], out["sale_price"] = float(p.compare_at), float(p.price)
    if "images" in include:
        out["images"] = [
            {"url_standard": u, "is_thumbnail": i == 0} for i, u in enumerate(p.images)
        ]
    if "variants" in include:
        out["variants"] = [
            {"id": v.id, "product_id": p.id, "sku": v.sku, "price": _money(v.price),
             "sale_price": None, "inventory_level": v.stock, "purchasing_disabled": False,
             "image_url": v.image,
             "option_values": [{"option_display_name": n, "label": val} for n, val in v.options]}
            for v in variants
        ]  # fmt: skip
    return out


class BigCommerceCatalogApi(CatalogMixin, BigCommerceApi):
    quota: int | None = None  # requests per window; None: no limit
    window_ms: int = 200

    def __init__(self, token: str, products: list[SeedProduct], **kwargs: Any) -> None:
        super().__init__(token, **kwargs)
        self._init_catalog(products)
        self._window_start = time.monotonic()
        self._window_used = 0
        self.rate_limited = 0

    def _rate(self) -> tuple[dict[str, str], bool]:
        with self._lock:
            now = time.monotonic()
            if (now - self._window_start) * 1000 >= self.window_ms:
                self._window_start, self._window_used = now, 0
            self._window_used += 1
            quota = self.quota or 10_000
            left = quota - self._window_used
            reset = max(1, int(self.window_ms - (now - self._window_start) * 1000))
        headers = {
            "X-Rate-Limit-Requests-Quota": str(quota),
            "X-Rate-Limit-Requests-Left": str(max(0, left)),
            "X-Rate-Limit-Time-Reset-Ms": str(reset),
            "X-Rate-Limit-Time-Window-Ms": str(self.window_ms),
        }
        return headers, left < 0

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        parts = url.path.strip("/").split("/")
        catalog = parts[2:5] == ["v3", "catalog", "products"] or parts[2:5] == [
            "v3", "catalog", "brands"
        ] or parts[2:] == ["v2", "store"]  # fmt: skip
        if len(parts) < 3 or parts[0] != "stores" or not catalog:
            return super()._handle(request)
        with self._lock:
            self.requests.append(url.path)
        if request.headers.get("X-Auth-Token") != self.token:
            return _send(request, 401, {"status": 401, "title": "Unauthorized"})
        headers, over = self._rate()
        if over:
            self.rate_limited += 1
            return _send(request, 429, {"status": 429, "title": "Too many requests"}, headers)
        if self._fault_answer(request, {"status": 500, "title": "injected"}):
            return None
        if parts[1] != self.store_hash:
            return _send(request, 404, {"status": 404, "title": "Store not found"})
        query = parse_qs(url.query)
        if parts[2:] == ["v2", "store"]:
            body = {"id": self.store_hash, "name": "Acme", "secure_url": SHOP,
                    "domain": "shop.example.com", "currency": "USD"}  # fmt: skip
            return _send(request, 200, body, headers)
        limit = int(query.get("limit", ["50"])[0])
        page_no = int(query.get("page", ["1"])[0])
        if limit > 250:
            return _send(request, 422, {"status": 422, "title": "limit must be 1 to 250"})
        if parts[4] == "brands":
            pagination = {"total": 1, "total_pages": 1, "current_page": 1}
            body = {"data": [{"id": 1, "name": "Acme"}], "meta": {"pagination": pagination}}
            return _send(request, 200, body, headers)
        include = set(",".join(query.get("include", [""])).split(","))
        if len(parts) == 6:
            product = self.products.get(int(parts[5])) if parts[5].isdigit() else None
            if product is None:
                return _send(request, 404, {"status": 404, "title": "Product not found"})
            return _send(request, 200, {"data": bigcommerce_product(product, include),
                                        "meta": {}}, headers)  # fmt: skip
        size = self._cap(limit)
        self.list_paths.append(request.path)
        page = self._page((page_no - 1) * size, size)
        total = len(self.products)
        pages = max(1, -(-total // size))
        meta = {"pagination": {"total": total, "count": len(page), "per_page": size,
                               "current_page": page_no, "total_pages": pages,
                               "links": {"next": f"?page={page_no + 1}&limit={limit}"}
                               if page_no < pages else {}}}  # fmt: skip
        body = {"data": [bigcommerce_product(p, include) for p in page], "meta": meta}
        return _send(request, 200, body, headers)


# ------------------------------------------------------------------ Shopify


def shopify_product(p: SeedProduct) -> dict[str, Any]:
    variants = p.variants or [SeedVariant(p.id * 10, p.sku, [("Title", "Default Title")], None,
                                          p.stock)]  # fmt: skip
    return {
        "id": f"gid://shopify/Product/{p.id}", "title": p.name,
        "descriptionHtml": p.description, "vendor": p.brand, "productType": p.product_type,
        "status": "ACTIVE" if p.visible else "DRAFT",
        "onlineStoreUrl": f"{SHOP}/products/{p.slug}" if p.visible else None,
        "priceRangeV2": {"minVariantPrice": {"amount": str(p.price), "currencyCode": "USD"}},
        "featuredImage": {"url": p.images[0]} if p.images else None,
        "images": {"nodes": [{"url": u} for u in p.images]},
        "variants": {"nodes": [
            {"id": f"gid://shopify/ProductVariant/{v.id}", "sku": v.sku,
             # Shopify has no inherited prices: every variant carries one.
             "price": str(v.price if v.price is not None else p.price),
             "compareAtPrice": str(p.compare_at) if p.compare_at else None,
             "availableForSale": v.stock > 0, "barcode": None,
             "selectedOptions": [{"name": n, "value": val} for n, val in v.options],
             "image": {"url": v.image} if v.image else None}
            for v in variants
        ]},
    }  # fmt: skip


class ShopifyCatalogApi(CatalogMixin, StoreApi):
    METHODS = ("GET", "POST")  # GraphQL reads with POST
    PATH = "/admin/api/2024-10/graphql.json"
    QUERY_COST = 100
    MAXIMUM, RESTORE_RATE = 2000.0, 1000.0

    def __init__(self, token: str, products: list[SeedProduct]) -> None:
        super().__init__(token)
        self._init_catalog(products)
        self._throttled = 0
        self.throttle_lock = threading.Lock()

    def throttle(self, count: int) -> None:
        with self.throttle_lock:
            self._throttled += count

    def _cost(self, available: float) -> dict[str, Any]:
        status = {"maximumAvailable": self.MAXIMUM, "restoreRate": self.RESTORE_RATE,
                  "currentlyAvailable": available}  # fmt: skip
        return {"cost": {"requestedQueryCost": self.QUERY_COST, "actualQueryCost": None,
                         "throttleStatus": status}}  # fmt: skip

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(request.path)
        if request.command != "POST" or request.path != self.PATH:
            return _send(request, 404, {"errors": "Not Found"})
        if request.headers.get("X-Shopify-Access-Token") != self.token:
            message = "[API] Invalid API key or access token (unrecognized login or wrong password)"
            return _send(request, 401, {"errors": message})
        if "application/json" not in request.headers.get("Content-Type", ""):
            return _send(request, 415, {"errors": "Content-Type must be application/json"})
        length = int(request.headers.get("Content-Length", "0"))
        body = json.loads(request.rfile.read(length) or b"{}")
        if self._fault_answer(request, {"errors": "Internal error"}):
            return None
        with self.throttle_lock:
            throttled = self._throttled > 0
            self._throttled -= throttled
        if throttled:
            error = {"message": "Throttled", "extensions": {"code": "THROTTLED"}}
            return _send(request, 200, {"errors": [error], "extensions": self._cost(0.0)})
        query, variables = body.get("query", ""), body.get("variables") or {}
        shop = {"currencyCode": "USD"}
        if "products(" in query:
            first = variables.get("first")
            if not isinstance(first, int) or not 1 <= first <= 250:
                error = {"message": "first must be between 1 and 250"}
                return _send(request, 200, {"errors": [error]})
            after = variables.get("after")
            start = int(base64.b64decode(after)) if after else 0
            size = self._cap(first)
            self.list_paths.append(f"after={after}")
            page = self._page(start, size)
            end = start + len(page)
            data = {"shop": shop, "products": {
                "pageInfo": {"hasNextPage": end < len(self.products),
                             "endCursor": base64.b64encode(str(end).encode()).decode()},
                "nodes": [shopify_product(p) for p in page]}}  # fmt: skip
        elif "product(id:" in query:
            gid = str(variables.get("id", ""))
            pid = gid.rsplit("/", 1)[-1]
            product = self.products.get(int(pid)) if pid.isdigit() else None
            data = {"shop": shop, "product": shopify_product(product) if product else None}
        else:
            return _send(request, 200, {"errors": [{"message": "unsupported query"}]})
        return _send(request, 200, {"data": data, "extensions": self._cost(1900.0)})


# -------------------------------------------------------------- WooCommerce


def woo_product(p: SeedProduct) -> dict[str, Any]:
    regular = p.compare_at or p.price
    return {
        "id": p.id, "name": p.name, "slug": p.slug, "permalink": f"{SHOP}/product/{p.slug}/",
        "type": "variable" if p.variants else "simple",
        "status": "publish" if p.visible else "draft", "catalog_visibility": "visible",
        "sku": p.sku, "price": str(p.price), "regular_price": str(regular),
        "sale_price": str(p.price) if p.compare_at else "",
        "description": p.description, "short_description": "",
        "stock_status": "instock" if p.stock > 0 else "outofstock",
        "images": [{"src": u} for u in p.images],
        "categories": [{"id": 1, "name": p.product_type}],
        "brands": [{"id": 1, "name": p.brand}],
        "attributes": [], "variations": [v.id for v in p.variants],
    }  # fmt: skip


def woo_variation(p: SeedProduct, v: SeedVariant) -> dict[str, Any]:
    price = "" if v.price is None else str(v.price)
    query = "&".join(f"attribute_pa_{n.lower()}={val.lower()}" for n, val in v.options)
    return {
        "id": v.id, "sku": v.sku, "price": price, "regular_price": price, "sale_price": "",
        "status": "publish", "stock_status": "instock" if v.stock > 0 else "outofstock",
        "permalink": f"{SHOP}/product/{p.slug}/?{query}", "image": {"src": v.image},
        "attributes": [{"name": n, "option": val} for n, val in v.options],
    }  # fmt: skip


class WooCatalogApi(CatalogMixin, StoreApi):
    def __init__(self, key: str, secret: str, products: list[SeedProduct]) -> None:
        super().__init__(f"{key}:{secret}")
        self._init_catalog(products)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        with self._lock:
            self.requests.append(url.path)
        expected = "Basic " + base64.b64encode(self.token.encode()).decode()
        if request.headers.get("Authorization") != expected:
            return _send(request, 401, {"code": "woocommerce_rest_cannot_view",
                                        "message": "Sorry, you cannot list resources.",
                                        "data": {"status": 401}})  # fmt: skip
        if self._fault_answer(request, {"code": "internal_server_error", "message": "injected"}):
            return None
        parts = url.path.strip("/").split("/")
        if parts[:3] != ["wp-json", "wc", "v3"]:
            return _send(request, 404, {"code": "rest_no_route", "message": "No route"})
        rest = parts[3:]
        if rest == ["settings", "general", "woocommerce_currency"]:
            return _send(request, 200, {"id": "woocommerce_currency", "value": "USD"})
        if not rest or rest[0] != "products":
            return _send(request, 404, {"code": "rest_no_route", "message": "No route"})
        query = parse_qs(url.query)
        per_page, page_no = int(query.get("per_page", ["10"])[0]), int(query.get("page", ["1"])[0])
        if per_page > 100:
            return _send(request, 400, {"code": "rest_invalid_param",
                                        "message": "Invalid parameter(s): per_page"})  # fmt: skip
        product = None
        if len(rest) >= 2:
            product = self.products.get(int(rest[1])) if rest[1].isdigit() else None
            if product is None:
                error = {"code": "woocommerce_rest_product_invalid_id", "message": "Invalid ID.",
                         "data": {"status": 404}}  # fmt: skip
                return _send(request, 404, error)
        if len(rest) == 2:
            return _send(request, 200, woo_product(product))  # type: ignore[arg-type]
        size = self._cap(per_page)
        if len(rest) == 3 and rest[2] == "variations":
            assert product is not None
            rows = [woo_variation(product, v) for v in product.variants]
        else:
            self.list_paths.append(request.path)
            rows = [woo_product(p) for p in self._page(0, len(self.products))]
        page = rows[(page_no - 1) * size : page_no * size]
        headers = {"X-WP-Total": str(len(rows)),
                   "X-WP-TotalPages": str(max(1, -(-len(rows) // size)))}  # fmt: skip
        return _send(request, 200, page, headers)


@contextmanager
def running(api: StoreApi) -> Iterator[Any]:
    api.start()
    try:
        yield api
    finally:
        api.stop()
