"""The demo storefront (``GET /demo``, only with ``PIXEL_DEMO=true``).

A plain HTML shop — a few products with variants, a cart, a checkout and a
purchase — that loads the demo pixel's real snippet (``/p/{id}.js``) and
reports with ``ttq.track(...)`` like any HTML store (the demo pixel's
platform is ``html``). The loader flushes every 100 ms, so the dashboard
fills within seconds. When the server listens on loopback only, the page
links to the dashboard through a login link with an owner token made for the
demo page on its first visit (the token is kept in memory and never logged);
on any other address it hands out nothing and says so.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Final

import anyio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from pixel_server.management import Management
from pixel_server.registry import PixelRegistry

DEMO_DIR: Final = Path(__file__).resolve().parent.parent / "dashboards" / "demo"
DEMO_PIXEL_NAME: Final = "Demo store"  # the name Runtime gives the demo pixel

# (product id, name, emoji, [(variant id, label, price)]); prices in USD.
CATALOGUE: Final = (
    (
        "tee",
        "Logo T-shirt",
        "👕",
        (("tee-s", "S", 19.9), ("tee-m", "M", 19.9), ("tee-l", "L", 21.5)),
    ),
    ("mug", "Enamel mug", "☕", (("mug-white", "White", 9.99), ("mug-black", "Black", 11.25))),
    ("cap", "Cap", "🧢", (("cap-one", "One size", 15.0),)),
    (
        "hoodie",
        "Hoodie",
        "🧥",
        (("hoodie-s", "S", 49.0), ("hoodie-m", "M", 49.0), ("hoodie-l", "L", 52.0)),
    ),
)


class DemoStore:
    """``GET /demo`` over the registry (to find the demo pixel), the management
    operations (to issue the page's owner token) and the server's public URL."""

    def __init__(
        self,
        *,
        registry: PixelRegistry,
        management: Management,
        base_url: str,
        hand_out_owner: bool,
    ) -> None:
        self._registry = registry
        # Anyone who opens /demo gets owner access: only on a server nobody
        # else can reach.
        self._hand_out_owner = hand_out_owner
        self._management = management
        self._base_url = base_url
        self._env = Environment(
            loader=FileSystemLoader(DEMO_DIR), autoescape=select_autoescape(["html"])
        )
        self._tokens: dict[str, str] = {}  # one owner token per pixel and server run
        self._lock = threading.Lock()

    def routes(self) -> list[Route]:
        return [Route("/demo", self.store, methods=["GET"])]

    def _login_token(self, pixel_id: str) -> str:
        with self._lock:
            if pixel_id not in self._tokens:
                issued = self._management.run(
                    "token.add", {"pixel": pixel_id, "role": "owner", "label": "demo page"}
                )
                self._tokens[pixel_id] = issued["token"]
            return self._tokens[pixel_id]

    async def store(self, request: Request) -> Response:
        pixel = next((p for p in self._registry.all() if p.name == DEMO_PIXEL_NAME), None)
        if pixel is None:
            return HTMLResponse("<h1>No demo pixel yet</h1><p>Start with PIXEL_DEMO=true.</p>", 503)
        dashboard_url = ""
        if self._hand_out_owner:
            token = await anyio.to_thread.run_sync(self._login_token, pixel.id)
            dashboard_url = f"/login?token={token}"
        body = self._env.get_template("store.html").render(
            pixel=pixel,
            script_url=f"{self._base_url}/p/{pixel.id}.js",
            dashboard_url=dashboard_url,
            catalogue=[
                {
                    "id": p,
                    "name": n,
                    "emoji": e,
                    "variants": [{"id": v, "label": lbl, "price": pr} for v, lbl, pr in vs],
                }
                for p, n, e, vs in CATALOGUE
            ],
            origin_ok=request.url.scheme + "://" + request.url.netloc in pixel.origins,
            origins=pixel.origins,
        )
        return HTMLResponse(body, headers={"cache-control": "no-store"})
