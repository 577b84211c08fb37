"""connect / disconnect / connect status on the WooCommerce stand-in, and the
WordPress plugin the server hands out."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from pixel_server.config import Settings
from pixel_server.connect.woocommerce import ORDER_TOPICS, PRODUCT_TOPICS
from pixel_server.install import snippet_tag
from pixel_server.management import Management
from tests.connect_helpers import BASE_URL, SECRET, add_pixel, failing, management, run
from tests.standins.store_api import send
from tests.standins.woocommerce_api import WooCommerceSite

__all__ = ["management"]
TOPICS = set(ORDER_TOPICS) | set(PRODUCT_TOPICS)


@pytest.fixture
def site() -> Iterator[WooCommerceSite]:
    api = WooCommerceSite().start()
    yield api
    api.stop()


def pixel_for(m: Management, site: WooCommerceSite, token: str | None = None) -> str:
    return add_pixel(m, "woocommerce", store_id=site.base_url, store_api_token=token or site.token)


def test_connect_creates_the_webhooks_and_points_at_the_plugin(
    management: Management, site: WooCommerceSite
) -> None:
    pixel = pixel_for(management, site)
    result = run(management, "connect", pixel)
    hooks = {h["topic"]: h for h in site.webhooks.values()}
    assert set(hooks) == TOPICS
    for topic, hook in hooks.items():
        catalog = "/catalog" if topic in PRODUCT_TOPICS else ""
        assert hook["delivery_url"] == f"{BASE_URL}/webhooks/woocommerce/{pixel}{catalog}"
        assert hook["secret"] == SECRET
        assert hook["status"] == "active"
    steps = "\n".join(result["steps"])
    assert f"{BASE_URL}/integrations/woocommerce.zip?pixel={pixel}" in steps


def test_connect_twice_then_disconnect(management: Management, site: WooCommerceSite) -> None:
    site.webhooks["3"] = {
        "id": 3,
        "topic": "order.created",
        "delivery_url": "https://erp.example/h",
        "status": "active",
    }
    before = site.state()
    pixel = pixel_for(management, site)
    run(management, "connect", pixel)
    connected = site.state()
    assert run(management, "connect", pixel)["created"] == []
    assert site.state() == connected
    run(management, "disconnect", pixel)
    assert site.state() == before


def test_a_read_only_key_is_refused_before_anything_is_made(
    management: Management, site: WooCommerceSite
) -> None:
    site.permission = "read"
    pixel = pixel_for(management, site)
    message = failing(management, "connect", pixel)
    assert "'Read/Write'" in message
    assert site.state() == {}


def test_wrong_key(management: Management, site: WooCommerceSite) -> None:
    pixel = pixel_for(management, site, token="ck_old:cs_old")
    assert "refused the API token" in failing(management, "connect", pixel)


def test_a_token_that_is_not_a_key_pair(management: Management, site: WooCommerceSite) -> None:
    pixel = pixel_for(management, site, token="just-a-token")
    assert "consumer_key:consumer_secret" in failing(management, "connect", pixel)


def test_site_down_mid_connect_rolls_back(management: Management, site: WooCommerceSite) -> None:
    pixel = pixel_for(management, site)
    original = site._create

    def flaky(request: Any) -> None:
        if len(site.webhooks) == 2:  # the third create meets a site in trouble
            return send(request, 503, {"code": "unavailable", "message": "down"})
        return original(request)

    site._create = flaky  # type: ignore[method-assign]
    message = failing(management, "connect", pixel)
    assert "unavailable" in message and "removed again" in message
    assert site.state() == {}


def plugin(client: TestClient, pixel: str) -> str:
    response = client.get(f"/integrations/woocommerce.zip?pixel={pixel}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        [name] = archive.namelist()
        assert name == f"pixel-server-{pixel}/pixel-server.php"
        return archive.read(name).decode()


def test_the_plugin_prints_the_tag_on_every_page(client: TestClient, settings: Settings) -> None:
    m = client.app.state.runtime.management  # type: ignore[attr-defined]
    pixel = add_pixel(m, "woocommerce", store_id="https://shop.example.com")
    php = plugin(client, pixel)
    assert "Plugin Name: pixel-server" in php
    assert "add_action('wp_head'," in php
    assert "defined('ABSPATH')" in php
    tag = re.search(r"<<<'PIXEL_SERVER_TAG'\n(.*)\nPIXEL_SERVER_TAG;", php, re.S)
    assert tag is not None
    assert tag.group(1) == snippet_tag(f"{settings.base_url}/p/{pixel}.js")
    assert plugin(client, pixel) == php  # the same bytes every time


def test_the_plugin_url_needs_a_known_pixel(client: TestClient) -> None:
    missing = client.get("/integrations/woocommerce.zip")
    assert missing.status_code == 400
    assert missing.json()["error"]["field"] == "pixel"
    unknown = client.get("/integrations/woocommerce.zip?pixel=px_nope")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_pixel"


def test_status_sees_the_plugins_tag_and_a_disabled_webhook(
    management: Management, site: WooCommerceSite
) -> None:
    pixel = pixel_for(management, site)
    run(management, "connect", pixel)
    status = run(management, "connect.status", pixel)
    assert status["script"]["found_in_page"] is False
    assert any(p.startswith("script:") for p in status["problems"])

    site.head = snippet_tag(f"{BASE_URL}/p/{pixel}.js")  # the plugin is active
    hook = next(k for k, h in site.webhooks.items() if h["topic"] == "order.created")
    site.fail_webhook(hook)
    status = run(management, "connect.status", pixel)
    assert status["script"]["found_in_page"] is True
    [bad] = [h for h in status["webhooks"] if not h["active"]]
    assert bad["topic"] == "order.created" and bad["status"] == "disabled"
