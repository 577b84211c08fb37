"""BigCommerce's admin API for connecting a store: Scripts API, webhooks, store
info, and a storefront home page that renders the registered scripts.

Extends :class:`BigCommerceApi` (orders), under ``/stores/{store_hash}``:

* ``GET /v2/store``: ``secure_url`` = this stand-in's ``/storefront/``;
* ``GET|POST /v3/content/scripts``, ``DELETE /v3/content/scripts/{uuid}``
  (scope ``content``). POST is checked like BigCommerce: ``name``, ``kind``
  (``src`` | ``script_tag``), ``src`` an https URL for ``src``, ``location``,
  ``visibility``, ``consent_category``, ``load_method`` from their closed
  lists, no unknown field (422 with ``errors``);
* ``GET|POST /v3/hooks``, ``DELETE /v3/hooks/{id}`` (scope ``orders`` for
  ``store/order/*``, ``products`` for ``store/product/*``). POST: ``scope`` a
  known scope, ``destination`` https, ``is_active`` a boolean, ``headers`` a
  string map;
* ``GET /v2/orders`` and ``GET /v3/catalog/products`` (empty lists; scope
  probes);
* ``GET /storefront/`` (no auth): a home page with a ``<script>`` per
  registered script whose visibility covers the storefront.

``scopes`` is what the API account was granted (a missing one is 403, as
BigCommerce answers); :meth:`fail_hook` marks a hook deactivated after
failing deliveries (``is_active: false``).
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.standins.bigcommerce_api import BigCommerceApi
from tests.standins.store_api import read_json, send

ALL_SCOPES = frozenset({"content", "orders", "products"})
_SCRIPT_FIELDS = {
    "name",
    "description",
    "kind",
    "src",
    "html",
    "load_method",
    "location",
    "visibility",
    "consent_category",
    "auto_uninstall",
    "enabled",
}
_CHOICES = {
    "kind": {"src", "script_tag"},
    "load_method": {"default", "async", "defer"},
    "location": {"head", "footer"},
    "visibility": {"storefront", "all_pages", "checkout", "order_confirmation"},
    "consent_category": {"essential", "functional", "analytics", "targeting"},
}
_HOOK_SCOPE = re.compile(r"^store/(order|product|cart|customer)/[A-Za-z/*]+$")


class BigCommerceAdmin(BigCommerceApi):
    METHODS = ("GET", "POST", "DELETE")

    def __init__(
        self, token: str, store_hash: str = "abc123xyz", scopes: frozenset[str] = ALL_SCOPES
    ) -> None:
        super().__init__(token, store_hash)
        self.scopes = set(scopes)
        self.scripts: dict[str, dict[str, Any]] = {}
        self.hooks: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(18048287)

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Scripts and hooks, copied: compare before and after."""
        return (
            {k: dict(v) for k, v in self.scripts.items()},
            {k: dict(v) for k, v in self.hooks.items()},
        )

    def fail_hook(self, hook_id: str) -> None:
        self.hooks[hook_id]["is_active"] = False

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path.rstrip("/") == "/storefront":
            with self._lock:
                self.requests.append(path)
            return send(request, 200, self._storefront(), "text/html; charset=utf-8")
        prefix = f"/stores/{self.store_hash}"
        rest = path[len(prefix) :] if path.startswith(prefix + "/") else ""
        if not (
            rest.startswith(("/v3/content/scripts", "/v3/hooks", "/v3/catalog/products"))
            or rest in ("/v2/store", "/v2/orders")
        ):
            return super()._handle(request)
        with self._lock:
            self.requests.append(f"{request.command} {path}")
        if request.headers.get("X-Auth-Token") != self.token:
            return send(request, 401, {"status": 401, "title": "Unauthorized"})
        fault = self._next_fault()
        if fault is not None and fault.status is not None:
            return send(request, fault.status, {"status": fault.status, "title": "injected"})
        return self._admin(request, rest)

    def _denied(self, request: BaseHTTPRequestHandler, scope: str) -> bool:
        if scope in self.scopes:
            return False
        send(
            request,
            403,
            {"status": 403, "title": "You don't have a required scope to access the endpoint"},
        )
        return True

    def _admin(self, request: BaseHTTPRequestHandler, rest: str) -> None:
        method = request.command
        if rest == "/v2/store" and method == "GET":
            return send(request, 200, {"id": self.store_hash, "secure_url": self._shop_url()})
        if rest == "/v2/orders" and method == "GET":
            return None if self._denied(request, "orders") else send(request, 204, None)
        if rest.startswith("/v3/catalog/products") and method == "GET":
            if not self._denied(request, "products"):
                send(request, 200, {"data": [], "meta": {"pagination": {"total": 0}}})
            return None
        if rest.startswith("/v3/content/scripts"):
            if self._denied(request, "content"):
                return None
            return self._scripts(request, rest[len("/v3/content/scripts") :].strip("/"))
        return self._hooks(request, rest[len("/v3/hooks") :].strip("/"))

    def _scripts(self, request: BaseHTTPRequestHandler, item: str) -> None:
        if request.command == "GET" and not item:
            return send(request, 200, {"data": list(self.scripts.values()), "meta": {}})
        if request.command == "DELETE" and item:
            if self.scripts.pop(item, None) is None:
                return send(request, 404, {"status": 404, "title": "Script not found"})
            return send(request, 204, None)
        if request.command != "POST" or item:
            return send(request, 405, {"status": 405, "title": "Method Not Allowed"})
        body = read_json(request)
        problem = _script_problem(body)
        if problem:
            return send(request, 422, {"status": 422, "title": problem, "errors": {}})
        script = {**body, "uuid": str(uuid.uuid4()), "date_created": "2026-12-04T00:00:00Z"}
        self.scripts[script["uuid"]] = script
        return send(request, 200, {"data": script, "meta": {}})

    def _hooks(self, request: BaseHTTPRequestHandler, item: str) -> None:
        if request.command == "GET" and not item:
            if self._denied(request, "orders"):
                return None
            return send(request, 200, {"data": list(self.hooks.values()), "meta": {}})
        if request.command == "DELETE" and item:
            hook = self.hooks.pop(item, None)
            if hook is None:
                return send(request, 404, {"status": 404, "title": "Webhook not found"})
            return send(request, 200, {"data": hook, "meta": {}})
        if request.command != "POST" or item:
            return send(request, 405, {"status": 405, "title": "Method Not Allowed"})
        body = read_json(request)
        problem = _hook_problem(body)
        if problem:
            return send(request, 422, {"status": 422, "title": problem, "errors": {}})
        if self._denied(request, "products" if "/product/" in body["scope"] else "orders"):
            return None
        hook = {
            "id": next(self._ids),
            "store_hash": self.store_hash,
            "created_at": 1764806400,
            "is_active": True,
            "headers": {},
            **body,
        }
        self.hooks[str(hook["id"])] = hook
        return send(request, 200, {"data": hook, "meta": {}})

    def _shop_url(self) -> str:
        return f"{self.base_url}/storefront/"

    def _storefront(self) -> str:
        tags = "".join(
            f'<script async src="{s["src"]}"></script>'
            for s in self.scripts.values()
            if s.get("kind") == "src" and s.get("visibility") in ("storefront", "all_pages")
        )
        return (
            f"<!doctype html><html><head><title>Shop</title>{tags}</head><body>Home</body></html>"
        )


def _script_problem(body: Any) -> str:
    if not isinstance(body, dict):
        return "The request body must be a JSON object"
    unknown = set(body) - _SCRIPT_FIELDS
    if unknown:
        return f"Unknown fields: {', '.join(sorted(unknown))}"
    if not isinstance(body.get("name"), str) or not body["name"]:
        return "name is required"
    for field, choices in _CHOICES.items():
        if field in body and body[field] not in choices:
            return f"{field} must be one of {', '.join(sorted(choices))}"
    if body.get("kind") == "src" and not str(body.get("src", "")).startswith("https://"):
        return "src must be an https URL"
    return ""


def _hook_problem(body: Any) -> str:
    if not isinstance(body, dict):
        return "The request body must be a JSON object"
    if set(body) - {"scope", "destination", "is_active", "headers", "events_history_enabled"}:
        return "Unknown fields"
    if not _HOOK_SCOPE.match(str(body.get("scope", ""))):
        return "scope is not a webhook scope"
    if not str(body.get("destination", "")).startswith("https://"):
        return "destination must be an https URL on port 443"
    if "is_active" in body and not isinstance(body["is_active"], bool):
        return "is_active must be a boolean"
    headers = body.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        return "headers must map strings to strings"
    return ""


@contextmanager
def running(token: str, **kwargs: Any) -> Iterator[BigCommerceAdmin]:
    api = BigCommerceAdmin(token, **kwargs).start()
    try:
        yield api
    finally:
        api.stop()
