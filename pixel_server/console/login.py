"""Logging in and out of the console.

* ``GET /login``: the login form (a token field). It sets a short-lived
  ``px_login`` cookie whose value the form echoes (login CSRF: another site
  cannot log a browser in to *its* token).
* ``GET /login?token=...`` (links printed by ``pixel add`` and older
  versions): the token is checked and swapped for a single-use ticket; the page
  posts the ticket back by itself (``login.js``; a button without JavaScript),
  so the link still works once and the token never appears in a page.
* ``POST /login``: token or ticket -> a new session (:mod:`.sessions`), cookie
  ``px_session`` (HttpOnly, SameSite=Strict, Secure behind https), then the
  token's home: its pixel's dashboard, or the list of an agency's pixels.
* ``GET /logout`` shows a button; ``POST /logout`` (CSRF-checked) ends the
  session and clears the cookie.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pixel_server import credentials
from pixel_server.console.access import COOKIE, Denied, Gate, check_origin
from pixel_server.console.forms import read_form
from pixel_server.console.pages import SECURITY_HEADERS, Pages
from pixel_server.console.sessions import ABSOLUTE_S
from pixel_server.storage.pixels import ReportToken

LOGIN_COOKIE: Final = "px_login"
LOGIN_COOKIE_S: Final = 900


def home_of(token: ReportToken) -> str:
    return f"/dashboard/{token.pixel_id}" if len(token.pixels) == 1 else "/console"


def routes(gate: Gate, pages: Pages, *, https: bool) -> list[BaseRoute]:
    """``https``: the public URL is https (behind a TLS-terminating proxy)."""

    def secure(request: Request) -> bool:
        return https or request.url.scheme == "https"

    def login_form(
        request: Request, status: int = 200, error: str = "", ticket: str = ""
    ) -> Response:
        nonce = secrets.token_urlsafe(24)
        response = pages.render(
            "login.html", status, pixel=None, error=error, login_csrf=nonce, ticket=ticket
        )
        response.set_cookie(
            LOGIN_COOKIE, nonce, max_age=LOGIN_COOKIE_S, httponly=True, samesite="strict",
            secure=secure(request), path="/login",
        )  # fmt: skip
        return response

    async def login_page(request: Request) -> Response:
        presented = request.query_params.get("token", "").strip()
        if not presented:
            return login_form(request)
        token = gate.registry.token_by_hash(credentials.hash_secret(presented))
        if token is None:
            return login_form(request, 401, "This login link is not valid (revoked or mistyped).")
        return login_form(request, ticket=gate.sessions.ticket(token.token_hash))

    async def login(request: Request) -> Response:
        try:
            check_origin(request)
            form = await read_form(request)
        except Denied as exc:
            return pages.message(exc.status, "Log in", exc.message, login=True)
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(
            form.get("login_csrf", "").encode(), expected.encode()
        ):
            return login_form(request, 403, "The login form expired; enter the token again.")
        token: ReportToken | None = None
        if form.get("ticket"):
            token_hash = gate.sessions.redeem(form["ticket"])
            token = gate.registry.token_by_hash(token_hash) if token_hash else None
            error = "This login link was already used or is too old; enter the token."
        else:
            presented = form.get("token", "").strip()
            if presented:
                token = gate.registry.token_by_hash(credentials.hash_secret(presented))
            error = "That token is not valid (revoked, expired or mistyped)."
        if token is None:
            return login_form(request, 401, error)
        session_id = gate.sessions.open(token.token_hash)
        response = RedirectResponse(home_of(token), status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(
            COOKIE, session_id, max_age=int(ABSOLUTE_S), httponly=True, samesite="strict",
            secure=secure(request), path="/",
        )  # fmt: skip
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    async def logout_page(request: Request) -> Response:
        viewer = gate.viewer(request)
        if viewer is None:
            return pages.message(200, "Logged out", "You are logged out.", login=True)
        return pages.render("logout.html", pixel=None, csrf=viewer.csrf, role=viewer.token.role)

    async def logout(request: Request) -> Response:
        try:
            viewer = gate.require_viewer(request)
            form = await read_form(request)
            gate.check_csrf(request, viewer, form)
        except Denied as exc:
            return pages.message(exc.status, "Log out", exc.message, login=exc.status == 401)
        if viewer.session_id:
            gate.sessions.close(viewer.session_id)
        response = pages.message(200, "Logged out", "You are logged out.", login=True)
        response.delete_cookie(COOKIE, path="/", samesite="strict", httponly=True)
        return response

    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout_page, methods=["GET"]),
        Route("/logout", logout, methods=["POST"]),
    ]
