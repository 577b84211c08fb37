"""Ecwid's REST API as connect sees it: the token's scopes and a storefront.

Extends :class:`EcwidApi` (orders, profile): ``GET /api/v3/{storeId}/orders``
and ``/products`` (empty search results), and ``GET /storefront/`` (no auth),
the store's home page. ``scopes`` is what the app was granted; a request
needing another is 403 with Ecwid's error shape, as Ecwid answers. The
profile's ``generalInfo.storeUrl`` is the stand-in's storefront.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.standins.ecwid_api import EcwidApi
from tests.standins.store_api import send

ALL_SCOPES = frozenset(
    {"read_store_profile", "read_orders", "read_catalog", "customize_storefront"}
)
_SCOPE_OF = {"profile": "read_store_profile", "orders": "read_orders", "products": "read_catalog"}


class EcwidAdmin(EcwidApi):
    def __init__(
        self, token: str, store_id: str = "1003", scopes: frozenset[str] = ALL_SCOPES
    ) -> None:
        super().__init__(token, store_id)
        self.scopes = set(scopes)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path.rstrip("/") == "/storefront":
            page = (
                "<!doctype html><html><head><title>Shop</title>"
                '<script src="https://app.ecwid.com/script.js?1003"></script></head>'
                '<body><div id="my-store-1003"></div></body></html>'
            )
            return send(request, 200, page, "text/html; charset=utf-8")
        parts = path.strip("/").split("/")
        resource = parts[3] if len(parts) == 4 and parts[:2] == ["api", "v3"] else ""
        if resource in _SCOPE_OF and request.headers.get("Authorization") == f"Bearer {self.token}":
            if _SCOPE_OF[resource] not in self.scopes:
                with self._lock:
                    self.requests.append(path)
                return send(
                    request,
                    403,
                    {"errorMessage": f"Token doesn't have required scope: {_SCOPE_OF[resource]}"},
                )
            if resource != "profile" and parts[2] == self.store_id:
                return send(
                    request, 200, {"total": 0, "count": 0, "offset": 0, "limit": 1, "items": []}
                )
        return super()._handle(request)

    def _profile(self) -> dict[str, Any]:
        profile = super()._profile()
        profile["generalInfo"]["storeUrl"] = f"{self.base_url}/storefront/"
        return profile
