"""The application shell: health, readiness, metrics, JSON errors, admin API."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from pixel_server import admin
from pixel_server.admin import ADMIN_SECRET_FILE
from pixel_server.app import create_app
from pixel_server.config import Settings, load_settings
from tests.conftest import free_port


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["clickhouse"] == "ok"


def test_readyz_is_503_when_clickhouse_cannot_be_reached(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "PIXEL_DATA_DIR": str(tmp_path),
            "PIXEL_CLICKHOUSE_URL": f"http://default:pw@127.0.0.1:{free_port()}/db",
            "PIXEL_LOG_LEVEL": "error",
        }
    )
    with TestClient(create_app(settings)) as c:
        assert c.get("/healthz").status_code == 200  # alive, just not ready
        r = c.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "unavailable"
        assert "unavailable" in body["checks"]["clickhouse"]
        assert "pw" not in r.text  # the password is never echoed
        assert "pixel_ready 0.0" in c.get("/metrics").text


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "# TYPE pixel_events_accepted_total counter" in r.text
    assert "pixel_ready 1.0" in r.text


def test_unknown_path_and_wrong_method_are_json(client: TestClient) -> None:
    r = client.get("/nowhere")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = client.post("/healthz")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_nothing_under_admin_answers_on_the_tcp_port(client: TestClient) -> None:
    for path in ("/admin/v1/pixel.list", "/admin/v1/status", "/admin"):
        assert client.post(path).status_code == 404
        assert client.get(path).status_code == 404


def post_admin(settings: Settings, op: str, body: bytes, secret: str | None) -> httpx.Response:
    path, real_secret = admin.admin_files(settings.data_dir)  # type: ignore[misc]
    headers = {"x-admin-secret": real_secret if secret is None else secret}
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), timeout=10) as c:
        return c.post(f"http://admin/admin/v1/{op}", content=body, headers=headers)


def test_the_admin_socket_is_the_owners_and_needs_the_secret(
    client: TestClient, settings: Settings
) -> None:
    found = admin.admin_files(settings.data_dir)
    assert found is not None
    path, _ = found
    assert stat.S_ISSOCK(path.stat().st_mode) and path.stat().st_mode & 0o777 == 0o600
    assert (settings.data_dir / ADMIN_SECRET_FILE).stat().st_mode & 0o777 == 0o600
    assert post_admin(settings, "pixel.list", b"", "").status_code == 401
    assert post_admin(settings, "pixel.list", b"", "x").status_code == 401
    assert post_admin(settings, "pixel.list", b"", None).json() == {"result": []}
    r = post_admin(settings, "pixel.add", b"{bad", None)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    assert post_admin(settings, "pixel.show", b'{"id": "px_none"}', None).status_code == 404
    assert post_admin(settings, "rm-rf", b"{}", None).status_code == 404
    r = post_admin(settings, "pixel.add", b'{"name": "Shop", "bogus": 1}', None)
    assert r.status_code == 400 and "bogus" in r.json()["error"]["message"]
    assert admin.call(settings.data_dir, "pixel.list", {}) == []


def test_a_data_directory_too_deep_for_a_socket_path_gets_a_private_folder(
    tmp_path: Path, engine_dir: Path, database_name: str
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "data"
    url = f"chdb://{engine_dir}?database={database_name}"
    settings = load_settings(
        {"PIXEL_DATA_DIR": str(deep), "PIXEL_LOG_LEVEL": "warning", "PIXEL_CLICKHOUSE_URL": url}
    )
    with TestClient(create_app(settings)):
        path, _ = admin.admin_files(deep)  # type: ignore[misc]
        assert path.parent != deep and path.parent.stat().st_mode & 0o777 == 0o700
        assert admin.call(deep, "pixel.list", {}) == []
    assert not path.exists()


def test_admin_files_are_removed_on_stop(settings: Settings) -> None:
    with TestClient(create_app(settings)):
        assert (settings.data_dir / ADMIN_SECRET_FILE).exists()
    assert not (settings.data_dir / ADMIN_SECRET_FILE).exists()


def test_requests_are_counted_per_route_template(client: TestClient) -> None:
    client.get("/healthz")
    client.get("/p/px_a.js")
    client.get("/p/px_b.js")
    client.get("/no/such/path")
    text = client.get("/metrics").text
    assert 'pixel_http_requests_total{route="/healthz",status="200"} 1.0' in text
    assert 'pixel_http_requests_total{route="/p/{pixel_id}.js",status="200"} 2.0' in text
    assert 'route="unmatched",status="404"' in text


@pytest.mark.parametrize("path", ["/healthz", "/collect", "/api/v1/events", "/dashboard/px_x"])
def test_request_headers_over_16_kb_are_431(client: TestClient, path: str) -> None:
    answer = client.get(path, headers={"x-filler": "a" * (64 * 1024)})
    assert answer.status_code == 431
    assert answer.json()["error"]["code"] == "headers_too_large"
    many = {f"x-h{i}": "b" * 100 for i in range(200)}  # many small ones add up too
    assert client.get(path, headers=many).status_code == 431


def test_ordinary_headers_pass(client: TestClient) -> None:
    cookie = "; ".join(f"c{i}={'v' * 40}" for i in range(60))  # a heavy store's cookies, 3 KB
    assert client.get("/healthz", headers={"cookie": cookie}).status_code == 200
