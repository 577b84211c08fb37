"""``POST /api/v1/events`` for store back ends: TikTok's Events API 2.0 body,
so code written for TikTok can point at us. Plus the published schemas.

:class:`ServerIntake` is what every server-to-server endpoint does between the
request and the :class:`~pixel_server.ingest.service.Ingestor`: find the pixel
by its API key, check that the body names that pixel, rate-limit, ingest. It
raises :class:`~pixel_server.errors.ApiError`; each endpoint renders those in
its own envelope (ours here, TikTok's in ``ingest/gateway.py``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixel_server import credentials
from pixel_server.errors import ApiError
from pixel_server.events.schema import EventError, decode_api_body, event_json_schema
from pixel_server.ingest.http import log_full, rate_limited, read_body, require_content_type
from pixel_server.ingest.ratelimit import RateLimiter
from pixel_server.ingest.service import Ingestor, IntakeResult
from pixel_server.metrics import Metrics
from pixel_server.pipeline.steps import Context
from pixel_server.pipeline.wal import LogFull
from pixel_server.pixel import Pixel
from pixel_server.registry import PixelRegistry
from pixel_server.reports.openapi import report_components, report_paths

MAX_BODY = 5 * 1024 * 1024
MAX_EVENTS = 1000
_BODY_STATUS = {"invalid_json": 400, "invalid_body": 400, "too_many_events": 413}


class ServerIntake:
    """Server events from a pixel's back end, whatever the envelope they came in.

    It holds exactly the parts it needs: the pixel registry, the ingestor, the
    per-pixel rate limiter and the metrics.
    """

    def __init__(
        self,
        *,
        registry: PixelRegistry,
        ingestor: Ingestor,
        pixel_limiter: RateLimiter,
        metrics: Metrics,
    ) -> None:
        self.registry = registry
        self.ingestor = ingestor
        self.limiter = pixel_limiter
        self.metrics = metrics

    def pixel_for_key(self, key: str) -> Pixel:
        """The pixel ``key`` belongs to (compared in constant time), else 401."""
        pixel = self.registry.by_api_key(key)
        if pixel is None or not credentials.matches(key, pixel.api_key_hash):
            raise ApiError(
                401,
                "invalid_api_key",
                "the API key is not valid",
                headers={"www-authenticate": "Bearer"},
            )
        return pixel

    def check_target(self, pixel: Pixel, source_id: str, field: str) -> None:
        """The pixel the body names (our id or its TikTok code) is the key's pixel."""
        target = self.registry.resolve_source_id(source_id)
        if target is None or target.id != pixel.id:
            raise ApiError(
                403, "wrong_pixel", f"{field} is not the pixel this key belongs to", field
            )
        if not pixel.enabled:
            raise ApiError(403, "pixel_disabled", "this pixel is disabled", field)

    async def ingest(
        self,
        pixel: Pixel,
        raws: list[msgspec.Raw] | list[bytes],
        *,
        test_event_code: str,
        prefix: str,
    ) -> IntakeResult:
        """Rate-limit, then validate, enrich and log ``raws`` as ``server`` events."""
        wait = self.limiter.allow(pixel.id, len(raws))
        if wait > 0:
            raise rate_limited(wait)
        ctx = Context(pixel=pixel, source="server", now=time.time(),
                      test_event_code=test_event_code)  # fmt: skip
        try:
            return await self.ingestor.ingest(raws, ctx, prefix)
        except LogFull as exc:
            raise log_full(exc) from None

    def count_refusal(self, route: str, exc: ApiError) -> None:
        self.metrics.requests_rejected.labels(route, exc.code).inc()


def body_error(exc: EventError) -> ApiError:
    """A request body that cannot be read as an envelope."""
    status = _BODY_STATUS.get(exc.code, 422)
    return ApiError(status, exc.code, exc.message, exc.field or None)


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


def _events_endpoint(intake: ServerIntake) -> Callable[[Request], Awaitable[Response]]:
    async def events(request: Request) -> Response:
        try:
            return await _events(intake, request)
        except ApiError as exc:
            intake.count_refusal("api", exc)
            raise

    return events


async def _events(intake: ServerIntake, request: Request) -> Response:
    # Authenticate before reading the body: strangers get nothing parsed.
    pixel = intake.pixel_for_key(_bearer(request))
    require_content_type(request, ("application/json",))
    body = await read_body(request, MAX_BODY)
    try:
        envelope = decode_api_body(body, max_events=MAX_EVENTS)
    except EventError as exc:
        raise body_error(exc) from None
    intake.check_target(pixel, envelope.event_source_id, "event_source_id")
    outcome = await intake.ingest(
        pixel, envelope.data, test_event_code=envelope.test_event_code or "", prefix="data"
    )
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


def _openapi_endpoint(
    extra: Callable[[], dict[str, Any]],
) -> Callable[[Request], Awaitable[Response]]:
    cached: list[bytes] = []  # built on first use: the document is large

    async def openapi(request: Request) -> Response:
        if not cached:
            doc = openapi_document()
            more = extra()
            doc["paths"].update(more.get("paths", {}))
            for section, entries in more.get("components", {}).items():
                doc["components"].setdefault(section, {}).update(entries)
            cached.append(orjson.dumps(_rebase_refs(doc)))
        return Response(cached[0], media_type="application/json")

    return openapi


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


def routes(intake: ServerIntake, extra_openapi: Callable[[], dict[str, Any]] = dict) -> list[Route]:
    """``/api/v1/events``, the event schema and ``/openapi.json``, which also
    documents ``extra_openapi()``: other endpoints' ``paths`` and ``components``."""
    return [
        Route("/api/v1/events", _events_endpoint(intake), methods=["POST"]),
        Route("/schema/event.json", event_schema, methods=["GET"]),
        Route("/openapi.json", _openapi_endpoint(extra_openapi), methods=["GET"]),
    ]
