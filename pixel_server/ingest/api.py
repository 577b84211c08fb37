"""``POST /api/v1/events`` for store back ends: TikTok's Events API 2.0 body,
so code written for TikTok can point at us. Plus the published schemas."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixel_server import credentials
from pixel_server.errors import ApiError
from pixel_server.events.schema import EventError, decode_api_body, event_json_schema
from pixel_server.ingest.http import log_full, rate_limited, read_body, require_content_type
from pixel_server.pipeline.steps import Context
from pixel_server.pipeline.wal import LogFull
from pixel_server.reports.openapi import report_components, report_paths

if TYPE_CHECKING:
    from pixel_server.runtime import Runtime

MAX_BODY = 5 * 1024 * 1024
MAX_EVENTS = 1000


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(
            401,
            "missing_api_key",
            "send the pixel's API key as 'Authorization: Bearer <key>'",
            headers={"www-authenticate": "Bearer"},
        )
    return value.strip()


async def events(request: Request) -> Response:
    runtime = _runtime(request)
    try:
        return await _events(runtime, request)
    except ApiError as exc:
        runtime.metrics.requests_rejected.labels("api", exc.code).inc()
        raise


async def _events(runtime: Runtime, request: Request) -> Response:
    key = _bearer(request)
    # Authenticate before reading the body: strangers get nothing parsed.
    pixel = runtime.registry.by_api_key(key)
    if pixel is None or not credentials.matches(key, pixel.api_key_hash):
        raise ApiError(
            401,
            "invalid_api_key",
            "the API key is not valid",
            headers={"www-authenticate": "Bearer"},
        )
    require_content_type(request, ("application/json",))
    body = await read_body(request, MAX_BODY)
    try:
        envelope = decode_api_body(body, max_events=MAX_EVENTS)
    except EventError as exc:
        status = {"invalid_json": 400, "invalid_body": 400, "too_many_events": 413}.get(
            exc.code, 422
        )
        raise ApiError(status, exc.code, exc.message, exc.field or None) from None
    target = runtime.registry.resolve_source_id(envelope.event_source_id)
    if target is None or target.id != pixel.id:
        raise ApiError(
            403,
            "wrong_pixel",
            "event_source_id is not the pixel this key belongs to",
            "event_source_id",
        )
    if not pixel.enabled:
        raise ApiError(403, "pixel_disabled", "this pixel is disabled", "event_source_id")
    wait = runtime.pixel_limiter.allow(pixel.id, len(envelope.data))
    if wait > 0:
        raise rate_limited(wait)
    ctx = Context(
        pixel=pixel,
        source="server",
        now=time.time(),
        test_event_code=envelope.test_event_code or "",
    )
    try:
        outcome = await runtime.ingestor.ingest(envelope.data, ctx, "data")
    except LogFull as exc:
        raise log_full(exc) from None
    status = 200 if outcome.accepted or outcome.dropped or not outcome.rejected else 422
    body_out: dict[str, Any] = {
        "code": 0 if status == 200 else 40002,
        "message": "OK" if not outcome.rejected else f"{len(outcome.rejected)} events rejected",
        **outcome.as_json(),
    }
    if status == 422:  # nothing accepted: also the error shape every endpoint uses
        first = outcome.rejected[0]
        body_out["error"] = {"code": first.code, "message": first.message, "field": first.field}
    return JSONResponse(body_out, status_code=status)


async def event_schema(request: Request) -> Response:
    return JSONResponse(event_json_schema())


def openapi_document() -> dict[str, Any]:
    error = {"$ref": "#/components/schemas/Error"}

    def answer(description: str, schema: dict[str, Any] = error) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    event = event_json_schema()
    defs = event.pop("$defs", {})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pixel-server Events API",
            "version": "1.0.0",
            "description": "Server-to-server events, in TikTok Events API 2.0 form.",
        },
        "paths": {
            **report_paths(),  # GET /api/v1/reports/...
            "/api/v1/events": {
                "post": {
                    "summary": "Send events from a store back end",
                    "security": [{"apiKey": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/EventsRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": answer(
                            "Accepted (some events may be rejected: see 'rejected')",
                            {"$ref": "#/components/schemas/EventsResponse"},
                        ),
                        "400": answer("Malformed JSON or body"),
                        "401": answer("Missing or invalid API key"),
                        "403": answer("Key of another pixel, or pixel disabled"),
                        "413": answer("Body too large or more than 1,000 events"),
                        "415": answer("Content-Type is not application/json"),
                        "422": answer(
                            "No event was valid", {"$ref": "#/components/schemas/EventsResponse"}
                        ),
                        "429": answer("Rate limited; see Retry-After"),
                        "503": answer("Event log full; see Retry-After"),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer"},
                **report_components()["securitySchemes"],
            },
            "schemas": {
                **defs,
                **report_components()["schemas"],
                "Event": event,
                "EventsRequest": {
                    "type": "object",
                    "required": ["event_source", "event_source_id", "data"],
                    "properties": {
                        "event_source": {"const": "web"},
                        "event_source_id": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 64,
                            "description": "Our pixel id or its TikTok pixel code",
                        },
                        "test_event_code": {"type": "string", "maxLength": 64},
                        "partner_name": {"type": "string", "maxLength": 64},
                        "data": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_EVENTS,
                            "items": {"$ref": "#/components/schemas/Event"},
                        },
                    },
                },
                "EventsResponse": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "integer"},
                        "message": {"type": "string"},
                        "accepted": {"type": "integer"},
                        "duplicates": {"type": "integer"},
                        "dropped": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "rejected": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "index": {"type": "integer"},
                                    "code": {"type": "string"},
                                    "message": {"type": "string"},
                                    "field": {"type": "string"},
                                },
                            },
                        },
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "field": {"type": "string"},
                            },
                        }
                    },
                },
            },
        },
    }


async def openapi(request: Request) -> Response:
    doc = request.app.state.openapi
    if doc is None:
        doc = request.app.state.openapi = _rebase_refs(openapi_document())
    return JSONResponse(doc)


def _rebase_refs(node: Any) -> Any:
    """msgspec's schema points at #/$defs/...; in OpenAPI they live in components."""
    if isinstance(node, dict):
        return {
            k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else _rebase_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rebase_refs(v) for v in node]
    return node


def routes() -> list[Route]:
    return [
        Route("/api/v1/events", events, methods=["POST"]),
        Route("/schema/event.json", event_schema, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
