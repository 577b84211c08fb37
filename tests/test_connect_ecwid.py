"""connect / connect status on the Ecwid stand-in: the token is checked, the
app settings are printed, and status falls back to the events seen."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest
from starlette.testclient import TestClient

from pixel_server.management import Management
from tests.connect_helpers import BASE_URL, add_pixel, failing, management, run
from tests.ingest_helpers import browser_headers, runtime_of, wait_for_rows
from tests.standins.ecwid_admin import EcwidAdmin

__all__ = ["management"]
TOKEN = "secret_ecwid_connect"


@pytest.fixture
def store() -> Iterator[EcwidAdmin]:
    api = EcwidAdmin(TOKEN).start()
    yield api
    api.stop()


def pixel_for(m: Management, store: EcwidAdmin) -> str:
    return add_pixel(
        m,
        "ecwid",
        store_id=store.store_id,
        store_api_base=store.base_url,
        store_api_token=TOKEN,
        origins=["https://shop.example.com"],
    )


def test_connect_prints_the_app_settings(management: Management, store: EcwidAdmin) -> None:
    pixel = pixel_for(management, store)
    result = run(management, "connect", pixel)
    assert result["created"] == [] and result["kept"] == []
    steps = "\n".join(result["steps"])
    assert f"{BASE_URL}/p/{pixel}.js" in steps
    assert f"{BASE_URL}/webhooks/ecwid/{pixel}" in steps
    assert "order.created" in steps and "product.updated" in steps
    assert run(management, "disconnect", pixel)["removed"] == []


def test_missing_scope_is_named(management: Management, store: EcwidAdmin) -> None:
    store.scopes.discard("read_orders")
    pixel = pixel_for(management, store)
    assert "'read_orders'" in failing(management, "connect", pixel)


def test_status_counts_browser_events_as_the_scripts_proof(
    client: TestClient, store: EcwidAdmin
) -> None:
    m = runtime_of(client).management
    pixel = pixel_for(m, store)
    status = run(m, "connect.status", pixel)
    assert status["script"]["found_in_page"] is False  # Ecwid loads app JS itself
    assert any(p.startswith("script:") for p in status["problems"])

    event = {
        "event": "PageView",
        "event_id": f"pv-{time.time_ns()}",
        "page": {"url": "https://shop.example.com/"},
    }
    response = client.post(
        f"/collect?p={pixel}",
        content=orjson.dumps(event),
        headers=browser_headers(**{"content-type": "text/plain"}),
    )
    assert response.status_code < 300, response.text
    wait_for_rows(runtime_of(client), 1, pixel)
    status = run(m, "connect.status", pixel)
    assert status["script"]["last_browser_event"]
    assert not any(p.startswith("script:") for p in status["problems"])
    [seen] = status["events"]
    assert (seen["event"], seen["source"], seen["copies"]) == ("PageView", "browser", 1)
