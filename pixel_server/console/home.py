"""The home page of a token that spans several pixels (an agency's): each
pixel with its headline numbers over the last 28 days in the pixel's own time
zone (visitors, orders, revenue, TikTok-attributed revenue) and its last event.

``GET /console``; a one-pixel token goes straight to its pixel's dashboard.
``GET /`` leads to the caller's home, or to the login form.
The numbers come from the same reports as the dashboard (one event counted
once, whichever sources sent it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import anyio
from clickhouse_connect.driver.client import Client
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pixel_server import reports
from pixel_server.console.access import Denied, Gate
from pixel_server.console.login import home_of
from pixel_server.console.pages import SECURITY_HEADERS, Pages
from pixel_server.pixel import Pixel

DAYS = 28
TIKTOK_CHANNELS = ("tiktok_paid", "tiktok_organic")


def headline(client: Client, pixel: Pixel) -> dict[str, Any]:
    """One pixel's row of the home page."""
    params = reports.parse_params(pixel.id, {}, pixel.timezone)
    from_ = params.last.toordinal() - (DAYS - 1)
    params = reports.parse_params(
        pixel.id,
        {"from": datetime.fromordinal(from_).date().isoformat(), "to": params.last.isoformat()},
        pixel.timezone,
    )
    overview = reports.run(client, "overview", params).data
    purchases = reports.run(client, "purchases", params).data
    attribution = reports.run(client, "attribution", params).data
    tiktok: dict[str, Decimal] = {}
    for row in attribution["channels"]:
        if row["channel"] in TIKTOK_CHANNELS:
            tiktok[row["currency"]] = tiktok.get(row["currency"], Decimal(0)) + Decimal(
                row["revenue"]
            )
    last = client.query(
        "SELECT max(received_at) FROM events WHERE pixel_id = {p:String}",
        parameters={"p": pixel.id},
    ).result_rows[0][0]
    seen = last is not None and last.timestamp() > 0
    return {
        "pixel": pixel,
        "visitors": overview["totals"]["visitors"],
        "currencies": [
            {
                "currency": t["currency"],
                "orders": t["orders"],
                "revenue": t["revenue"],
                "tiktok": tiktok.get(t["currency"], Decimal(0)),
            }
            for t in purchases["totals"]
        ],
        "last_event": last.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if seen else "",
    }


def routes(gate: Gate, pages: Pages, client: Callable[[], Client]) -> list[BaseRoute]:
    async def home(request: Request) -> Response:
        try:
            viewer = gate.require_viewer(request)
        except Denied as exc:
            return pages.message(exc.status, "Log in", exc.message, login=True)
        if len(viewer.token.pixels) == 1:
            return RedirectResponse(
                f"/dashboard/{viewer.token.pixel_id}", 303, headers=SECURITY_HEADERS
            )
        pixels = [p for p in map(gate.registry.get, viewer.token.pixels) if p is not None]

        def work() -> list[dict[str, Any]]:
            ch = client()
            return [headline(ch, p) for p in pixels]

        try:
            rows = await anyio.to_thread.run_sync(work)
        except Exception:  # ClickHouse down: say so rather than fail
            return pages.message(503, "Reports unavailable", "reports are unavailable; retry later")
        return pages.render(
            "home.html",
            pixel=None,
            role=viewer.token.role,
            csrf=viewer.csrf,
            agency=True,
            rows=rows,
            days=DAYS,
            label=viewer.token.label,
        )

    async def root(request: Request) -> Response:
        viewer = gate.viewer(request)
        target = home_of(viewer.token) if viewer is not None else "/login"
        return RedirectResponse(target, 303, headers=SECURITY_HEADERS)

    return [Route("/", root, methods=["GET"]), Route("/console", home, methods=["GET"])]
