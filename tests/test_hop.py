"""The hop from a worker to the storage process: a request arrives at the other
side as the client sent it (method, path, query, headers, streamed body), with
the client's address as the peer, and ``/internal/`` never crosses."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixel_server.processes.hop import StorageHop, storage_link
from pixel_server.processes.storage import PeerFromHop


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "host": request.headers.get("host"),
            "secret": request.headers.get("x-admin-secret"),
            "peer": request.client.host if request.client else None,
            "spoofed": request.headers.get("x-pixel-peer"),
            "body": len(body),
        },
        headers={"set-cookie": "session=1; Path=/"},
        status_code=201,
    )


@pytest.fixture
def storage_socket(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "storage.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    app = PeerFromHop(Starlette(routes=[Route("/{p:path}", echo, methods=["GET", "POST"])]))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    yield path
    server.should_exit = True
    thread.join(10)


def through_hop(path: str, method: str, url: str, **kw: object) -> httpx.Response:
    async def go() -> httpx.Response:
        link = storage_link(path)
        transport = httpx.ASGITransport(app=StorageHop(link), client=("203.0.113.9", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as c:
            r = await c.request(method, url, **kw)  # type: ignore[arg-type]
        await link.aclose()
        return r

    return asyncio.run(go())


def test_a_hopped_request_arrives_as_sent_with_the_client_as_peer(storage_socket: str) -> None:
    body = b"x" * 300_000
    r = through_hop(
        storage_socket, "POST", "/admin/v1/pixel.list?a=1&b=%20",
        content=body, headers={"x-admin-secret": "s3", "x-pixel-peer": "6.6.6.6 1"},
    )  # fmt: skip
    assert r.status_code == 201
    assert r.headers["set-cookie"] == "session=1; Path=/"
    assert r.json() == {
        "method": "POST", "path": "/admin/v1/pixel.list", "query": "a=1&b=%20",
        "host": "shop.test", "secret": "s3", "peer": "203.0.113.9", "spoofed": None,
        "body": len(body),
    }  # fmt: skip


def test_internal_paths_never_hop(storage_socket: str) -> None:
    r = through_hop(storage_socket, "GET", "/internal/v1/registry")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_a_missing_storage_process_is_a_503(tmp_path: Path) -> None:
    r = through_hop(str(tmp_path / "nobody.sock"), "GET", "/dashboard/px_1")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "storage_unavailable"
