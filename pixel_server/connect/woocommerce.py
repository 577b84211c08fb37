"""WooCommerce: webhooks through ``/wp-json/wc/v3/webhooks``, the tag by a plugin.

The REST API (``{store_api_base or site URL}/wp-json/wc/v3``, HTTP Basic with
the REST key as ``consumer_key:consumer_secret`` in the store API token) cannot
add scripts to pages, so connect registers the webhooks and prints where to get
the plugin (:mod:`pixel_server.connect.woo_plugin`) that prints our tag on
every page, checkout and order-received included.

* access: ``GET /webhooks`` (a key with *Read* permission at least; 401 with
  ``woocommerce_rest_cannot_view``/``_create`` is a key without the permission:
  *Read/Write* is needed to create webhooks);
* webhooks: ``POST /webhooks`` with ``name``, ``topic``, ``delivery_url``,
  ``secret`` (the pixel's webhook secret: WooCommerce signs every delivery
  with it), ``status: active``. Order topics to ``/webhooks/woocommerce/{id}``,
  product topics to ``.../catalog``; ours are recognised by ``delivery_url``.
  WooCommerce disables a webhook after repeated failed deliveries
  (``status: disabled``); removed with ``DELETE /webhooks/{id}?force=true``.
"""

from __future__ import annotations

from typing import Any, Final

import httpx

from pixel_server.connect.plan import ConnectError, Live, StoreHttp, Target, Wanted, require
from pixel_server.storage.connections import Created

ORDER_TOPICS: Final = ("order.created", "order.updated")
PRODUCT_TOPICS: Final = ("product.created", "product.updated", "product.deleted")
KEY_SCOPE: Final = "Read/Write"
PERMISSION_CODES: Final = ("woocommerce_rest_cannot_",)


class WooCommerce:
    platform = "woocommerce"

    def __init__(self, target: Target) -> None:
        pixel = target.pixel
        require(pixel, "store_id", "store_api_token", "webhook_secret")
        key, sep, secret = pixel.store_api_token.partition(":")
        if not sep or not key or not secret:
            raise ConnectError(
                "not_configured",
                "a WooCommerce store API token is the REST key as consumer_key:consumer_secret "
                "(WooCommerce > Settings > Advanced > REST API, permission Read/Write)",
            )
        self.target = target
        self._site = pixel.store_id
        self._secret = pixel.webhook_secret
        self._http = StoreHttp(
            "WooCommerce",
            f"{pixel.store_api_base or pixel.store_id}/wp-json/wc/v3",
            {},
            auth=httpx.BasicAuth(key, secret),
            denied_codes=PERMISSION_CODES,
        )

    def close(self) -> None:
        self._http.close()

    def check_access(self) -> None:
        self._http.call("GET", "/webhooks?per_page=1", scope=KEY_SCOPE)

    def storefront_url(self) -> str:
        return self._site

    def wanted(self) -> list[Wanted]:
        t = self.target
        return [
            *(Wanted("webhook", topic, t.webhook_url()) for topic in ORDER_TOPICS),
            *(Wanted("webhook", topic, t.webhook_url(catalog=True)) for topic in PRODUCT_TOPICS),
        ]

    def live(self) -> list[Live]:
        ours = (self.target.webhook_url(), self.target.webhook_url(catalog=True))
        hooks = self._http.call("GET", "/webhooks?per_page=100", scope=KEY_SCOPE) or []
        return [
            Live(
                "webhook",
                str(h.get("topic")),
                str(h.get("id")),
                h.get("status") == "active",
                {"destination": h["delivery_url"], "status": h.get("status")},
            )
            for h in hooks
            if isinstance(h, dict) and h.get("delivery_url") in ours
        ]

    def create(self, want: Wanted) -> Created:
        body: dict[str, Any] = {
            "name": f"pixel-server {self.target.pixel.id} {want.key}",
            "topic": want.key,
            "delivery_url": want.destination,
            "secret": self._secret,
            "status": "active",
        }
        made = self._http.call("POST", "/webhooks", json=body, scope=KEY_SCOPE) or {}
        if not made.get("id"):
            raise ConnectError("rejected", "WooCommerce answered a webhook create without an id")
        return Created("webhook", want.key, str(made["id"]), {"destination": want.destination})

    def delete(self, created: Created) -> None:
        self._http.call("DELETE", f"/webhooks/{created.remote_id}?force=true", missing_ok=True)

    def manual_steps(self) -> list[str]:
        url = f"{self.target.base_url}/integrations/woocommerce.zip?pixel={self.target.pixel.id}"
        return [
            "WooCommerce's API cannot add the tag to your pages: install our plugin once.",
            f"Download {url}, then WordPress admin > Plugins > Add New > Upload Plugin, "
            "choose the file, Install Now, Activate.",
            f"Then run `pixel-server connect status --pixel {self.target.pixel.id}` to check it.",
        ]
