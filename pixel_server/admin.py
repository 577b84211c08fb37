"""The local admin API (``POST /admin/v1/{op}``): how management commands reach
a running server, which holds the data directory.

The server writes ``admin.json`` (its URL and pid) and ``admin.secret`` (a
random secret, mode 0600) into the data directory when it starts and removes
them when it stops; a caller proves it may read the data directory by sending
the secret. Only loopback clients are served.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Final

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixel_server.errors import ApiError, error_response
from pixel_server.management import Management
from pixel_server.storage.client import StorageError
from pixel_server.storage.pixels import RegistryError

ADMIN_FILE: Final = "admin.json"
ADMIN_SECRET_FILE: Final = "admin.secret"


def admin_files(data_dir: Path) -> tuple[str, str] | None:
    """The running server's admin URL and secret, if it wrote them."""
    try:
        info = orjson.loads((data_dir / ADMIN_FILE).read_bytes())
        secret = (data_dir / ADMIN_SECRET_FILE).read_text().strip()
    except (OSError, ValueError):
        return None
    return info["url"], secret


def write_admin_files(data_dir: Path, url: str, secret: str) -> None:
    secret_path = data_dir / ADMIN_SECRET_FILE
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    os.chmod(secret_path, 0o600)
    (data_dir / ADMIN_FILE).write_bytes(orjson.dumps({"url": url, "pid": os.getpid()}))


def remove_admin_files(data_dir: Path) -> None:
    for name in (ADMIN_FILE, ADMIN_SECRET_FILE):
        with contextlib.suppress(FileNotFoundError):
            (data_dir / name).unlink()


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    return host in ("127.0.0.1", "::1", "localhost", "testclient")


class AdminApi:
    """Runs management operations for a caller that presents ``secret``."""

    def __init__(self, management: Management, secret: str) -> None:
        self._management = management
        self._secret = secret

    def routes(self) -> list[Route]:
        return [Route("/admin/v1/{op}", self.run, methods=["POST"])]

    async def run(self, request: Request) -> Response:
        presented = request.headers.get("x-admin-secret", "")
        if not _is_loopback(request) or not secrets.compare_digest(presented, self._secret):
            raise ApiError(401, "unauthorized", "admin API needs the data directory's admin secret")
        try:
            args = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            raise ApiError(400, "invalid_json", "body is not valid JSON") from None
        if not isinstance(args, dict):
            raise ApiError(400, "invalid_body", "body must be a JSON object")
        op = request.path_params["op"]
        try:
            result = await anyio.to_thread.run_sync(self._management.run, op, args)
        except RegistryError as exc:
            return error_response(exc.status, "registry_error", str(exc))
        except StorageError as exc:
            return error_response(503, "storage_unavailable", str(exc))
        except (KeyError, TypeError) as exc:
            return error_response(400, "invalid_arguments", f"bad arguments for {op}: {exc}")
        return JSONResponse({"result": result})
