"""Shopify: a web pixel and webhook subscriptions through the Admin GraphQL API.

``POST {store_api_base}/admin/api/2024-10/graphql.json`` with
``X-Shopify-Access-Token``. A GraphQL error with ``extensions.code:
ACCESS_DENIED`` is a missing scope.

* access: ``currentAppInstallation.accessScopes`` must hold ``read_orders``
  and ``read_products`` (order and product webhooks); ``shop.primaryDomain``
  is the storefront;
* the pixel: with ``write_pixels`` and ``read_customer_events`` granted,
  ``webPixelCreate(webPixel: {settings})`` with settings ``{"pixelId",
  "serverUrl"}`` (what our app's web-pixel extension declares). ``TAKEN`` (the
  app's one web pixel exists) → ``webPixelUpdate`` of that pixel (and
  disconnect puts the earlier settings back); ``NO_EXTENSION`` (the app ships
  no web-pixel extension), or the scopes not granted → nothing is created
  and the custom-pixel code is printed with the steps to paste it
  (``connect status`` then checks the storefront);
* webhooks: ``webhookSubscriptionCreate(topic, webhookSubscription:
  {callbackUrl, format: JSON})`` for the order topics (to
  ``/webhooks/shopify/{id}``) and product topics (to ``.../catalog``). Shopify
  signs them with the app's client secret: the pixel's webhook secret must be
  that secret. Ours are recognised by their callback URL.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from pixel_server import install
from pixel_server.connect.plan import (
    ConnectError,
    Live,
    StoreHttp,
    Target,
    Unavailable,
    Wanted,
    require,
)
from pixel_server.snippets import SnippetSettings
from pixel_server.storage.connections import Created

API_PATH: Final = "/admin/api/2024-10/graphql.json"
ORDER_TOPICS: Final = (
    "ORDERS_CREATE",
    "ORDERS_UPDATED",
    "ORDERS_PAID",
    "ORDERS_CANCELLED",
    "REFUNDS_CREATE",
)
PRODUCT_TOPICS: Final = ("PRODUCTS_CREATE", "PRODUCTS_UPDATE", "PRODUCTS_DELETE")
NEEDED_SCOPES: Final = ("read_orders", "read_products")
PIXEL_SCOPES: Final = ("write_pixels", "read_customer_events")

_ACCESS = (
    "query { currentAppInstallation { accessScopes { handle } } shop { primaryDomain { url } } }"
)
_LIVE = (
    "query { webhookSubscriptions(first: 100) { edges { node { id topic endpoint {"
    " __typename ... on WebhookHttpEndpoint { callbackUrl } } } } } }"
)
_WEB_PIXEL = "query { webPixel { id settings } }"
_PIXEL_CREATE = (
    "mutation($s: JSON!) { webPixelCreate(webPixel: {settings: $s}) {"
    " webPixel { id } userErrors { code field message } } }"
)
_PIXEL_UPDATE = (
    "mutation($id: ID!, $s: JSON!) { webPixelUpdate(id: $id, webPixel: {settings: $s})"
    " { webPixel { id } userErrors { code field message } } }"
)
_PIXEL_DELETE = (
    "mutation($id: ID!) { webPixelDelete(id: $id) { deletedWebPixelId"
    " userErrors { code field message } } }"
)
_HOOK_CREATE = (
    "mutation($t: WebhookSubscriptionTopic!, $u: URL!) { webhookSubscriptionCreate("
    "topic: $t, webhookSubscription: {callbackUrl: $u, format: JSON}) {"
    " webhookSubscription { id } userErrors { field message } } }"
)
_HOOK_DELETE = (
    "mutation($id: ID!) { webhookSubscriptionDelete(id: $id) {"
    " deletedWebhookSubscriptionId userErrors { field message } } }"
)


class Shopify:
    platform = "shopify"

    def __init__(self, target: Target) -> None:
        pixel = target.pixel
        require(pixel, "store_id", "store_api_base", "store_api_token", "webhook_secret")
        self.target = target
        self._http = StoreHttp(
            "Shopify", pixel.store_api_base, {"x-shopify-access-token": pixel.store_api_token}
        )
        self._scopes: set[str] | None = None
        self._shop_url = ""
        self._paste = False  # no web pixel possible: print the custom-pixel steps

    def close(self) -> None:
        self._http.close()

    def _gql(
        self, query: str, variables: dict[str, Any] | None = None, scope: str = ""
    ) -> dict[str, Any]:
        answer = self._http.call(
            "POST", API_PATH, json={"query": query, "variables": variables or {}}
        )
        errors = (answer or {}).get("errors") or []
        for error in errors:
            if (error.get("extensions") or {}).get("code") == "ACCESS_DENIED":
                raise ConnectError(
                    "missing_scope",
                    f"Shopify API: access denied: the app lacks the {scope or 'needed'!r} scope "
                    f"({error.get('message', '')})",
                    scope=scope,
                )
        if errors and not (answer or {}).get("data"):
            raise ConnectError("rejected", f"Shopify API: {errors[0].get('message', errors[0])}")
        return (answer or {}).get("data") or {}

    def check_access(self) -> None:
        data = self._gql(_ACCESS)
        handles = ((data.get("currentAppInstallation") or {}).get("accessScopes")) or []
        self._scopes = {str(h.get("handle")) for h in handles}
        for scope in NEEDED_SCOPES:
            if scope not in self._scopes:
                raise ConnectError(
                    "missing_scope",
                    f"the Shopify app's token lacks the {scope!r} access scope: add it to the "
                    "app's scopes and reinstall the app",
                    scope=scope,
                )
        self._shop_url = str(((data.get("shop") or {}).get("primaryDomain") or {}).get("url") or "")
        self._paste = not all(s in self._scopes for s in PIXEL_SCOPES)

    def storefront_url(self) -> str:
        if not self._shop_url:
            self.check_access()
        return self._shop_url

    def _settings(self) -> str:
        return orjson.dumps(
            {"pixelId": self.target.pixel.id, "serverUrl": self.target.base_url}
        ).decode()

    def wanted(self) -> list[Wanted]:
        t = self.target
        pixel = [] if self._paste else [Wanted("web_pixel", "storefront", t.pixel.id)]
        return [
            *pixel,
            *(Wanted("webhook", topic, t.webhook_url()) for topic in ORDER_TOPICS),
            *(Wanted("webhook", topic, t.webhook_url(catalog=True)) for topic in PRODUCT_TOPICS),
        ]

    def _web_pixel(self) -> dict[str, Any] | None:
        try:
            return self._gql(_WEB_PIXEL, scope="read_pixels").get("webPixel")
        except ConnectError as exc:
            if exc.code == "missing_scope":
                raise
            return None  # "no web pixel for this app" is an error on this query

    def live(self) -> list[Live]:
        found: list[Live] = []
        if not self._paste:
            pixel = self._web_pixel()
            if pixel and _settings_pixel(pixel.get("settings")) == self.target.pixel.id:
                found.append(Live("web_pixel", "storefront", str(pixel["id"])))
        ours = (self.target.webhook_url(), self.target.webhook_url(catalog=True))
        edges = (self._gql(_LIVE).get("webhookSubscriptions") or {}).get("edges") or []
        for edge in edges:
            node = edge.get("node") or {}
            url = (node.get("endpoint") or {}).get("callbackUrl")
            if url in ours:
                found.append(
                    Live(
                        "webhook",
                        str(node.get("topic")),
                        str(node.get("id")),
                        detail={"destination": url},
                    )
                )
        return found

    def create(self, want: Wanted) -> Created:
        if want.kind == "web_pixel":
            return self._create_pixel(want)
        scope = "read_products" if want.key in PRODUCT_TOPICS else "read_orders"
        data = self._gql(_HOOK_CREATE, {"t": want.key, "u": want.destination}, scope)
        result = data.get("webhookSubscriptionCreate") or {}
        _user_errors(result, f"webhook {want.key}")
        hook = result.get("webhookSubscription") or {}
        return Created("webhook", want.key, _id(hook.get("id")), {"destination": want.destination})

    def _create_pixel(self, want: Wanted) -> Created:
        settings = self._settings()
        result = (
            self._gql(_PIXEL_CREATE, {"s": settings}, "write_pixels").get("webPixelCreate") or {}
        )
        codes = {e.get("code") for e in result.get("userErrors") or []}
        if "NO_EXTENSION" in codes:
            self._paste = True
            raise Unavailable
        detail: dict[str, Any] = {"settings": settings}
        if "TAKEN" in codes:  # the app's one web pixel exists, set for another pixel
            existing = self._web_pixel() or {}
            detail["previous_settings"] = existing.get("settings")  # put back on disconnect
            result = self._update_pixel(_id(existing.get("id")), settings)
        _user_errors(result, "web pixel")
        made = result.get("webPixel") or {}
        return Created("web_pixel", want.key, _id(made.get("id")), detail)

    def _update_pixel(self, pixel_id: str, settings: Any) -> dict[str, Any]:
        variables = {"id": pixel_id, "s": settings}
        return self._gql(_PIXEL_UPDATE, variables, "write_pixels").get("webPixelUpdate") or {}

    def delete(self, created: Created) -> None:
        previous = created.detail.get("previous_settings")
        if created.kind == "web_pixel" and previous:  # it was there before us: restore it
            errors = self._update_pixel(created.remote_id, previous).get("userErrors") or []
        elif created.kind == "web_pixel":
            result = self._gql(_PIXEL_DELETE, {"id": created.remote_id}, "write_pixels")
            errors = (result.get("webPixelDelete") or {}).get("userErrors") or []
        else:
            result = self._gql(_HOOK_DELETE, {"id": created.remote_id})
            errors = (result.get("webhookSubscriptionDelete") or {}).get("userErrors") or []
        gone = all(
            e.get("code") == "NOT_FOUND"
            or "not exist" in str(e.get("message"))
            or "not found" in str(e.get("message")).lower()
            for e in errors
        )
        if errors and not gone:
            raise ConnectError(
                "rejected", f"Shopify refused the removal: {errors[0].get('message')}"
            )

    def manual_steps(self) -> list[str]:
        if not self._paste:
            return []
        code = install.paste_instructions(
            "shopify",
            self.target.script_url,
            SnippetSettings(self.target.pixel.id, self.target.base_url, "shopify"),
        )
        return [
            "This Shopify app has no web-pixel extension (or lacks the write_pixels and "
            "read_customer_events scopes), so add the pixel as a custom pixel:",
            "Shopify admin > Settings > Customer events > Add custom pixel, name it "
            f"'pixel-server {self.target.pixel.id}', paste the code below, set Customer privacy "
            "> Permission to 'Marketing', Save, then Connect.",
            code,
            f"Then run `pixel-server connect status --pixel {self.target.pixel.id}` to check it.",
        ]


def _settings_pixel(settings: Any) -> str:
    if isinstance(settings, str):
        try:
            settings = orjson.loads(settings)
        except orjson.JSONDecodeError:
            return ""
    return str(settings.get("pixelId", "")) if isinstance(settings, dict) else ""


def _user_errors(result: dict[str, Any], what: str) -> None:
    errors = result.get("userErrors") or []
    if errors:
        raise ConnectError("rejected", f"Shopify refused the {what}: {errors[0].get('message')}")


def _id(value: Any) -> str:
    if not value:
        raise ConnectError("rejected", "Shopify answered a create without an id")
    return str(value)
