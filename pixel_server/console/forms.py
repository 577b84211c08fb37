"""Reading the console's HTML forms (``application/x-www-form-urlencoded``).

The forms are small and flat, so the standard library parses them; a body over
``MAX_BODY`` or of another type is a 4xx, never a 500.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl

from starlette.requests import Request

from pixel_server.console.access import Access, Denied, Gate

MAX_BODY: Final = 64 * 1024


class Form(dict[str, str]):
    """Field -> last value, plus every value of repeated fields."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__(pairs)
        self.lists: dict[str, list[str]] = {}
        for key, value in pairs:
            self.lists.setdefault(key, []).append(value)

    def all(self, key: str) -> list[str]:
        return self.lists.get(key, [])


async def read_form(request: Request) -> Form:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise Denied(413, "too_large", "the form is too large")
    if kind != "application/x-www-form-urlencoded":
        if not body:  # a bodiless POST is an empty form
            return Form([])
        raise Denied(415, "unsupported_media_type", "send the form as a web form")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise Denied(400, "invalid_form", "the form could not be read") from None
    return Form(pairs)


async def owner_form(gate: Gate, request: Request) -> tuple[Access, Form]:
    """An owner's POST to one of the pixel's pages, CSRF-checked, with its form."""
    access = gate.authorize(request, request.path_params["pixel_id"], owner=True)
    form = await read_form(request)
    gate.check_csrf(request, access.viewer, form)
    return access, form
