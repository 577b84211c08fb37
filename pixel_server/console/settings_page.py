"""The pixel's settings page (owner only): view, change, check TikTok, audit log.

* ``GET /dashboard/{pixel_id}/settings``: the form, the TikTok check's last
  answer, the backfill's progress and the audit log.
* ``POST /dashboard/{pixel_id}/settings``: the changed fields go through the
  same validation as ``pixel-server pixel update`` (``validate_changes``, then
  the management operation ``pixel.update``, which records the audit entry),
  so the page shows the CLI's own messages. Credentials are write-only: the
  form shows whether each is set; an empty field keeps it, "clear" removes it.
* ``POST /dashboard/{pixel_id}/settings/tiktok-check``: see :mod:`.tiktok_check`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pixel_server.console.access import Access, Denied, Gate
from pixel_server.console.forms import Form, owner_form
from pixel_server.console.pages import SECURITY_HEADERS, Pages
from pixel_server.console.tiktok_check import CHECK_ACTION
from pixel_server.pixel import PLATFORMS, SECRET_FIELDS, Pixel, RegistryError
from pixel_server.pixel import validate_changes as validate

Run = Callable[[str, dict[str, Any]], Any]  # Management.run

# (field, label, kind, hint); kinds: text, lines, select:<choices>, number, check, secret
FIELDS: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("name", "Name", "text", ""),
    ("origins", "Store origins (one per line)", "lines", "https://shop.example.com"),
    ("platform", "Platform", "select", ""),
    ("store_id", "Store id", "text", "Ecwid store id, BigCommerce hash, Shopify domain, Woo URL"),
    ("store_api_base", "Store API base URL", "text", ""),
    ("store_api_token", "Store API token", "secret", ""),
    ("webhook_secret", "Webhook secret", "secret", ""),
    ("tiktok_pixel_code", "TikTok pixel code", "text", "e.g. C4A1B2C3D4E5F6"),
    ("tiktok_access_token", "TikTok access token", "secret", ""),
    ("tiktok_test_event_code", "TikTok test event code", "text", "e.g. TEST12345"),
    ("timezone", "Time zone", "text", "e.g. Europe/Berlin"),
    ("currency", "Currency", "text", "ISO 4217, e.g. EUR"),
    ("default_phone_region", "Phone region", "text", "e.g. US"),
    ("click_window_days", "Click window (days)", "number", "1 to 90"),
    ("consent_mode", "Consent mode", "select", ""),
    ("forward_browser", "Forward browser events (TikTok's pixel is not on the page)", "check", ""),
    ("load_tiktok_pixel", "Also load TikTok's own pixel in the snippet", "check", ""),
    ("ip_truncation", "Truncate IP addresses", "check", ""),
    ("enabled", "Pixel enabled", "check", ""),
)
CHOICES: Final = {"platform": PLATFORMS, "consent_mode": ("granted", "hold")}


def candidate(form: Form) -> dict[str, Any]:
    """The form as pixel settings (unvalidated); secrets only when typed or cleared."""
    out: dict[str, Any] = {}
    for name, _, kind, _ in FIELDS:
        if kind == "check":
            out[name] = name in form
        elif kind == "secret":
            if form.get(f"clear_{name}"):
                out[name] = ""
            elif form.get(name, "").strip():
                out[name] = form[name].strip()
        elif kind == "lines":
            out[name] = [line.strip() for line in form.get(name, "").splitlines() if line.strip()]
        elif name in form:
            out[name] = form[name]
    return out


def changed(pixel: Pixel, values: dict[str, Any]) -> dict[str, Any]:
    """Validated values that differ from the pixel's (secrets: any typed value)."""
    checked = validate(values)
    return {k: v for k, v in checked.items() if getattr(pixel, k) != v}


def routes(
    gate: Gate, pages: Pages, run: Run, extra: Callable[[Pixel], dict[str, Any]]
) -> list[BaseRoute]:
    """``run``: a management operation; ``extra``: more context for the page
    (the TikTok check's last answer, the backfill's progress)."""

    async def show(
        request: Request,
        access: Access,
        status: int = 200,
        error: str = "",
        form: Form | None = None,
    ) -> Response:
        pixel = access.pixel
        audit = await anyio.to_thread.run_sync(run, "audit.list", {"pixel": pixel.id, "limit": 30})
        check = next((e for e in audit if e["action"] == CHECK_ACTION), None)
        values = pixel.public()
        if form is not None:  # what the owner typed, so a mistake is fixed, not retyped
            values.update({k: v for k, v in candidate(form).items() if k not in SECRET_FIELDS})
        return pages.render(
            "settings.html",
            status,
            **access.chrome(),
            fields=FIELDS,
            choices=CHOICES,
            values=values,
            secrets={name: bool(getattr(pixel, name)) for name in SECRET_FIELDS},
            error=error,
            saved=request.query_params.get("saved", ""),
            audit=audit,
            check={**check["changes"], "at": check["at"]} if check else None,
            **extra(pixel),
        )

    async def settings_page(request: Request) -> Response:
        pixel_id = request.path_params["pixel_id"]
        try:
            access = gate.authorize(request, pixel_id, owner=True)
        except Denied as exc:
            return pages.denied(exc)
        return await show(request, access)

    async def save(request: Request) -> Response:
        pixel_id = request.path_params["pixel_id"]
        try:
            access, form = await owner_form(gate, request)
        except Denied as exc:
            return pages.denied(exc)
        try:
            changes = changed(access.pixel, candidate(form))
            if changes:
                args = {"id": pixel_id, "actor": access.viewer.actor, **changes}
                await anyio.to_thread.run_sync(run, "pixel.update", args)
        except RegistryError as exc:
            return await show(request, access, 400, str(exc), form)
        saved = ",".join(changes) or "nothing"
        return RedirectResponse(
            f"/dashboard/{pixel_id}/settings?saved={saved}", 303, headers=SECURITY_HEADERS
        )

    return [
        Route("/dashboard/{pixel_id}/settings", settings_page, methods=["GET"]),
        Route("/dashboard/{pixel_id}/settings", save, methods=["POST"]),
    ]
