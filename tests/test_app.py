"""The application shell: health, readiness, metrics, JSON errors, admin API."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

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


def test_admin_api_needs_the_secret(client: TestClient, settings: Settings) -> None:
    assert client.post("/admin/v1/pixel.list").status_code == 401
    assert client.post("/admin/v1/pixel.list", headers={"x-admin-secret": "x"}).status_code == 401
    secret = (settings.data_dir / ADMIN_SECRET_FILE).read_text()
    assert (settings.data_dir / ADMIN_SECRET_FILE).stat().st_mode & 0o777 == 0o600
    h = {"x-admin-secret": secret}
    assert client.post("/admin/v1/pixel.list", headers=h).json() == {"result": []}
    r = client.post("/admin/v1/pixel.add", headers=h, content=b"{bad")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = client.post("/admin/v1/pixel.show", headers=h, json={"id": "px_none"})
    assert r.status_code == 404
    r = client.post("/admin/v1/rm-rf", headers=h, json={})
    assert r.status_code == 404
    r = client.post("/admin/v1/pixel.add", headers=h, json={"name": "Shop", "bogus": 1})
    assert r.status_code == 400 and "bogus" in r.json()["error"]["message"]


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
