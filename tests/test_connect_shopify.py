"""connect / disconnect / connect status on the Shopify Admin GraphQL stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator

import orjson
import pytest

from pixel_server.connect.shopify import ORDER_TOPICS, PRODUCT_TOPICS
from pixel_server.management import Management
from tests.connect_helpers import BASE_URL, add_pixel, failing, management, run
from tests.standins.shopify_admin import ALL_SCOPES, ShopifyAdmin

__all__ = ["management"]
TOKEN = "shpat_connect_test"
TOPICS = set(ORDER_TOPICS) | set(PRODUCT_TOPICS)


@pytest.fixture
def store() -> Iterator[ShopifyAdmin]:
    api = ShopifyAdmin(TOKEN).start()
    yield api
    api.stop()


def pixel_for(m: Management, store: ShopifyAdmin, token: str = TOKEN) -> str:
    return add_pixel(
        m, "shopify", store_id=store.shop, store_api_base=store.base_url, store_api_token=token
    )


def test_connect_creates_one_web_pixel_and_the_webhooks(
    management: Management, store: ShopifyAdmin
) -> None:
    pixel = pixel_for(management, store)
    result = run(management, "connect", pixel)
    assert store.web_pixel is not None
    assert orjson.loads(store.web_pixel["settings"]) == {"pixelId": pixel, "serverUrl": BASE_URL}
    hooks = {h["topic"]: h for h in store.webhooks.values()}
    assert set(hooks) == TOPICS
    for topic, hook in hooks.items():
        catalog = "/catalog" if topic in PRODUCT_TOPICS else ""
        assert hook["callbackUrl"] == f"{BASE_URL}/webhooks/shopify/{pixel}{catalog}"
    assert len(result["created"]) == 1 + len(TOPICS)
    assert result["steps"] == []


def test_connect_twice_then_disconnect(management: Management, store: ShopifyAdmin) -> None:
    before = store.state()
    pixel = pixel_for(management, store)
    run(management, "connect", pixel)
    connected = store.state()
    assert run(management, "connect", pixel)["created"] == []
    assert store.state() == connected
    run(management, "disconnect", pixel)
    assert store.state() == before


def test_the_apps_web_pixel_of_another_pixel_is_updated_and_restored(
    management: Management, store: ShopifyAdmin
) -> None:
    old = json.dumps({"pixelId": "px_older", "serverUrl": BASE_URL})  # as the stand-in keeps it
    store.web_pixel = {"id": "gid://shopify/WebPixel/7", "settings": old}
    before = store.state()
    pixel = pixel_for(management, store)
    run(management, "connect", pixel)
    assert store.web_pixel["id"] == "gid://shopify/WebPixel/7"
    assert orjson.loads(store.web_pixel["settings"])["pixelId"] == pixel
    run(management, "disconnect", pixel)
    assert store.state() == before


def test_without_a_web_pixel_extension_the_custom_pixel_steps_are_printed(
    management: Management, store: ShopifyAdmin
) -> None:
    store.has_extension = False
    pixel = pixel_for(management, store)
    result = run(management, "connect", pixel)
    assert store.web_pixel is None
    assert {h["topic"] for h in store.webhooks.values()} == TOPICS
    steps = "\n".join(result["steps"])
    assert "Settings > Customer events > Add custom pixel" in steps
    assert f"{BASE_URL}/p/{pixel}.js" in steps  # the code to paste
    assert 'analytics.subscribe("all_standard_events"' in steps

    status = run(management, "connect.status", pixel)
    assert status["script"]["found_in_page"] is False
    store.custom_pixel = pixel  # the merchant pasted it
    assert run(management, "connect.status", pixel)["script"]["found_in_page"] is True


def test_without_pixel_scopes_the_custom_pixel_steps_are_printed(
    management: Management, store: ShopifyAdmin
) -> None:
    store.scopes = set(ALL_SCOPES) - {"write_pixels"}
    pixel = pixel_for(management, store)
    result = run(management, "connect", pixel)
    assert store.web_pixel is None
    assert any("custom pixel" in step for step in result["steps"])


def test_missing_order_scope_is_named(management: Management, store: ShopifyAdmin) -> None:
    store.scopes.discard("read_orders")
    pixel = pixel_for(management, store)
    assert "'read_orders'" in failing(management, "connect", pixel)
    assert store.state() == (None, {})


def test_revoked_token(management: Management, store: ShopifyAdmin) -> None:
    pixel = pixel_for(management, store, token="shpat_revoked")
    assert "refused the API token" in failing(management, "connect", pixel)


def test_api_down_mid_connect_rolls_back(management: Management, store: ShopifyAdmin) -> None:
    pixel = pixel_for(management, store)
    original = store._create_hook
    made = {"n": 0}

    def flaky(v):  # type: ignore[no-untyped-def]
        made["n"] += 1
        if made["n"] == 3:
            store.inject(1, 502)  # the next request (the 4th create) fails
        return original(v)

    store._create_hook = flaky  # type: ignore[method-assign]
    message = failing(management, "connect", pixel)
    assert "unavailable" in message and "removed again" in message
    assert store.state() == (None, {})


def test_status_healthy(management: Management, store: ShopifyAdmin) -> None:
    pixel = pixel_for(management, store)
    run(management, "connect", pixel)
    status = run(management, "connect.status", pixel)
    assert status["script"]["found_in_page"] is True  # the web pixel's settings on the page
    assert {h["topic"] for h in status["webhooks"] if h["registered"]} == TOPICS
    assert status["tiktok"] == {"configured": False}
    assert status["problems"] == [
        "TikTok: pixel code or access token not set",
        "catalog: no items synced yet",
    ]
