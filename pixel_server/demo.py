"""The demo storefront (``GET /demo``, only with ``PIXEL_DEMO=true``).

A plain HTML shop — a few products with variants, a cart, a checkout and a
purchase — that loads the demo pixel's real snippet (``/p/{id}.js``) and
reports with ``ttq.track(...)`` like any HTML store (the demo pixel's
platform is ``html``). The loader flushes every 100 ms, so the dashboard
fills within seconds. The page links to the dashboard through a login link
with an owner token made for the demo page on its first visit (demo mode
only; the token is kept in memory and never logged).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from pixel_server.storage.pixels import PixelStore

if TYPE_CHECKING:
    from pixel_server.app import Runtime

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

_env = Environment(loader=FileSystemLoader(DEMO_DIR), autoescape=select_autoescape(["html"]))
_lock = threading.Lock()


def _login_token(runtime: Runtime, pixel_id: str, cache: dict[str, str]) -> str:
    """One owner token per server run for the demo page's dashboard link."""
    with _lock:
        if pixel_id not in cache:
            store = PixelStore(runtime.database.client())
            cache[pixel_id] = store.add_token(pixel_id, "owner", label="demo page")
            runtime.refresh_registry()
        return cache[pixel_id]


async def store(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    pixel = next((p for p in runtime.registry.all() if p.name == DEMO_PIXEL_NAME), None)
    if pixel is None:
        return HTMLResponse("<h1>No demo pixel yet</h1><p>Start with PIXEL_DEMO=true.</p>", 503)
    cache: dict[str, str] = request.app.state.__dict__.setdefault("demo_tokens", {})
    token = await anyio.to_thread.run_sync(_login_token, runtime, pixel.id, cache)
    base = runtime.settings.base_url
    body = _env.get_template("store.html").render(
        pixel=pixel,
        script_url=f"{base}/p/{pixel.id}.js",
        dashboard_url=f"/login?token={token}",
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


def routes() -> list[Route]:
    return [Route("/demo", store, methods=["GET"])]
