"""The machinery of the browser tests: the store server, the collector
(capture server) and the browser tab wrapper. Fixtures are in conftest.py."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pixel_server.install import paste_instructions, snippet_tag
from pixel_server.snippets import (
    CACHE_CONTROL,
    CONTENT_TYPE,
    SnippetSettings,
    choose_encoding,
    render_snippet,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = Path(__file__).resolve().parent / "pages"
# The stand-in for TikTok's events.js (what it models: see the file).
TIKTOK_EVENTS_DOUBLE = Path(__file__).resolve().parent / "tiktok_events_double.js"
MAX_BODY = 64 * 1024
MAX_EVENTS = 50

# ------------------------------------------------------------------ servers


class ThreadedServer:
    """A Starlette app on uvicorn in a daemon thread, on a free 127.0.0.1 port."""

    def __init__(self, app: Starlette, lifespan: str = "off") -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()


class CaptureServer:
    """Stands in for ``POST /collect`` and checks the wire contract strictly.

    A request breaking it gets a 4xx and is recorded in ``violations`` (the
    ``collector`` fixture fails the test on any). Checked: content type
    text/plain or application/json; body at most 64 KB; a JSON object with a
    non-empty ``pixel_id`` equal to ``?p=``; 1..50 events, each with a string
    ``event`` and ``event_id``, a numeric ``event_time`` in Unix seconds and
    ``page.url``; CORS answered for the allowed origins (preflight included).
    """

    def __init__(self, allowed_origins: set[str], forward_to: str | None = None) -> None:
        self.allowed_origins = allowed_origins
        # The real server: every request that keeps the contract is passed on
        # as it came, and must be accepted there too (202).
        self.forward_to = forward_to
        self._events: dict[str, list[dict[str, Any]]] = {}
        self.violations: dict[str, list[str]] = {}
        self._changed = threading.Condition()
        self.app = Starlette(
            routes=[
                Route("/collect", self._collect, methods=["POST"]),
                Route("/collect", self._preflight, methods=["OPTIONS"]),
            ]
        )

    def _cors(self, request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin is None or origin not in self.allowed_origins:
            return {}
        return {"access-control-allow-origin": origin, "vary": "Origin"}

    async def _preflight(self, request: Request) -> Response:
        headers = self._cors(request)
        if not headers:
            return Response(status_code=403)
        headers |= {
            "access-control-allow-methods": "POST, OPTIONS",
            "access-control-allow-headers": "content-type",
            "access-control-max-age": "600",
        }
        return Response(status_code=204, headers=headers)

    async def _collect(self, request: Request) -> Response:
        cors = self._cors(request)
        pixel_id = request.query_params.get("p", "")
        body = await request.body()
        problem = self._check(request, pixel_id, body)
        if problem:
            with self._changed:
                self.violations.setdefault(pixel_id, []).append(problem)
            status = 413 if "too" in problem else 400
            return PlainTextResponse(problem, status_code=status, headers=cors)
        events = json.loads(body)["events"]
        if self.forward_to is not None:
            problem = await self._forward(request, pixel_id, body)
            if problem:
                with self._changed:
                    self.violations.setdefault(pixel_id, []).append(problem)
        with self._changed:
            self._events.setdefault(pixel_id, []).extend(events)
            self._changed.notify_all()
        return JSONResponse({"accepted": len(events)}, status_code=202, headers=cors)

    async def _forward(self, request: Request, pixel_id: str, body: bytes) -> str | None:
        headers = {k: v for k, v in request.headers.items()
                   if k in ("content-type", "origin", "user-agent", "referer")}  # fmt: skip
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                f"{self.forward_to}/collect?p={pixel_id}",
                content=body,
                headers=headers,
            )
        if answer.status_code != 202:
            return f"the real /collect answered {answer.status_code}: {answer.text}"
        return None

    @staticmethod
    def _check(request: Request, pixel_id: str, body: bytes) -> str | None:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("text/plain", "application/json"):
            return f"content type {ctype!r}"
        if len(body) > MAX_BODY:
            return f"body too large: {len(body)} bytes"
        origin = request.headers.get("origin")
        if origin is None:
            return "no Origin header (a browser always sends one on a cross-origin POST)"
        try:
            data = json.loads(body)
        except ValueError:
            return "body is not JSON"
        if not isinstance(data, dict) or not isinstance(data.get("pixel_id"), str):
            return "no pixel_id in the body"
        if not pixel_id or data["pixel_id"] != pixel_id:
            return f"?p={pixel_id!r} does not match pixel_id {data['pixel_id']!r}"
        events = data.get("events")
        if not isinstance(events, list) or not events:
            return "no events"
        if len(events) > MAX_EVENTS:
            return f"too many events: {len(events)}"
        now = time.time()
        for ev in events:
            if not isinstance(ev, dict):
                return "an event is not an object"
            if not isinstance(ev.get("event"), str) or not isinstance(ev.get("event_id"), str):
                return f"event without a string name and event_id: {ev}"
            t = ev.get("event_time")
            if not isinstance(t, int | float) or not now - 86400 < t < now + 300:
                return f"event_time is not Unix seconds of today: {t!r}"
            page = ev.get("page")
            if not isinstance(page, dict) or not str(page.get("url", "")).startswith("http"):
                return f"event without page.url: {ev}"
        return None

    def events(self, pixel_id: str, count: int | None, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            if count is not None:
                while len(self._events.get(pixel_id, [])) < count:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
            return [json.loads(json.dumps(e)) for e in self._events.get(pixel_id, [])]


@dataclass
class Collector:
    """What the tests see of the collector (see the module docstring)."""

    endpoint: str
    pixel_id: str
    _events: Callable[[str, int | None, float], list[dict[str, Any]]]

    def events(
        self, pixel_id: str | None = None, *, count: int | None = None, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        return self._events(pixel_id or self.pixel_id, count, timeout)

    # Rows in ClickHouse for this test's pixel (None: no real server behind).
    _stored: Callable[[str, int, float], list[dict[str, Any]]] | None = None

    def stored(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]] | None:
        """The ``events`` rows the real server stored for this pixel, waiting
        until ``count`` are there (or ``timeout``)."""
        if self._stored is None:
            return None
        return self._stored(self.pixel_id, count, timeout)


@dataclass
class Store:
    """The test store: its pages and the snippet for the pixels tests configure."""

    origin: str
    settings: dict[str, SnippetSettings] = field(default_factory=dict)

    def configure(self, settings: SnippetSettings) -> SnippetSettings:
        self.settings[settings.pixel_id] = settings
        return settings

    def url(self, page: str, pixel_id: str, **query: str) -> str:
        return f"{self.origin}/pages/{page}?" + urlencode({"px": pixel_id, **query})

    def script_url(self, pixel_id: str) -> str:
        return f"{self.origin}/p/{pixel_id}.js"


_PX = re.compile(r"[A-Za-z0-9_-]{1,64}")


def store_app(store: Store) -> Starlette:
    async def snippet(request: Request) -> Response:
        # What the real route will do: negotiate the encoding, honour ETags.
        settings = store.settings.get(request.path_params["pixel_id"])
        if settings is None:
            return PlainTextResponse("unknown pixel", status_code=404)
        asset = render_snippet(settings)
        encoding = choose_encoding(request.headers.get("accept-encoding", ""))
        payload, etag = asset.encoded(encoding)
        headers = {"etag": etag, "cache-control": CACHE_CONTROL, "vary": "Accept-Encoding"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        if encoding != "identity":
            headers["content-encoding"] = encoding
        return Response(payload, media_type=CONTENT_TYPE, headers=headers)

    async def page(request: Request) -> Response:
        name = request.path_params["name"]
        path = PAGES / name
        if "/" in name or not path.is_file():
            return PlainTextResponse("not found", status_code=404)
        if name.endswith(".js"):
            return Response(path.read_bytes(), media_type="text/javascript")
        px = request.query_params.get("px", "")
        if not _PX.fullmatch(px):
            return PlainTextResponse("bad px", status_code=400)
        html = (
            path.read_text()
            .replace("{{tag}}", snippet_tag(store.script_url(px)))  # what install() inserts
            .replace("{{px}}", px)
            .replace("{{store}}", store.origin)
        )
        return Response(html, media_type="text/html", headers={"cache-control": "no-store"})

    async def shopify_custom_pixel(request: Request) -> Response:
        # The code a merchant pastes into Shopify's custom-pixel editor.
        pixel_id = request.query_params.get("px", "")
        settings = store.settings.get(pixel_id)
        if settings is None:
            return PlainTextResponse("unknown pixel", status_code=404)
        code = paste_instructions("shopify", store.script_url(pixel_id), settings)
        return Response(code, media_type="text/javascript")

    async def wordpress_root(request: Request) -> Response:
        # WordPress answers REST routes at /?rest_route=...; only WooCommerce's
        # Store API cart is here (a fixed cart: tests/browser/pages/).
        if request.query_params.get("rest_route") != "/wc/store/v1/cart":
            return PlainTextResponse("not found", status_code=404)
        body = (PAGES / "woocommerce-store-api-cart.json").read_bytes()
        return Response(body, media_type="application/json")

    async def tiktok_events(request: Request) -> Response:
        return Response(TIKTOK_EVENTS_DOUBLE.read_bytes(), media_type="text/javascript")

    return Starlette(
        routes=[
            Route("/p/{pixel_id}.js", snippet),
            Route("/tiktok/events.js", tiktok_events),
            Route("/", wordpress_root),
            # POST: stores' forms (add to cart, sign up) post back to their pages.
            Route("/pages/{name}", page, methods=["GET", "POST"]),
            Route("/shopify/custom-pixel.js", shopify_custom_pixel),
        ]
    )


@dataclass
class Tab:
    """A page in a fresh browser context, with what went wrong in it."""

    page: Any  # playwright.sync_api.Page
    errors: list[str]  # uncaught exceptions, unhandled rejections, console errors
    failed_loads: list[str]  # "Failed to load resource" console lines (network)

    def goto(self, url: str, ready: str | None = "window._pxs && window.ttq") -> None:
        """Load ``url``; then wait until ``ready`` (JS) is true: by default,
        until the snippet has run and ``ttq`` is there."""
        self.page.goto(url, wait_until="load")
        if ready:
            self.page.wait_for_function(ready, timeout=10_000)
