"""'Check TikTok connection': one test event, TikTok's answer in plain words.

The event goes the way the forwarder sends every event: the stored-record
mapping (``tiktok.encode_event``), the request body (``tiktok.encode_body``)
with the pixel's test event code, the pixel's API base and access token, and
the forwarder's reading of the answer (``tiktok.classify``). It is sent at
once rather than queued in the pixel's lane, so the owner sees the answer on
the page; it is not stored as an event (it would count in the reports).

With a test event code the event is a ``PageView`` that shows only in TikTok
Events Manager's "Test events"; without one it is a custom
``ConnectionCheck`` event, which no campaign optimises for.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pixel_server.console.access import Denied, Gate
from pixel_server.console.forms import owner_form
from pixel_server.console.pages import SECURITY_HEADERS, Pages
from pixel_server.pipeline.record import Record
from pixel_server.pixel import Pixel
from pixel_server.sinks import tiktok

TIMEOUT_S: Final = 10.0
CHECK_ACTION: Final = "tiktok.check"


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    code: int
    message: str  # TikTok's own message
    text: str  # what it means, for the page

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "code": self.code, "message": self.message, "text": self.text}


def explain(answer: tiktok.Answer, pixel: Pixel) -> CheckResult:
    """TikTok's answer in the words a merchant acts on."""
    code, message = answer.code, answer.message
    if answer.kind == "sent":
        where = (
            f"it shows under Test events with code {pixel.tiktok_test_event_code}"
            if pixel.tiktok_test_event_code
            else "set a test event code to see it under Test events"
        )
        return CheckResult(
            True, code, message, f"TikTok accepted the test event ({code}): {where}."
        )
    if code == tiktok.INVALID_TOKEN:
        text = f"access token rejected ({code}): enter a new token"
    elif code == tiktok.NO_PERMISSION:
        text = (
            f"this access token may not send events to pixel {pixel.tiktok_pixel_code} ({code}):"
            " check the pixel code, or create the token in that pixel's settings"
        )
    elif code == tiktok.INVALID_PARAMETER:
        text = f"TikTok refused the event ({code}: {message}): check the pixel code"
    elif code == tiktok.RATE_LIMITED or answer.http_status == 429:
        text = f"TikTok is rate limiting ({code or 429}): try again in a minute"
    elif answer.http_status == 0:
        text = f"TikTok could not be reached ({message}): try again later"
    elif answer.http_status >= 500:
        text = f"TikTok had a problem (HTTP {answer.http_status}): try again later"
    else:
        text = f"TikTok answered {code or answer.http_status}: {message}"
    return CheckResult(False, code, message, text)


def test_record(pixel: Pixel, now: float) -> Record:
    page = (pixel.origins[0] + "/") if pixel.origins and pixel.origins[0] != "null" else ""
    name = "PageView" if pixel.tiktok_test_event_code else "ConnectionCheck"
    return Record(
        pixel_id=pixel.id, event=name, received_event=name,
        event_id=f"connection-check:{uuid.uuid4().hex[:16]}", source="server",
        event_time=now, received_at=now, user_agent="pixel-server connection check",
        page_url=page,
    )  # fmt: skip


async def check(pixel: Pixel, client: httpx.AsyncClient | None = None) -> CheckResult:
    if not (pixel.tiktok_pixel_code and pixel.tiktok_access_token):
        return CheckResult(
            False, 0, "", "enter the TikTok pixel code and access token first, then check"
        )
    body = tiktok.encode_body(
        pixel.tiktok_pixel_code,
        [tiktok.encode_event(test_record(pixel, time.time()))],
        pixel.tiktok_test_event_code,
    )
    url = pixel.tiktok_api_base.rstrip("/") + tiktok.API_PATH
    headers = {"Access-Token": pixel.tiktok_access_token, "Content-Type": "application/json"}
    own = client is None
    http = client or httpx.AsyncClient(timeout=TIMEOUT_S)
    try:
        response = await http.post(url, content=body, headers=headers)
        answer = tiktok.classify(
            response.status_code, response.content, response.headers.get("retry-after")
        )
    except httpx.TimeoutException:
        answer = tiktok.Answer("retry", message=f"no answer within {TIMEOUT_S:g} s")
    except (httpx.HTTPError, OSError) as exc:
        answer = tiktok.Answer("retry", message=f"connection failed: {type(exc).__name__}")
    finally:
        if own:
            await http.aclose()
    return explain(answer, pixel)


Record_ = Callable[[str, str, str, dict[str, Any]], None]  # (pixel, actor, action, changes)


def routes(gate: Gate, pages: Pages, record: Record_) -> list[BaseRoute]:
    """``record``: writes the answer to the audit log, where the settings page
    and the setup checklist read it."""

    async def check_route(request: Request) -> Response:
        pixel_id = request.path_params["pixel_id"]
        try:
            access, _ = await owner_form(gate, request)
        except Denied as exc:
            return pages.denied(exc)
        result = await check(access.pixel)
        await anyio.to_thread.run_sync(
            record, pixel_id, access.viewer.actor, CHECK_ACTION, result.as_json()
        )
        return RedirectResponse(
            f"/dashboard/{pixel_id}/settings#tiktok-check", 303, headers=SECURITY_HEADERS
        )

    return [Route("/dashboard/{pixel_id}/settings/tiktok-check", check_route, methods=["POST"])]
