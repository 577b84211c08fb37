"""The demo storefront: owner access only on a loopback server, and the login
link shown once to whoever started the server, never in a log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pixel_server.app import create_app
from pixel_server.runtime import is_loopback
from tests.ingest_helpers import runtime_of, shared_settings


def test_on_loopback_the_link_is_announced_once_and_logged_never(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = shared_settings(tmp_path_factory, engine_dir, PIXEL_DEMO="true")
    lines: list[str] = []
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(settings, announce=lines.append)) as client:
        page = client.get("/demo")
        assert page.status_code == 200 and 'href="/login?token=prt_' in page.text
    with TestClient(create_app(settings, announce=lines.append)):
        pass  # the demo pixel exists now: nothing to announce
    assert len(lines) == 1 and "/login?token=prt_" in lines[0]
    assert "prt_" not in caplog.text


def test_elsewhere_the_demo_hands_out_no_owner_access(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = shared_settings(tmp_path_factory, engine_dir, PIXEL_DEMO="true",
                               PIXEL_HOST="0.0.0.0")  # fmt: skip
    lines: list[str] = []
    with TestClient(create_app(settings, announce=lines.append)) as client:
        page = client.get("/demo")
        tokens = runtime_of(client).management.run("token.list", {})
    assert page.status_code == 200
    assert "/login?token=" not in page.text and "only while the server listens on loopback" in (
        page.text
    )
    assert [t["label"] for t in tokens] == ["created with the pixel"]  # none for the page
    assert lines == []
    assert "no owner access is handed out" in caplog.text


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.1", False),
        ("shop.example.com", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
