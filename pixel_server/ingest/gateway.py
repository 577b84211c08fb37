"""TikTok's Events API, served by us: an integration written for TikTok
switches to pixel-server by changing its base URL.

Paths, header and answers are TikTok's:

* ``POST /open_api/v1.3/event/track/`` — Events API 2.0 (``event_source``,
  ``event_source_id``, ``data[]``), the body ``/api/v1/events`` takes;
* ``POST /open_api/v1.3/pixel/track/`` and ``/pixel/batch/`` — Events API 1.0
  (``pixel_code``, ``event``, ``timestamp``, ``context``, ``properties``),
  rewritten as 2.0 events by :mod:`pixel_server.events.tiktok_v1`;
* ``Access-Token: <the pixel's API key>``; ``event_source_id`` / ``pixel_code``
  is the pixel's TikTok pixel code or our pixel id;
* the same three under ``/open_api/v1.2/``, which older tags still call.

Events go through :class:`~pixel_server.ingest.api.ServerIntake`, like
``/api/v1/events``: same validation, hashing, write-ahead log, dedup and
forwarding (source ``server``; ``test_event_code`` is kept and passed on).

Answers are TikTok's envelope ``{"code", "message", "request_id", "data"}``
with **HTTP 200 whatever the code**, because that is what TikTok answers and
what its SDK, RudderStack and Stape expect (TikTok's SDK raises on any other
status, so a 4xx would reach its caller as another exception than TikTok's):

=======  ==============================================================
code     when
=======  ==============================================================
0        every event accepted (same-source duplicates count as accepted)
20001    some accepted, some rejected: ``data.rejected`` lists them
40001    the key's pixel is not the one the body names, or it is disabled
40002    the body, or every event in it, is invalid; the message names the
         field TikTok's way: ``data.0.properties.currency: ...``
40100    rate limited (also a ``Retry-After`` header)
40104    no ``Access-Token`` (TikTok's "empty access token")
40105    ``Access-Token`` is not a key of ours
=======  ==============================================================

The one exception is a full write-ahead log: HTTP 503 with ``Retry-After``
(code 50002), so that every client retries, as after TikTok's own 5xx —
nothing was accepted. A code 0 or 20001 means the accepted events are on disk.

``data`` carries our details: ``accepted``, ``duplicates``, ``dropped`` and
``rejected`` (index, code, message, field in TikTok's dotted form) when the
events were read, ``error`` (our error code, message and field) when not.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pixel_server.errors import ApiError
from pixel_server.events.schema import EventError, decode_api_body
from pixel_server.events.tiktok_v1 import (
    V1Request,
    decode_v1_batch,
    decode_v1_track,
    v1_field,
)
from pixel_server.ingest.api import MAX_BODY, MAX_EVENTS, ServerIntake, body_error
from pixel_server.ingest.http import read_body
from pixel_server.ingest.service import IntakeResult, Rejection

BASE: Final = "/open_api/v1.3"
OLDER_BASE: Final = "/open_api/v1.2"
EVENT_TRACK: Final = f"{BASE}/event/track/"
PIXEL_TRACK: Final = f"{BASE}/pixel/track/"
PIXEL_BATCH: Final = f"{BASE}/pixel/batch/"
ROUTE: Final = "gateway"  # the label of refusals in pixel_requests_rejected_total

OK: Final = 0
PARTIAL: Final = 20001
NO_PERMISSION: Final = 40001
INVALID: Final = 40002
TOO_MANY_REQUESTS: Final = 40100
NO_TOKEN: Final = 40104
BAD_TOKEN: Final = 40105
UNAVAILABLE: Final = 50002
CODES: Final = (OK, PARTIAL, NO_PERMISSION, INVALID, TOO_MANY_REQUESTS, NO_TOKEN, BAD_TOKEN,
                 UNAVAILABLE)  # fmt: skip

# Our refusals (ApiError codes) as TikTok's; anything else is 40002.
_TIKTOK_CODES: Final = {
    "missing_api_key": NO_TOKEN,
    "invalid_api_key": BAD_TOKEN,
    "wrong_pixel": NO_PERMISSION,
    "pixel_disabled": NO_PERMISSION,
    "rate_limited": TOO_MANY_REQUESTS,
    "log_full": UNAVAILABLE,
}
_MESSAGES: Final = {
    NO_TOKEN: "Access token is null: send it in the Access-Token header.",
    BAD_TOKEN: "Access token is incorrect or has been revoked.",
    NO_PERMISSION: "No permission to operate pixel code: {source_id}.",
    TOO_MANY_REQUESTS: "Too many requests. Please retry in some time.",
    UNAVAILABLE: "System busy: the event log is full; retry later.",
}


def tiktok_field(path: str) -> str:
    """Our field path (``data[3].properties.contents[0].price``) as TikTok
    writes it (``data.3.properties.contents.0.price``)."""
    return path.replace("[", ".").replace("]", "")


def _answer(
    code: int, message: str, data: dict[str, Any], status: int = 200, **headers: str
) -> Response:
    body = {"code": code, "message": message, "request_id": uuid.uuid4().hex, "data": data}
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _refusal(exc: ApiError, source_id: str) -> Response:
    code = _TIKTOK_CODES.get(exc.code, INVALID)
    if code == INVALID:
        where = tiktok_field(exc.field) + ": " if exc.field else ""
        message = where + exc.message
    else:
        message = _MESSAGES[code].format(source_id=source_id[:64])
    error = {"code": exc.code, "message": exc.message, "field": tiktok_field(exc.field or "")}
    headers = {k: v for k, v in exc.headers.items() if k == "retry-after"}
    return _answer(code, message, {"error": error}, 503 if code == UNAVAILABLE else 200, **headers)


def _outcome(outcome: IntakeResult) -> Response:
    data = outcome.as_json()
    for rejection in data["rejected"]:
        rejection["field"] = tiktok_field(rejection["field"])
    if not outcome.rejected:
        return _answer(OK, "OK", data)
    first = data["rejected"][0]
    detail = f"{first['field']}: {first['message']}"
    if outcome.accepted or outcome.dropped:
        return _answer(PARTIAL, f"Partial success: {len(outcome.rejected)} events rejected; "
                       f"first {detail}", data)  # fmt: skip
    return _answer(INVALID, detail, data)


# ------------------------------------------------------------- the three paths

Handler = Callable[[ServerIntake, Request], Awaitable[IntakeResult]]


async def _event_track(intake: ServerIntake, request: Request) -> IntakeResult:
    pixel = intake.pixel_for_key(_access_token(request))
    body = await read_body(request, MAX_BODY)
    try:
        envelope = decode_api_body(body, max_events=MAX_EVENTS)
    except EventError as exc:
        raise body_error(exc) from None
    request.state.source_id = envelope.event_source_id
    intake.check_target(pixel, envelope.event_source_id, "event_source_id")
    return await intake.ingest(
        pixel, envelope.data, test_event_code=envelope.test_event_code or "", prefix="data"
    )


def _v1(decode: Callable[[bytes], V1Request], prefix: str) -> Handler:
    """pixel/track/ (``prefix`` "") or pixel/batch/ (``prefix`` "batch")."""

    async def handle(intake: ServerIntake, request: Request) -> IntakeResult:
        pixel = intake.pixel_for_key(_access_token(request))
        body = await read_body(request, MAX_BODY)
        try:
            sent = decode(body)
        except EventError as exc:
            raise body_error(exc) from None
        request.state.source_id = sent.pixel_code
        intake.check_target(pixel, sent.pixel_code, "pixel_code")
        for _, exc in sent.failed:  # refused before the ingestor saw them: count them here
            intake.metrics.events_received.labels("server").inc()
            intake.metrics.events_rejected.labels("server", exc.code).inc()
        outcome = await intake.ingest(
            pixel, sent.events, test_event_code=sent.test_event_code, prefix="data"
        )
        return _as_v1(outcome, sent, prefix)

    return handle


def _as_v1(outcome: IntakeResult, sent: V1Request, prefix: str) -> IntakeResult:
    """Rejections by the 1.0 item index and field path the client sent."""

    def item(index: int) -> str:
        return f"{prefix}[{index}]" if prefix else ""

    rejected = [
        Rejection(i, exc.code, exc.message, exc.field) for i, exc in sent.failed
    ] + [
        Rejection(sent.positions[r.index], r.code, r.message,
                  v1_field(r.field, item(sent.positions[r.index])))
        for r in outcome.rejected
    ]  # fmt: skip
    outcome.rejected = sorted(rejected, key=lambda r: r.index)
    return outcome


def _access_token(request: Request) -> str:
    token = request.headers.get("access-token", "").strip()
    if not token:
        raise ApiError(401, "missing_api_key", "send the pixel's API key as 'Access-Token'")
    return token


def _endpoint(intake: ServerIntake, handle: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        request.state.source_id = ""
        try:
            outcome = await handle(intake, request)
        except ApiError as exc:
            intake.count_refusal(ROUTE, exc)
            return _refusal(exc, request.state.source_id)
        return _outcome(outcome)

    return endpoint


def routes(intake: ServerIntake) -> list[Route]:
    """The three paths under ``/open_api/v1.3/`` and, for integrations that
    still call it (older server-side GTM tags), ``/open_api/v1.2/``."""
    handlers = {
        EVENT_TRACK: _endpoint(intake, _event_track),
        PIXEL_TRACK: _endpoint(intake, _v1(decode_v1_track, "")),
        PIXEL_BATCH: _endpoint(intake, _v1(decode_v1_batch, "batch")),
    }
    return [
        Route(path.replace(BASE, base), handler, methods=["POST"])
        for base in (BASE, OLDER_BASE)
        for path, handler in handlers.items()
    ]


# ------------------------------------------------------------------- OpenAPI


def openapi_paths() -> dict[str, Any]:
    """The gateway's operations and schemas, for ``/openapi.json``."""
    raw = {"type": "object", "description": "See TikTok's Events API 1.0 reference."}
    v1_event = {
        "type": "object",
        "required": ["event"],
        "properties": {
            "event": {"type": "string"},
            "event_id": {"type": "string"},
            "timestamp": {"type": "string", "description": "ISO 8601; UTC when no offset"},
            "context": raw,
            "properties": raw,
        },
    }
    top = {
        "pixel_code": {"type": "string", "minLength": 1, "maxLength": 64},
        "test_event_code": {"type": "string", "maxLength": 64},
    }
    schemas = {
        "TikTokResponse": {
            "type": "object",
            "required": ["code", "message", "request_id", "data"],
            "properties": {
                "code": {"type": "integer", "enum": list(CODES)},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
                "data": {"type": "object"},
            },
        },
        "PixelTrackRequest": {
            **v1_event,
            "required": ["pixel_code", "event"],
            "properties": {**v1_event["properties"], **top},
        },
        "PixelBatchRequest": {
            "type": "object",
            "required": ["pixel_code", "batch"],
            "properties": {
                **top,
                "batch": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_EVENTS,
                    "items": v1_event,
                },
            },
        },
    }

    def operation(summary: str, schema: str) -> dict[str, Any]:
        answer = {"content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/TikTokResponse"}}}}  # fmt: skip
        return {
            "post": {
                "summary": summary,
                "description": "TikTok-compatible: HTTP 200 with TikTok's code in the body.",
                "security": [{"accessToken": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
                    },
                },
                "responses": {
                    "200": {"description": "TikTok's envelope; see its code", **answer},
                    "503": {"description": "Event log full; see Retry-After", **answer},
                },
            }
        }

    return {
        "paths": {
            EVENT_TRACK: operation("TikTok Events API 2.0", "EventsRequest"),
            PIXEL_TRACK: operation("TikTok Events API 1.0, one event", "PixelTrackRequest"),
            PIXEL_BATCH: operation("TikTok Events API 1.0, a batch", "PixelBatchRequest"),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "accessToken": {"type": "apiKey", "in": "header", "name": "Access-Token"}
            },
        },
    }
