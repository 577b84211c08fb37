"""Helpers for the console tests: logging in the way a browser does, reading
the CSRF token off a page, and the pages' inline-script check."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.testclient import TestClient

from pixel_server.app import Runtime, create_app
from pixel_server.config import Settings
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


@contextmanager
def running_server(settings: Settings) -> Iterator[tuple[str, Runtime]]:
    """The real app on uvicorn in a thread (lifespan on): (base URL, runtime).
    Needed for server-sent events, which the in-process test client buffers."""
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{settings.port}", app.state.runtime
    finally:
        server.should_exit = True
        thread.join(timeout=30)
