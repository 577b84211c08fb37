"""Helpers for the console tests: logging in the way a browser does, reading
the CSRF token off a page, and the pages' inline-script check."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

from pixel_server.console.access import COOKIE

_LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_TICKET = re.compile(r'name="ticket" value="([^"]+)"')
# A <script> element without src= is inline.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


def login(client: TestClient, token: str) -> Any:
    """Log in through the login form; returns the POST's answer (303 on success)."""
    client.cookies.clear()
    form = client.get("/login")
    nonce = _LOGIN_CSRF.search(form.text)
    assert nonce, form.text
    return client.post(
        "/login", data={"login_csrf": nonce.group(1), "token": token}, follow_redirects=False
    )


def legacy_ticket(client: TestClient, token: str) -> tuple[str, str, str]:
    """GET /login?token=...: the page's (login_csrf, ticket) and its HTML."""
    page = client.get(f"/login?token={token}")
    nonce, ticket = _LOGIN_CSRF.search(page.text), _TICKET.search(page.text)
    assert nonce and ticket, page.text
    return nonce.group(1), ticket.group(1), page.text


def csrf_of_page(client: TestClient, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, page.text
    found = _CSRF.search(page.text)
    assert found, "no CSRF field on " + url
    return found.group(1)


def session_cookie(client: TestClient) -> str:
    return client.cookies.get(COOKIE) or ""
