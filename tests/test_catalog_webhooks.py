"""Product webhooks keep the catalog in step; the periodic pull repairs the rest."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from pixel_server.catalog.schedule import CatalogSchedule
from tests.ingest_helpers import metric
from tests.standins.catalog_seed import MUG_ID, SWEATSHIRT_ID
from tests.test_catalog_sync import PLATFORMS, pixel_settings, standin
from tests.webhook_helpers import (
    SECRET,
    add_shop,
    bigcommerce_headers,
    ecwid_headers,
    encode,
    runtime_of,
    shopify_headers,
    woo_headers,
)


def delivery(platform: str, product_id: int, kind: str, secret: str = SECRET,
             store: str = "") -> tuple[bytes, dict[str, str]]:  # fmt: skip
    """A product webhook as the platform sends it (kind: created, updated, deleted)."""
    if platform == "ecwid":
        event: dict[str, Any] = {"eventId": str(uuid.uuid4()), "eventCreated": int(time.time()),
                                 "storeId": int(store or 1003), "entityId": product_id,
                                 "eventType": f"product.{kind}", "data": {}}  # fmt: skip
        return encode(event), ecwid_headers(event, secret)
    if platform == "bigcommerce":
        body = encode({"scope": f"store/product/{kind}", "store_id": "1001",
                       "data": {"type": "product", "id": product_id},
                       "hash": hashlib.sha1(uuid.uuid4().bytes).hexdigest(),
                       "created_at": int(time.time()),
                       "producer": f"stores/{store or 'abc123xyz'}"})  # fmt: skip
        return body, bigcommerce_headers(secret)
    body = encode({"id": product_id, "title": "ignored: the store is read again"})
    if platform == "shopify":
        return body, shopify_headers(body, f"products/{kind.removesuffix('d')}", secret)
    return body, woo_headers(body, f"product.{kind}", secret)


class Shop:
    def __init__(self, client: TestClient, platform: str, api: Any) -> None:
        self.client, self.platform, self.api = client, platform, api
        self.runtime = runtime_of(client)
        settings = pixel_settings(platform, api.base_url)
        self.pixel = add_shop(client, settings.pop("platform"), **settings)
        self.url = f"/webhooks/{platform}/{self.pixel['id']}/catalog"

    def items(self) -> dict[str, Any]:
        pages = self.runtime.catalog.feed_pages(self.pixel["id"])
        return {i.sku_id: i for page in pages for i in page}

    def send(self, product_id: int, kind: str, **kw: Any) -> Any:
        body, headers = delivery(self.platform, product_id, kind, **kw)
        return self.client.post(self.url, content=body, headers=headers)


@pytest.fixture(params=PLATFORMS)
def shop(request: pytest.FixtureRequest, client: TestClient) -> Iterator[Shop]:
    api = standin(request.param)
    with_api = api.start()
    try:
        s = Shop(client, request.param, with_api)
        assert s.runtime.management.run("catalog.sync", {"pixel": s.pixel["id"]})["status"] == "ok"
        yield s
    finally:
        api.stop()


def test_an_updated_price_appears_after_the_update_webhook(shop: Shop) -> None:
    shop.api.products[MUG_ID].price = Decimal("9.50")
    response = shop.send(MUG_ID, "updated")
    assert response.status_code == 200, response.text
    assert (response.json()["changed"], response.json()["deleted"]) == (1, 0)
    assert shop.items()["MUG-1"].sale_price == Decimal("9.50")


def test_a_deleted_product_leaves_the_feed(shop: Shop) -> None:
    del shop.api.products[SWEATSHIRT_ID]
    response = shop.send(SWEATSHIRT_ID, "deleted")
    assert response.status_code == 200 and response.json()["deleted"] == 10
    assert not [i for i in shop.items().values() if i.item_group_id == str(SWEATSHIRT_ID)]
    assert "MUG-1" in shop.items()


def test_a_delete_the_store_denies_changes_nothing(shop: Shop) -> None:
    response = shop.send(MUG_ID, "deleted")  # the store still has the mug
    assert response.status_code == 200 and response.json()["deleted"] == 0
    assert "MUG-1" in shop.items()


def test_unsigned_or_foreign_deliveries_are_refused(shop: Shop) -> None:
    before = shop.items()
    del shop.api.products[SWEATSHIRT_ID]
    bad = shop.send(SWEATSHIRT_ID, "deleted", secret="not-the-secret")
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "bad_signature"
    assert metric(shop.client, "pixel_webhooks_rejected_total", platform=shop.platform,
                  reason="bad_signature") == 1  # fmt: skip
    if shop.platform in ("ecwid", "bigcommerce"):
        other = shop.send(SWEATSHIRT_ID, "deleted", store="9999")
        assert other.status_code == 422 and other.json()["error"]["code"] == "wrong_store"
    assert shop.items() == before


def test_a_store_api_failure_asks_the_platform_to_retry(shop: Shop) -> None:
    shop.api.fail_always(503)
    response = shop.send(MUG_ID, "updated")
    assert response.status_code == 503 and response.headers["retry-after"]
    shop.api.heal()
    assert shop.send(MUG_ID, "updated").status_code == 200


def test_the_periodic_pull_runs_when_due(client: TestClient) -> None:
    api = standin("bigcommerce").start()
    try:
        s = Shop(client, "bigcommerce", api)
        schedule = CatalogSchedule(s.runtime.registry.all, s.runtime.catalog_sync)
        now = time.time()
        [run] = schedule.run_once(now)  # never pulled: due
        assert run.status == "ok" and len(s.items()) == 71
        assert schedule.run_once(now + 3600) == []  # pulled an hour ago: not due
        del api.products[MUG_ID]
        [again] = schedule.run_once(now + 25 * 3600)
        assert again.deleted == 1 and "MUG-1" not in s.items()
        s.runtime.management.run("pixel.update", {"id": s.pixel["id"], "catalog_sync_hours": 0})
        assert schedule.run_once(now + 100 * 3600) == []  # turned off
    finally:
        api.stop()


def test_a_product_webhook_pushes_the_change_to_tiktok(client: TestClient) -> None:
    from tests.standins.tiktok_api import TikTokStandIn

    api = standin("shopify").start()
    try:
        with TikTokStandIn({"tt-token": None}) as tiktok:
            stored = tiktok.catalog.add_catalog("9001", "7001")
            s = Shop(client, "shopify", api)
            s.runtime.management.run("pixel.update", {
                "id": s.pixel["id"], "tiktok_api_base": tiktok.base_url,
                "tiktok_access_token": "tt-token", "tiktok_catalog_id": "7001",
                "tiktok_bc_id": "9001",
            })  # fmt: skip
            s.runtime.management.run("catalog.sync", {"pixel": s.pixel["id"]})
            api.products[MUG_ID].price = Decimal("9.50")
            assert s.send(MUG_ID, "updated").status_code == 200
            # The push runs after the answer (the test client waits for it).
            assert stored["MUG-1"]["sale_price"] == {"sale_price": "9.50", "currency": "USD"}
            assert len(stored) == 71
    finally:
        api.stop()
