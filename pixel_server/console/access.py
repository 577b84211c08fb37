"""Who is asking, and what they may see: the console's gate.

A caller is a *viewer*: a valid report token, presented either as
``Authorization: Bearer <token>`` (scripts, the report API) or through a
console session cookie (browsers, see :mod:`.sessions`). A token may read one
pixel or, for an agency, several; its role is ``owner`` (everything) or
``reader`` (reports and the live view only: never settings, secrets, the team
page or the install page).

Answers: no or unknown credentials 401; a pixel the token does not cover 403;
an owner page for a reader 403; an unknown pixel 404.

State-changing requests from a session must carry its CSRF token (form field
``csrf`` or header ``X-CSRF-Token``) and, when the browser sends one, an
``Origin`` of this server; otherwise 403. Bearer requests need neither: a
browser never adds that header on its own.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from starlette.requests import Request

from pixel_server import credentials
from pixel_server.console.sessions import SessionStore, csrf_of
from pixel_server.pixel import Pixel
from pixel_server.storage.pixels import ReportToken

COOKIE: Final = "px_session"


class Registry(Protocol):
    """What the gate reads of the pixel registry."""

    loaded: bool

    def get(self, pixel_id: str) -> Pixel | None: ...

    def token_by_hash(self, token_hash: str) -> ReportToken | None: ...


class Denied(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Viewer:
    token: ReportToken
    session_id: str = ""  # empty: a bearer request

    @property
    def csrf(self) -> str:
        return csrf_of(self.session_id) if self.session_id else ""

    @property
    def actor(self) -> str:
        """How the audit log names this viewer: the token's label and id, never the token."""
        return f"{self.token.label or 'unlabelled token'} ({self.token.id})"


@dataclass(frozen=True)
class Access:
    pixel: Pixel
    role: str  # owner | reader
    viewer: Viewer

    def chrome(self) -> dict[str, Any]:
        """What every pixel page's header needs (navigation by role, logout form)."""
        return {
            "pixel": self.pixel,
            "role": self.role,
            "csrf": self.viewer.csrf,
            "agency": len(self.viewer.token.pixels) > 1,
        }


class Gate:
    def __init__(self, registry: Registry, sessions: SessionStore) -> None:
        self.registry = registry
        self.sessions = sessions

    def viewer(self, request: Request) -> Viewer | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            token = self.registry.token_by_hash(credentials.hash_secret(value.strip()))
            return Viewer(token) if token is not None else None
        session_id = request.cookies.get(COOKIE, "")
        session = self.sessions.get(session_id)
        if session is None:
            return None
        token = self.registry.token_by_hash(session.token_hash)
        if token is None:
            # Revoked or expired since login: the session ends with it (unless
            # the registry is not loaded yet, e.g. ClickHouse down at start).
            if self.registry.loaded:
                self.sessions.end_for_token(session.token_hash)
            return None
        return Viewer(token, session_id)

    def require_viewer(self, request: Request) -> Viewer:
        viewer = self.viewer(request)
        if viewer is None:
            if request.headers.get("authorization") or request.cookies.get(COOKIE):
                raise Denied(401, "invalid_token", "your login is no longer valid; log in again")
            raise Denied(401, "unauthorized", "log in with a report token")
        return viewer

    def authorize(self, request: Request, pixel_id: str, *, owner: bool = False) -> Access:
        """The caller's access to ``pixel_id``, or :class:`Denied` (401/403/404)."""
        viewer = self.require_viewer(request)
        if pixel_id not in viewer.token.pixels:
            raise Denied(403, "wrong_pixel", "this token belongs to another pixel")
        pixel = self.registry.get(pixel_id)
        if pixel is None:
            raise Denied(404, "unknown_pixel", "no such pixel")
        if owner and viewer.token.role != "owner":
            raise Denied(403, "owner_only", "only the pixel's owner may open this page")
        return Access(pixel, viewer.token.role, viewer)

    @staticmethod
    def check_csrf(request: Request, viewer: Viewer, form: Mapping[str, str]) -> None:
        """Raise 403 unless a session's request carries its CSRF token and our origin."""
        if not viewer.session_id:
            return
        check_origin(request)
        presented = form.get("csrf") or request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(presented.encode(), viewer.csrf.encode()):
            raise Denied(403, "csrf", "this form has expired; reload the page and try again")


def check_origin(request: Request) -> None:
    """A browser names the page a form came from; it must be one of ours."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    if origin == "null" or urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Denied(403, "csrf", "this request came from another site")
