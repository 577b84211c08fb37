"""The local admin API: how management commands reach a running server, which
holds the data directory.

It listens on a Unix socket, never on the TCP port: ``admin.sock`` in the data
directory (or, when that path is too long for a socket address, in a private
0700 folder under the temporary directory), mode 0600, so only the user who
runs the server can connect. The server also writes ``admin.json`` (where the
socket is, and its pid) and ``admin.secret`` (a random secret, 0600) when it
starts, and removes all three when it stops; a caller sends the secret too,
so a socket left reachable by mistake still opens nothing.

``POST /admin/v1/{op}`` runs one management operation (:mod:`pixel_server.management`)
with a JSON object of arguments and answers ``{"result": ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import anyio
import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixel_server.errors import ApiError, api_error_handler, error_response, http_error_handler
from pixel_server.management import Management
from pixel_server.pixel import RegistryError
from pixel_server.storage.client import StorageError

ADMIN_FILE: Final = "admin.json"
ADMIN_SECRET_FILE: Final = "admin.secret"
SOCKET_FILE: Final = "admin.sock"
_MAX_SOCKET_PATH: Final = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


class AdminUnavailable(Exception):
    """No running server answered on the data directory's admin socket."""


class AdminRefused(Exception):
    """The running server refused the operation; the message is safe to show."""


def socket_path(data_dir: Path) -> Path:
    """Where the admin socket of ``data_dir`` lives."""
    own = data_dir / SOCKET_FILE
    if len(os.fsencode(own)) <= _MAX_SOCKET_PATH:
        return own
    digest = hashlib.sha256(os.fsencode(data_dir.resolve())).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"pixel-server-{os.getuid()}-{digest}" / SOCKET_FILE


def _private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{directory} must belong to this user with mode 0700")


def admin_files(data_dir: Path) -> tuple[Path, str] | None:
    """The running server's admin socket and secret, if it wrote them."""
    try:
        info = orjson.loads((data_dir / ADMIN_FILE).read_bytes())
        secret = (data_dir / ADMIN_SECRET_FILE).read_text().strip()
    except (OSError, ValueError):
        return None
    return Path(info["socket"]), secret


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def call(data_dir: Path, op: str, args: dict[str, Any], *, timeout: float = 60.0) -> Any:
    """Run ``op`` on the server that holds ``data_dir``."""
    found = admin_files(data_dir)
    if found is None:
        raise AdminUnavailable(f"no running server has written {data_dir / ADMIN_FILE}")
    path, secret = found
    transport = httpx.HTTPTransport(uds=str(path))
    try:
        with httpx.Client(transport=transport, timeout=timeout) as client:
            response = client.post(
                f"http://admin/admin/v1/{op}",
                content=orjson.dumps(args),
                headers={"x-admin-secret": secret, "content-type": "application/json"},
            )
    except httpx.HTTPError as exc:
        raise AdminUnavailable(f"the running server's admin socket did not answer: {exc}") from None
    body = response.json()
    if response.status_code != 200:
        raise AdminRefused(body.get("error", {}).get("message", response.text))
    return body["result"]


class AdminApi:
    """Runs management operations for a caller that presents ``secret``."""

    def __init__(self, management: Management, secret: str) -> None:
        self._management = management
        self._secret = secret

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/admin/v1/{op}", self.run, methods=["POST"])],
            exception_handlers={ApiError: api_error_handler, HTTPException: http_error_handler},
        )

    async def run(self, request: Request) -> Response:
        presented = request.headers.get("x-admin-secret", "")
        if not secrets.compare_digest(presented, self._secret):
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


class _Server(uvicorn.Server):
    # The process's signals belong to the public server (or to the test runner).
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AdminServer:
    """Serves :class:`AdminApi` on the data directory's socket, on the running loop."""

    def __init__(self, api: AdminApi, data_dir: Path, secret: str) -> None:
        self._api = api
        self._data_dir = data_dir
        self._secret = secret
        self._path = socket_path(data_dir)
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._path.parent != self._data_dir:
            _private_dir(self._path.parent)
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()  # left by a server that was killed
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(self._path))
        finally:
            os.umask(old_umask)
        os.chmod(self._path, 0o600)
        sock.listen(16)
        config = uvicorn.Config(self._api.app(), lifespan="off", log_config=None, access_log=False)
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="admin-api")
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        _write_private(self._data_dir / ADMIN_SECRET_FILE, self._secret.encode())
        info = {"socket": str(self._path), "pid": os.getpid()}
        _write_private(self._data_dir / ADMIN_FILE, orjson.dumps(info))

    async def stop(self) -> None:
        for name in (ADMIN_FILE, ADMIN_SECRET_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self._data_dir / name).unlink()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
