"""BigCommerce: the Scripts API for the tag, ``/v3/hooks`` for the webhooks.

Under ``{store_api_base}/stores/{store hash}`` with ``X-Auth-Token``:

* access: ``GET /v2/store`` (token works; the storefront's ``secure_url``),
  ``GET /v3/content/scripts`` and ``GET /v3/hooks``; a 403 names the API
  account scope to add. BigCommerce has no call listing a token's scopes, so
  each scope is probed by a read of what it guards;
* the script: ``POST /v3/content/scripts`` with ``kind: src``, ``src`` = our
  ``/p/{id}.js``, ``visibility: all_pages`` (storefront, checkout and order
  confirmation: the Stencil layout is not rendered on the last two),
  ``location: head``, ``consent_category: targeting`` (an advertising pixel:
  BigCommerce holds it back until the shopper accepts targeting cookies when
  its consent banner is on), ``auto_uninstall: true``; ours is recognised by
  its ``src``;
* webhooks: ``POST /v3/hooks`` per scope, with ``headers`` carrying the
  pixel's webhook secret in ``X-Pixel-Webhook-Secret`` (BigCommerce echoes it on
  every callback; it does not sign). Order scopes point at
  ``/webhooks/bigcommerce/{id}``, product scopes at ``.../catalog``; ours are
  recognised by their ``destination``. A hook BigCommerce deactivated after
  failing deliveries reads ``is_active: false``.
"""

from __future__ import annotations

from typing import Any, Final

from pixel_server.connect.plan import ConnectError, Live, StoreHttp, Target, Wanted, require
from pixel_server.ingest.webhooks.bigcommerce import SECRET_HEADER
from pixel_server.storage.connections import Created

ORDER_SCOPES: Final = (
    "store/order/created",
    "store/order/updated",
    "store/order/statusUpdated",
    "store/order/refund/created",
)
PRODUCT_SCOPES: Final = ("store/product/created", "store/product/updated", "store/product/deleted")
SCRIPT_SCOPE: Final = "Content: modify and Checkout Content: modify"
ORDERS_SCOPE: Final = "Orders: read-only"
PRODUCTS_SCOPE: Final = "Products: read-only"


class BigCommerce:
    platform = "bigcommerce"

    def __init__(self, target: Target) -> None:
        pixel = target.pixel
        require(pixel, "store_id", "store_api_base", "store_api_token", "webhook_secret")
        self.target = target
        self._secret = pixel.webhook_secret
        self._http = StoreHttp(
            "BigCommerce",
            f"{pixel.store_api_base}/stores/{pixel.store_id}",
            {"x-auth-token": pixel.store_api_token},
        )

    def close(self) -> None:
        self._http.close()

    def check_access(self) -> None:
        self._http.call("GET", "/v2/store")
        self._http.call("GET", "/v3/content/scripts?limit=1", scope=SCRIPT_SCOPE)
        self._http.call("GET", "/v2/orders?limit=1", scope=ORDERS_SCOPE)
        self._http.call("GET", "/v3/catalog/products?limit=1", scope=PRODUCTS_SCOPE)

    def storefront_url(self) -> str:
        store = self._http.call("GET", "/v2/store")
        return str((store or {}).get("secure_url") or "")

    def wanted(self) -> list[Wanted]:
        t = self.target
        return [
            Wanted("script", "storefront", t.script_url),
            *(Wanted("webhook", s, t.webhook_url()) for s in ORDER_SCOPES),
            *(Wanted("webhook", s, t.webhook_url(catalog=True)) for s in PRODUCT_SCOPES),
        ]

    def live(self) -> list[Live]:
        found: list[Live] = []
        scripts = self._http.call("GET", "/v3/content/scripts?limit=250", scope=SCRIPT_SCOPE)
        for s in _data(scripts):
            if s.get("src") == self.target.script_url:
                found.append(Live("script", "storefront", str(s.get("uuid"))))
        ours = (self.target.webhook_url(), self.target.webhook_url(catalog=True))
        for h in _data(self._http.call("GET", "/v3/hooks?limit=250", scope=ORDERS_SCOPE)):
            if h.get("destination") in ours:
                found.append(
                    Live(
                        "webhook",
                        str(h.get("scope")),
                        str(h.get("id")),
                        bool(h.get("is_active")),
                        {"destination": h["destination"]},
                    )
                )
        return found

    def create(self, want: Wanted) -> Created:
        if want.kind == "script":
            body: dict[str, Any] = {
                "name": f"pixel-server {self.target.pixel.id}",
                "description": "First-party pixel: shopping events for TikTok",
                "kind": "src",
                "src": want.destination,
                "load_method": "async",
                "location": "head",
                "visibility": "all_pages",
                "consent_category": "targeting",
                "auto_uninstall": True,
            }
            made = self._http.call("POST", "/v3/content/scripts", json=body, scope=SCRIPT_SCOPE)
            uuid = (made or {}).get("data", {}).get("uuid")
            return Created("script", want.key, _id(uuid), {"destination": want.destination})
        body = {
            "scope": want.key,
            "destination": want.destination,
            "is_active": True,
            "headers": {SECRET_HEADER: self._secret},
        }
        scope = PRODUCTS_SCOPE if want.key in PRODUCT_SCOPES else ORDERS_SCOPE
        made = self._http.call("POST", "/v3/hooks", json=body, scope=scope)
        hook_id = (made or {}).get("data", {}).get("id")
        return Created("webhook", want.key, _id(hook_id), {"destination": want.destination})

    def delete(self, created: Created) -> None:
        path = "/v3/content/scripts/" if created.kind == "script" else "/v3/hooks/"
        self._http.call("DELETE", path + created.remote_id, missing_ok=True)

    def manual_steps(self) -> list[str]:
        return []


def _data(answer: Any) -> list[dict[str, Any]]:
    data = answer.get("data") if isinstance(answer, dict) else None
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def _id(value: Any) -> str:
    if value in (None, ""):
        raise ConnectError("rejected", "the store answered a create without an id")
    return str(value)
