"""The TikTok stand-in's Catalog API endpoints (Business API v1.3), strict:

* ``POST /open_api/v1.3/catalog/product/upload/`` with ``{bc_id, catalog_id,
  products}``: 1 to :data:`MAX_UPLOAD` products, each with the nine required
  fields (``sku_id``, ``title``, ``description``, ``availability`` and
  ``condition`` in TikTok's upper-case enums, ``price {price, currency}``,
  ``landing_page_url``, ``image_link``, ``brand``), https links, price > 0,
  known optional fields only; the same sku_id replaces the product.
* ``POST /open_api/v1.3/catalog/product/delete/`` with ``{bc_id, catalog_id,
  sku_ids}`` (1 to :data:`MAX_DELETE`).

Answers use the Events API envelope ``{code, message, request_id, data}``: 0
OK, 40002 with the offending field as ``products.3.price.price: ...``, 40001
for a catalog the token may not use, 40105 for an unknown token, 40100 when
rate limited. Controls: :meth:`add_catalog`, :meth:`reject` (a sku_id TikTok
refuses with a message), :meth:`fail_next` (``"500"``, ``"rate"``, or
``"accepted_500"``: stores the batch, then answers 500, as when TikTok's
answer is lost), and :attr:`requests` (path, item count) in arrival order.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

UPLOAD: Final = "/open_api/v1.3/catalog/product/upload/"
DELETE: Final = "/open_api/v1.3/catalog/product/delete/"
MAX_UPLOAD: Final = 20
MAX_DELETE: Final = 1000
AVAILABILITY: Final = {"IN_STOCK", "AVAILABLE_FOR_ORDER", "PREORDER", "OUT_OF_STOCK",
                       "DISCONTINUED"}  # fmt: skip
CONDITION: Final = {"NEW", "REFURBISHED", "USED"}
REQUIRED: Final = ("sku_id", "title", "description", "availability", "condition", "price",
                   "landing_page_url", "image_link", "brand")  # fmt: skip
OPTIONAL: Final = {"item_group_id", "sale_price", "additional_image_link",
                   "google_product_category", "product_type", "color", "size", "material",
                   "pattern", "gender", "gtin", "mpn", "age_group"}  # fmt: skip
_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")


class _Bad(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _https(value: Any) -> bool:
    parts = urlsplit(value) if isinstance(value, str) else None
    return parts is not None and parts.scheme == "https" and bool(parts.hostname)


def _money(value: Any, key: str, path: str) -> None:
    if not isinstance(value, dict) or set(value) != {key, "currency"}:
        raise _Bad(40002, f"{path}: must be {{{key}, currency}}")
    try:
        amount = float(value[key])
    except (TypeError, ValueError):
        raise _Bad(40002, f"{path}.{key}: not a number") from None
    if amount <= 0:
        raise _Bad(40002, f"{path}.{key}: must be greater than 0")
    if not isinstance(value["currency"], str) or not _CURRENCY.match(value["currency"]):
        raise _Bad(40002, f"{path}.currency: not an ISO 4217 code")


def check_product(p: Any, path: str) -> None:
    if not isinstance(p, dict):
        raise _Bad(40002, f"{path}: must be an object")
    for key in REQUIRED:
        if key not in p or p[key] in ("", None):
            raise _Bad(40002, f"{path}.{key}: required")
    unknown = set(p) - set(REQUIRED) - OPTIONAL
    if unknown:
        raise _Bad(40002, f"{path}.{sorted(unknown)[0]}: unknown field")
    for key in ("sku_id", "title", "description", "brand"):
        if not isinstance(p[key], str):
            raise _Bad(40002, f"{path}.{key}: Not a valid string")
    if len(p["title"]) > 150 or len(p["description"]) > 5000:
        raise _Bad(40002, f"{path}.title: too long")
    if p["availability"] not in AVAILABILITY:
        raise _Bad(40002, f"{path}.availability: invalid enum value")
    if p["condition"] not in CONDITION:
        raise _Bad(40002, f"{path}.condition: invalid enum value")
    _money(p["price"], "price", f"{path}.price")
    if "sale_price" in p:
        _money(p["sale_price"], "sale_price", f"{path}.sale_price")
    for key in ("landing_page_url", "image_link"):
        if not _https(p[key]):
            raise _Bad(40002, f"{path}.{key}: must be an https URL")
    extra = p.get("additional_image_link", [])
    if not isinstance(extra, list) or not all(_https(u) for u in extra) or len(extra) > 10:
        raise _Bad(40002, f"{path}.additional_image_link: up to 10 https URLs")


class CatalogEndpoints:
    def __init__(self, token_allowed: Callable[[str], bool]) -> None:
        self._token_allowed = token_allowed
        self._lock = threading.Lock()
        self.catalogs: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.rejected: dict[str, str] = {}
        self.faults: list[str] = []
        self.requests: list[tuple[str, int]] = []

    def add_catalog(self, bc_id: str, catalog_id: str) -> dict[str, dict[str, Any]]:
        return self.catalogs.setdefault((bc_id, catalog_id), {})

    def reject(self, sku_id: str, message: str) -> None:
        self.rejected[sku_id] = message

    def fail_next(self, *kinds: str) -> None:
        with self._lock:
            self.faults.extend(kinds)

    def handles(self, path: str) -> bool:
        return path in (UPLOAD, DELETE)

    def handle(self, path: str, token: str | None, content_type: str, raw: bytes
               ) -> tuple[int, dict[str, Any]]:  # fmt: skip
        request_id = secrets.token_hex(8)
        try:
            return 200, self._handle(path, token, content_type, raw, request_id)
        except _Bad as exc:
            return 200, {"code": exc.code, "message": exc.message, "request_id": request_id,
                         "data": {}}  # fmt: skip
        except _Status as exc:
            return exc.status, {"code": 50000, "message": "Internal error",
                                "request_id": request_id}  # fmt: skip

    def _handle(self, path: str, token: str | None, content_type: str, raw: bytes,
                request_id: str) -> dict[str, Any]:  # fmt: skip
        if not token or not self._token_allowed(token):
            raise _Bad(40105, "The access token is invalid or has been revoked.")
        if "application/json" not in content_type:
            raise _Bad(40002, "Content-Type must be application/json")
        try:
            body = json.loads(raw)
        except ValueError:
            raise _Bad(40002, "body is not valid JSON") from None
        items_key = "products" if path == UPLOAD else "sku_ids"
        limit = MAX_UPLOAD if path == UPLOAD else MAX_DELETE
        if not isinstance(body, dict) or set(body) != {"bc_id", "catalog_id", items_key}:
            raise _Bad(40002, f"body must be exactly bc_id, catalog_id, {items_key}")
        catalog = self.catalogs.get((str(body["bc_id"]), str(body["catalog_id"])))
        if catalog is None:
            raise _Bad(40001, "No permission to operate this catalog")
        items = body[items_key]
        if not isinstance(items, list) or not 1 <= len(items) <= limit:
            raise _Bad(40002, f"{items_key}: size must be between 1 and {limit}")
        with self._lock:
            self.requests.append((path, len(items)))
            fault = self.faults.pop(0) if self.faults else None
        if fault == "500":
            raise _Status(500)
        if fault == "rate":
            raise _Bad(40100, "Too many requests. Please retry later.")
        if path == UPLOAD:
            for i, p in enumerate(items):
                check_product(p, f"products.{i}")
                if p["sku_id"] in self.rejected:
                    raise _Bad(40002, f"products.{i}: {self.rejected[p['sku_id']]}")
            with self._lock:
                for p in items:
                    catalog[p["sku_id"]] = p
        else:
            if not all(isinstance(s, str) and s for s in items):
                raise _Bad(40002, "sku_ids: Not a valid string")
            with self._lock:
                for s in items:
                    catalog.pop(s, None)
        if fault == "accepted_500":
            raise _Status(500)
        return {"code": 0, "message": "OK", "request_id": request_id, "data": {}}


class _Status(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status
