"""A local stand-in for Shopify's Admin GraphQL API (the parts connect uses) and
a storefront home page.

* ``POST /admin/api/2024-10/graphql.json`` with ``X-Shopify-Access-Token``
  (else 401 ``{"errors": "[API] Invalid API key or access token ..."}``).
  The operation is recognised by its root field; variables are checked as
  Shopify types them:
  - ``currentAppInstallation { accessScopes }`` and ``shop { primaryDomain }``;
  - ``webPixel``: the app's web pixel, or a GraphQL error when it has none;
  - ``webPixelCreate(settings)``: ``NO_EXTENSION`` without a web-pixel
    extension, ``TAKEN`` when the app's pixel exists, ``INVALID_SETTINGS``
    unless the settings are a JSON object with exactly the extension's fields
    (``pixelId``, ``serverUrl``); ``webPixelUpdate``; ``webPixelDelete``;
  - ``webhookSubscriptions``, ``webhookSubscriptionCreate`` (topic from the
    enum, ``callbackUrl`` https, ``format: JSON``), ``webhookSubscriptionDelete``.
  A field needing a scope the app lacks is an ``ACCESS_DENIED`` error.
* ``GET /storefront/``: a home page whose web-pixels configuration carries the
  web pixel's settings (as Shopify's pages do), or the custom pixel's id once
  :attr:`custom_pixel` is set (the merchant pasted it).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.standins.store_api import StoreApi, read_json, send

PATH = "/admin/api/2024-10/graphql.json"
ALL_SCOPES = frozenset({"read_orders", "read_products", "write_pixels", "read_customer_events"})
TOPICS = frozenset(
    {
        "ORDERS_CREATE",
        "ORDERS_UPDATED",
        "ORDERS_PAID",
        "ORDERS_CANCELLED",
        "REFUNDS_CREATE",
        "PRODUCTS_CREATE",
        "PRODUCTS_UPDATE",
        "PRODUCTS_DELETE",
        "APP_UNINSTALLED",
    }
)
PIXEL_SETTINGS = {"pixelId", "serverUrl"}  # what our extension's toml declares


class ShopifyAdmin(StoreApi):
    METHODS = ("GET", "POST")

    def __init__(
        self,
        token: str,
        shop: str = "acme.myshopify.com",
        scopes: frozenset[str] = ALL_SCOPES,
        has_extension: bool = True,
    ) -> None:
        super().__init__(token)
        self.shop = shop
        self.scopes = set(scopes)
        self.has_extension = has_extension
        self.web_pixel: dict[str, Any] | None = None
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.custom_pixel = ""  # the pixel id a pasted custom pixel loads
        self._ids = itertools.count(1001)

    def state(self) -> tuple[Any, dict[str, Any]]:
        pixel = dict(self.web_pixel) if self.web_pixel else None
        return pixel, {k: dict(v) for k, v in self.webhooks.items()}

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(f"{request.command} {path}")
        if path.rstrip("/") == "/storefront" and request.command == "GET":
            return send(request, 200, self._storefront(), "text/html; charset=utf-8")
        if path != PATH or request.command != "POST":
            return send(request, 404, {"errors": "Not Found"})
        if request.headers.get("X-Shopify-Access-Token") != self.token:
            return send(
                request,
                401,
                {
                    "errors": "[API] Invalid API key or access token "
                    "(unrecognized login or wrong password)"
                },
            )
        fault = self._next_fault()
        if fault is not None and fault.status is not None:
            return send(request, fault.status, {"errors": "injected fault"})
        body = read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return send(
                request, 400, {"errors": {"query": "Required parameter missing or invalid"}}
            )
        variables = body.get("variables") or {}
        try:
            data = self._execute(body["query"], variables)
        except _Denied as denied:
            return send(
                request,
                200,
                {
                    "data": None,
                    "errors": [
                        {
                            "message": f"Access denied for {denied.field} field. Required access: "
                            f"`{denied.scope}` access scope.",
                            "extensions": {"code": "ACCESS_DENIED"},
                        }
                    ],
                },
            )
        except _GraphQLError as error:
            return send(
                request, 200, {"data": {error.field: None}, "errors": [{"message": str(error)}]}
            )
        return send(request, 200, {"data": data})

    def _need(self, field: str, *scopes: str) -> None:
        for scope in scopes:
            if scope not in self.scopes:
                raise _Denied(field, scope)

    def _execute(self, query: str, v: dict[str, Any]) -> dict[str, Any]:
        root = _root_field(query)
        if root == "currentAppInstallation":
            return {
                "currentAppInstallation": {
                    "accessScopes": [{"handle": s} for s in sorted(self.scopes)]
                },
                "shop": {"primaryDomain": {"url": f"{self.base_url}/storefront/"}},
            }
        if root == "webPixel":
            self._need(root, "read_customer_events")
            if self.web_pixel is None:
                raise _GraphQLError(root, "No web pixel was found for this app.")
            return {"webPixel": dict(self.web_pixel)}
        if root in ("webPixelCreate", "webPixelUpdate"):
            self._need(root, "write_pixels", "read_customer_events")
            return {root: self._save_pixel(root, v)}
        if root == "webPixelDelete":
            self._need(root, "write_pixels")
            if self.web_pixel is None or self.web_pixel["id"] != v.get("id"):
                return {
                    root: {
                        "deletedWebPixelId": None,
                        "userErrors": [
                            {"code": "NOT_FOUND", "field": ["id"], "message": "Web pixel not found"}
                        ],
                    }
                }
            self.web_pixel = None
            return {root: {"deletedWebPixelId": v["id"], "userErrors": []}}
        if root == "webhookSubscriptions":
            edges = [
                {
                    "node": {
                        "id": h["id"],
                        "topic": h["topic"],
                        "endpoint": {
                            "__typename": "WebhookHttpEndpoint",
                            "callbackUrl": h["callbackUrl"],
                        },
                    }
                }
                for h in self.webhooks.values()
            ]
            return {"webhookSubscriptions": {"edges": edges}}
        if root == "webhookSubscriptionCreate":
            return {root: self._create_hook(v)}
        if root == "webhookSubscriptionDelete":
            hook = self.webhooks.pop(str(v.get("id")), None)
            if hook is None:
                return {
                    root: {
                        "deletedWebhookSubscriptionId": None,
                        "userErrors": [
                            {"field": ["id"], "message": "Webhook subscription does not exist"}
                        ],
                    }
                }
            return {root: {"deletedWebhookSubscriptionId": hook["id"], "userErrors": []}}
        raise _GraphQLError(root or "query", f"Field '{root}' doesn't exist on type 'QueryRoot'")

    def _save_pixel(self, root: str, v: dict[str, Any]) -> dict[str, Any]:
        def error(code: str, message: str) -> dict[str, Any]:
            return {
                "webPixel": None,
                "userErrors": [{"code": code, "field": ["webPixel"], "message": message}],
            }

        if not self.has_extension:
            return error("NO_EXTENSION", "No extension found.")
        settings = v.get("s")
        try:
            parsed = json.loads(settings) if isinstance(settings, str) else settings
        except ValueError:
            return error("INVALID_CONFIGURATION_JSON", "The provided settings is not a valid JSON.")
        if not isinstance(parsed, dict) or set(parsed) != PIXEL_SETTINGS:
            return error(
                "INVALID_SETTINGS",
                "The provided settings does not match the expected settings definition on the app.",
            )
        if root == "webPixelCreate":
            if self.web_pixel is not None:
                return error("TAKEN", "Web pixel is taken.")
            self.web_pixel = {"id": f"gid://shopify/WebPixel/{next(self._ids)}"}
        elif self.web_pixel is None or self.web_pixel["id"] != v.get("id"):
            return error("NOT_FOUND", "Web pixel not found")
        self.web_pixel["settings"] = json.dumps(parsed)
        return {"webPixel": {"id": self.web_pixel["id"]}, "userErrors": []}

    def _create_hook(self, v: dict[str, Any]) -> dict[str, Any]:
        topic = v.get("t")
        if topic not in TOPICS:
            raise _GraphQLError(
                "webhookSubscriptionCreate",
                "Variable $t of type WebhookSubscriptionTopic! was provided invalid value",
            )
        self._need(
            "webhookSubscriptionCreate",
            "read_products" if topic.startswith("PRODUCTS") else "read_orders",
        )
        url = str(v.get("u", ""))
        if not url.startswith("https://"):
            return {
                "webhookSubscription": None,
                "userErrors": [
                    {
                        "field": ["webhookSubscription", "callbackUrl"],
                        "message": "Address protocol http:// is not supported",
                    }
                ],
            }
        if any(h["topic"] == topic and h["callbackUrl"] == url for h in self.webhooks.values()):
            return {
                "webhookSubscription": None,
                "userErrors": [
                    {
                        "field": ["webhookSubscription", "callbackUrl"],
                        "message": "Address for this topic has already been taken",
                    }
                ],
            }
        hook = {
            "id": f"gid://shopify/WebhookSubscription/{next(self._ids)}",
            "topic": topic,
            "callbackUrl": url,
            "format": "JSON",
        }
        self.webhooks[hook["id"]] = hook
        return {"webhookSubscription": {"id": hook["id"]}, "userErrors": []}

    def _storefront(self) -> str:
        config = []
        if self.web_pixel is not None:
            config.append(
                {
                    "id": self.web_pixel["id"],
                    "type": "APP",
                    "configuration": self.web_pixel["settings"],
                }
            )
        if self.custom_pixel:
            config.append(
                {"id": "custom-1", "type": "CUSTOM", "name": f"pixel-server {self.custom_pixel}"}
            )
        return (
            '<!doctype html><html><head><title>Shop</title><script id="web-pixels-manager-setup">'
            f"webPixelsConfigList={json.dumps(config)}</script></head><body>Home</body></html>"
        )


class _Denied(Exception):
    def __init__(self, field: str, scope: str) -> None:
        super().__init__(field)
        self.field = field
        self.scope = scope


class _GraphQLError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _root_field(query: str) -> str:
    """The first field inside the operation's selection set."""
    body = query[query.index("{") + 1 :] if "{" in query else ""
    match = re.match(r"\s*([A-Za-z_]\w*)", body)
    return match.group(1) if match else ""


@contextmanager
def running(token: str, **kwargs: Any) -> Iterator[ShopifyAdmin]:
    api = ShopifyAdmin(token, **kwargs).start()
    try:
        yield api
    finally:
        api.stop()
