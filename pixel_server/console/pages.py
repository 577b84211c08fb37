"""Rendering console pages: the Jinja2 environment, number formats and the
headers every page carries.

Every page is served with ``Content-Security-Policy``: scripts only from our
own origin (the console has no inline script at all, so there is nothing to
hash), nothing may frame it (``frame-ancestors 'none'``), forms post only
here. Inline *styles* are allowed because the server-rendered SVG charts carry
their own ``<style>``; a style cannot run code.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from babel.numbers import format_currency, format_decimal
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from pixel_server.console.access import Denied

DASHBOARDS_DIR: Final = Path(__file__).resolve().parent.parent.parent / "dashboards"
STATIC_PREFIX: Final = "/static/dashboard"
LOCALE: Final = "en_US"
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "private, no-store",
}


def amount(value: Any, currency: str = "") -> str:
    """1234.5 -> '1,234.50', or '$1,234.50' / '¥1,235' with a currency."""
    if value is None:
        return "–"
    if currency and len(currency) == 3:
        try:
            return str(format_currency(Decimal(value), currency, locale=LOCALE))
        except (ValueError, KeyError):
            pass
    return f"{Decimal(value):,.2f}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def number(value: Any) -> str:
    return "–" if value is None else str(format_decimal(int(value), locale=LOCALE))


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(DASHBOARDS_DIR),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["amount"] = amount
    env.filters["percent"] = percent
    env.filters["number"] = number
    return env


class Pages:
    """Renders templates from ``dashboards/`` into responses with the security headers."""

    def __init__(self, env: Environment | None = None) -> None:
        self.env = env or environment()

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = self.env.get_template(name).render(static=STATIC_PREFIX, **context)
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def denied(self, exc: Denied) -> HTMLResponse:
        title = {401: "Log in", 403: "Not allowed"}.get(exc.status, "Not possible")
        return self.message(exc.status, title, exc.message, login=exc.status == 401)

    def message(
        self, status: int, title: str, message: str, *, login: bool = False, **context: Any
    ) -> HTMLResponse:
        context.setdefault("pixel", None)
        return self.render(
            "message.html", status, title=title, message=message, login=login, **context
        )
