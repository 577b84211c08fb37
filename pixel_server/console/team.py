"""The team page (owner only): who may see the pixel, with which role.

* ``GET /dashboard/{pixel_id}/team``: the pixel's tokens (agency tokens
  that include it too): label, role, pixels, created, expiry, state.
* ``POST /dashboard/{pixel_id}/team``: issue a token (label, role
  reader|owner, optional expiry date); the new token is shown once, on that
  answer only, with its login link.
* ``POST /dashboard/{pixel_id}/team/revoke``: revoke one of the pixel's
  tokens by id; its sessions end at their next request.

Both go through the management operations ``token.add`` / ``token.revoke``,
like ``pixel-server token ...``, and are recorded in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pixel_server.console.access import Access, Denied, Gate
from pixel_server.console.forms import owner_form
from pixel_server.console.pages import SECURITY_HEADERS, Pages
from pixel_server.pixel import ROLES, RegistryError

Run = Callable[[str, dict[str, Any]], Any]  # Management.run


def _day(seconds: float | None) -> str:
    return datetime.fromtimestamp(seconds, UTC).date().isoformat() if seconds else ""


def expiry_of(value: str) -> str | None:
    """A date from the form (the token works through that day, UTC) as ISO-8601."""
    value = value.strip()
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise RegistryError("expiry must be a date, e.g. 2026-12-31") from None
    return datetime.combine(day, time(23, 59, 59), UTC).isoformat()


def routes(gate: Gate, pages: Pages, run: Run, base_url: str) -> list[BaseRoute]:
    async def show(
        access: Access, status: int = 200, error: str = "", issued: dict[str, Any] | None = None
    ) -> Response:
        pixel = access.pixel
        tokens = await anyio.to_thread.run_sync(run, "token.list", {"pixel": pixel.id})
        rows = [
            {**t, "created": _day(t["created_at"]), "expires": _day(t["expires_at"]),
             "current": t["id"] == access.viewer.token.id}
            for t in tokens
        ]  # fmt: skip
        return pages.render(
            "team.html",
            status,
            **access.chrome(),
            tokens=rows,
            roles=ROLES,
            error=error,
            issued=issued,
            base_url=base_url,
        )

    async def team_page(request: Request) -> Response:
        try:
            access = gate.authorize(request, request.path_params["pixel_id"], owner=True)
        except Denied as exc:
            return pages.denied(exc)
        return await show(access)

    async def issue(request: Request) -> Response:
        try:
            access, form = await owner_form(gate, request)
        except Denied as exc:
            return pages.denied(exc)
        try:
            args = {
                "pixel": access.pixel.id,
                "role": form.get("role", "reader"),
                "label": form.get("label", "").strip(),
                "expires": expiry_of(form.get("expires", "")),
                "actor": access.viewer.actor,
            }
            if not args["label"]:
                raise RegistryError("give the token a label, e.g. the person or agency's name")
            issued = await anyio.to_thread.run_sync(run, "token.add", args)
        except RegistryError as exc:
            return await show(access, 400, str(exc))
        return await show(access, issued={**issued, "label": args["label"]})

    async def revoke(request: Request) -> Response:
        try:
            access, form = await owner_form(gate, request)
        except Denied as exc:
            return pages.denied(exc)
        try:
            args = {"token": form.get("id", ""), "pixel": access.pixel.id,
                    "actor": access.viewer.actor}  # fmt: skip
            await anyio.to_thread.run_sync(run, "token.revoke", args)
        except RegistryError as exc:
            return await show(access, exc.status, str(exc))
        return RedirectResponse(f"/dashboard/{access.pixel.id}/team", 303, headers=SECURITY_HEADERS)

    return [
        Route("/dashboard/{pixel_id}/team", team_page, methods=["GET"]),
        Route("/dashboard/{pixel_id}/team", issue, methods=["POST"]),
        Route("/dashboard/{pixel_id}/team/revoke", revoke, methods=["POST"]),
    ]
