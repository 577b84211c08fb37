"""The baseline for ``bench.run``: the least a Python ``/collect`` can do.

``POST /collect`` reads the body, parses it with orjson and answers 204; no
validation, no log, no fsync. Run with uvicorn exactly like the real server
(uvloop, httptools, one worker, no access log)::

    python -m uvicorn bench.bare_app:app --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def collect(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(status_code=204)


app = Starlette(routes=[Route("/collect", collect, methods=["POST"])])
