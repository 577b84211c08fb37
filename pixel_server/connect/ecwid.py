"""Ecwid: the token is checked; the script and webhooks are app settings.

Ecwid loads an app's storefront JS file on every storefront page (checkout
and order confirmation included: the store is one page) and sends its webhooks
to the app's webhook URL; both are set in the app's settings (the
``customJsUrl`` and webhook URL of the app registration), not through the
REST API, so a store token cannot set them. Connect checks what the token must
read and prints those two values with the steps; ``connect status`` then
looks for our events.

Access, under ``{store_api_base}/api/v3/{store id}`` with ``Authorization:
Bearer``: ``GET /profile`` (scope ``read_store_profile``; also the storefront
URL), ``GET /orders?limit=1`` (``read_orders``: the webhook's order fetch),
``GET /products?limit=1`` (``read_catalog``: the catalog).
"""

from __future__ import annotations

from typing import Final

from pixel_server.connect.plan import Live, StoreHttp, Target, Wanted, require
from pixel_server.storage.connections import Created

ORDER_EVENTS: Final = ("order.created", "order.updated")
PRODUCT_EVENTS: Final = ("product.created", "product.updated", "product.deleted")


class Ecwid:
    platform = "ecwid"

    def __init__(self, target: Target) -> None:
        pixel = target.pixel
        require(pixel, "store_id", "store_api_base", "store_api_token", "webhook_secret")
        self.target = target
        self._http = StoreHttp(
            "Ecwid",
            f"{pixel.store_api_base}/api/v3/{pixel.store_id}",
            {"authorization": f"Bearer {pixel.store_api_token}"},
        )

    def close(self) -> None:
        self._http.close()

    def check_access(self) -> None:
        self._http.call("GET", "/profile", scope="read_store_profile")
        self._http.call("GET", "/orders?limit=1", scope="read_orders")
        self._http.call("GET", "/products?limit=1", scope="read_catalog")

    def storefront_url(self) -> str:
        profile = self._http.call("GET", "/profile", scope="read_store_profile") or {}
        return str((profile.get("generalInfo") or {}).get("storeUrl") or "")

    def wanted(self) -> list[Wanted]:
        return []

    def live(self) -> list[Live]:
        return []

    def create(self, want: Wanted) -> Created:  # nothing is wanted
        raise NotImplementedError

    def delete(self, created: Created) -> None:
        pass

    def manual_steps(self) -> list[str]:
        t = self.target
        return [
            "Ecwid takes the storefront script and the webhook URL from your app's settings "
            "(Ecwid admin > Apps > My apps > your custom app > Details; ask Ecwid's support "
            "to set them where the page shows them read-only):",
            f"Storefront JS file (customJsUrl, scope customize_storefront): {t.script_url}",
            f"Webhook URL: {t.webhook_url()}, events "
            f"{', '.join(ORDER_EVENTS + PRODUCT_EVENTS)} (Ecwid sends every event to one URL)",
            "The pixel's webhook secret must be the app's client secret (Ecwid signs with it).",
            f"Then run `pixel-server connect status --pixel {t.pixel.id}` to check it.",
        ]
