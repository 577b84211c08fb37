"""A local stand-in for a WooCommerce site: REST v3 webhooks and the home page.

* ``GET|POST /wp-json/wc/v3/webhooks``, ``DELETE /wp-json/wc/v3/webhooks/{id}``
  with HTTP Basic ``consumer_key:consumer_secret``. A wrong key is 401
  ``woocommerce_rest_authentication_error``; a key whose permission is ``read``
  may list but not create or delete (401 ``woocommerce_rest_cannot_create`` /
  ``_delete``, as WooCommerce answers); ``write`` may not list (401
  ``woocommerce_rest_cannot_view``). DELETE without ``force=true`` is 501
  ``woocommerce_rest_trash_not_supported``. POST checks ``topic`` against
  WooCommerce's topics, ``delivery_url`` an http(s) URL, ``secret`` a string,
  no unknown field (400 ``rest_invalid_param``).
* ``GET /`` (no auth): the home page; :attr:`head` is printed in its
  ``<head>`` (a test puts the plugin's tag there to "activate" it).

:meth:`fail_webhook` marks a webhook as WooCommerce leaves it after repeated
failed deliveries (``status: disabled``).
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.standins.store_api import StoreApi, read_json, send

PREFIX = "/wp-json/wc/v3/webhooks"
TOPICS = frozenset(
    f"{r}.{e}"
    for r in ("order", "product", "customer", "coupon")
    for e in ("created", "updated", "deleted", "restored")
)
_FIELDS = {"name", "status", "topic", "delivery_url", "secret", "api_version"}


class WooCommerceSite(StoreApi):
    METHODS = ("GET", "POST", "DELETE")

    def __init__(
        self, key: str = "ck_test", secret: str = "cs_test", permission: str = "read_write"
    ) -> None:
        super().__init__(f"{key}:{secret}")
        self.permission = permission  # read | write | read_write
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.head = ""  # what an active plugin prints into <head>
        self._ids = itertools.count(11)

    def state(self) -> dict[str, Any]:
        return {k: dict(v) for k, v in self.webhooks.items()}

    def fail_webhook(self, hook_id: str) -> None:
        self.webhooks[hook_id]["status"] = "disabled"

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        with self._lock:
            self.requests.append(f"{request.command} {parts.path}")
        if parts.path == "/" and request.command == "GET":
            page = (
                f"<!doctype html><html><head><title>Shop</title>{self.head}</head>"
                '<body class="home woocommerce-page">Shop</body></html>'
            )
            return send(request, 200, page, "text/html; charset=UTF-8")
        if not parts.path.startswith(PREFIX):
            return send(
                request,
                404,
                {"code": "rest_no_route", "message": "No route was found", "data": {"status": 404}},
            )
        expected = "Basic " + base64.b64encode(self.token.encode()).decode()
        if request.headers.get("Authorization") != expected:
            return _error(
                request, 401, "woocommerce_rest_authentication_error", "Consumer key is invalid."
            )
        fault = self._next_fault()
        if fault is not None and fault.status is not None:
            return _error(request, fault.status, "injected", "injected fault")
        item = parts.path[len(PREFIX) :].strip("/")
        if request.command == "GET" and not item:
            if "read" not in self.permission:
                return _error(
                    request,
                    401,
                    "woocommerce_rest_cannot_view",
                    "Sorry, you cannot list resources.",
                )
            return send(request, 200, list(self.webhooks.values()))
        if "write" not in self.permission:
            verb = "create" if request.command == "POST" else "delete"
            return _error(
                request,
                401,
                f"woocommerce_rest_cannot_{verb}",
                f"Sorry, you are not allowed to {verb} resources.",
            )
        if request.command == "DELETE" and item:
            if parse_qs(parts.query).get("force") != ["true"]:
                return _error(
                    request,
                    501,
                    "woocommerce_rest_trash_not_supported",
                    "Webhooks do not support trashing.",
                )
            hook = self.webhooks.pop(item, None)
            if hook is None:
                return _error(request, 404, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
            return send(request, 200, hook)
        if request.command != "POST" or item:
            return _error(request, 404, "rest_no_route", "No route was found")
        return self._create(request)

    def _create(self, request: BaseHTTPRequestHandler) -> None:
        body = read_json(request)
        if not isinstance(body, dict):
            return _error(request, 400, "rest_invalid_json", "Invalid JSON body passed.")
        unknown = set(body) - _FIELDS
        if unknown:
            return _error(
                request, 400, "rest_invalid_param", f"Invalid parameter(s): {sorted(unknown)}"
            )
        if body.get("topic") not in TOPICS:
            return _error(
                request,
                400,
                "woocommerce_rest_webhook_invalid_topic",
                "Webhook topic is required and must be valid.",
            )
        if not str(body.get("delivery_url", "")).startswith(("http://", "https://")):
            return _error(request, 400, "rest_invalid_param", "Invalid parameter(s): delivery_url")
        if not isinstance(body.get("secret", ""), str):
            return _error(request, 400, "rest_invalid_param", "Invalid parameter(s): secret")
        if body.get("status", "active") not in ("active", "paused", "disabled"):
            return _error(request, 400, "rest_invalid_param", "Invalid parameter(s): status")
        resource, event = body["topic"].split(".")
        hook = {
            "id": next(self._ids),
            "name": body.get("name", ""),
            "status": body.get("status", "active"),
            "topic": body["topic"],
            "resource": resource,
            "event": event,
            "delivery_url": body["delivery_url"],
            "secret": body.get("secret", ""),
            "api_version": body.get("api_version", "wp_api_v3"),
        }
        self.webhooks[str(hook["id"])] = hook
        return send(request, 201, hook)


def _error(request: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
    send(request, status, {"code": code, "message": message, "data": {"status": status}})


@contextmanager
def running(**kwargs: Any) -> Iterator[WooCommerceSite]:
    api = WooCommerceSite(**kwargs).start()
    try:
        yield api
    finally:
        api.stop()
