"""``POST /api/v1/pixels/{pixel_id}/erasures``: ``pixel-server erase`` for owners.

The body names exactly one identifier, ``{"email": "..."}``, ``{"phone": ...}``,
``{"external_id": ...}`` or ``{"anonymous_id": ...}``; the answer is what was
removed (as the CLI prints it). Owner tokens only (``Authorization: Bearer``
or a console session with its CSRF token). ``GET`` on the same path lists the
pixel's past erasures, without identifiers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixel_server.console.access import Denied, Gate
from pixel_server.errors import ApiError
from pixel_server.ingest.http import read_body
from pixel_server.pipeline.erasures import KINDS
from pixel_server.pixel import RegistryError

MAX_BODY: Final = 4096
RunOperation = Callable[[str, dict[str, Any]], Any]


def routes(gate: Gate, run: RunOperation) -> list[Route]:
    def owner(request: Request, *, writes: bool = False) -> Any:
        try:
            access = gate.authorize(request, request.path_params["pixel_id"], owner=True)
            if writes:
                gate.check_csrf(request, access.viewer, {})  # sessions: the X-CSRF-Token header
            return access
        except Denied as exc:
            headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
            raise ApiError(exc.status, exc.code, exc.message, headers=headers) from None

    async def erase(request: Request) -> Response:
        access = owner(request, writes=True)
        body = await read_body(request, MAX_BODY)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ApiError(400, "invalid_json", "the body is not JSON") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "invalid_body", "the body must be a JSON object")
        unknown = sorted(set(doc) - set(KINDS))
        if unknown:
            raise ApiError(400, "unknown_field", f"{unknown[0]} is not an identifier", unknown[0])
        given = [k for k in KINDS if isinstance(doc.get(k), str) and doc[k].strip()]
        if len(given) != 1:
            raise ApiError(
                400, "one_identifier", f"name exactly one of {', '.join(KINDS)} (a string)"
            )
        kind = given[0]
        args = {"pixel": access.pixel.id, kind: doc[kind], "actor": access.viewer.actor}
        try:
            result = await anyio.to_thread.run_sync(run, "erase", args)
        except RegistryError as exc:
            raise ApiError(exc.status, "invalid_identifier", str(exc), kind) from None
        return JSONResponse(result, headers={"cache-control": "no-store"})

    async def erasures(request: Request) -> Response:
        access = owner(request)
        rows = await anyio.to_thread.run_sync(run, "erasures.list", {"pixel": access.pixel.id})
        return JSONResponse({"erasures": rows}, headers={"cache-control": "no-store"})

    path = "/api/v1/pixels/{pixel_id}/erasures"
    return [Route(path, erase, methods=["POST"]), Route(path, erasures, methods=["GET"])]
