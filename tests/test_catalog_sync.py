"""Full catalog pulls from each platform's admin API (stand-ins), into ClickHouse."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from pixel_server.catalog.model import Item
from pixel_server.catalog.sources import Pacing
from pixel_server.catalog.store import CatalogStore
from pixel_server.catalog.sync import CatalogSync
from pixel_server.catalog.validate import https_url
from pixel_server.pixel import Pixel
from pixel_server.sinks.answers import RetryPolicy
from pixel_server.storage.database import Database
from tests import catalog_helpers
from tests.catalog_helpers import add_pixel, pixel_store
from tests.standins import catalog_apis
from tests.standins.catalog_seed import (
    HIDDEN_ID,
    MUG_ID,
    NO_PRICE_SKU,
    OUT_OF_STOCK_SKU,
    SWEATSHIRT_ID,
    seed,
)

database, catalog = catalog_helpers.database, catalog_helpers.catalog  # fixtures
PLATFORMS = ("ecwid", "bigcommerce", "shopify", "woocommerce")
TOKEN = "store-token-1"


@dataclass
class Store:
    platform: str
    api: Any
    pixel: Pixel
    sync: CatalogSync
    catalog: CatalogStore
    waits: list[float]

    def items(self) -> dict[str, Item]:
        return {i.sku_id: i for page in self.catalog.feed_pages(self.pixel.id) for i in page}


def standin(platform: str) -> Any:
    products = seed(fillers=60)
    if platform == "ecwid":
        return catalog_apis.EcwidCatalogApi(TOKEN, products)
    if platform == "bigcommerce":
        return catalog_apis.BigCommerceCatalogApi(TOKEN, products)
    if platform == "shopify":
        return catalog_apis.ShopifyCatalogApi(TOKEN, products)
    return catalog_apis.WooCatalogApi("ck_key", "cs_secret", products)


def pixel_settings(platform: str, base: str) -> dict[str, Any]:
    store_id = {"ecwid": "1003", "bigcommerce": "abc123xyz", "shopify": "acme.myshopify.com",
                "woocommerce": "https://shop.example.com"}[platform]  # fmt: skip
    token = "ck_key:cs_secret" if platform == "woocommerce" else TOKEN
    return {"platform": platform, "store_id": store_id, "store_api_base": base,
            "store_api_token": token}  # fmt: skip


def make_store(platform: str, database: Database, catalog: CatalogStore) -> Iterator[Store]:
    api = standin(platform)
    api.page_cap = 25  # 63 products: three pages or more everywhere
    with catalog_apis.running(api):
        pixel = add_pixel(database, **pixel_settings(platform, api.base_url))
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            time.sleep(seconds)

        pacing = Pacing(RetryPolicy(base=0.01, max_delay=0.3, jitter=0.0), max_attempts=4,
                        timeout=5.0, sleep=sleep)  # fmt: skip
        yield Store(platform, api, pixel, CatalogSync(catalog, pacing=pacing), catalog, waits)


@pytest.fixture(params=PLATFORMS)
def store(
    request: pytest.FixtureRequest, database: Database, catalog: CatalogStore
) -> Iterator[Store]:
    yield from make_store(request.param, database, catalog)


def test_a_full_pull_gives_one_row_per_variant(store: Store) -> None:
    run = store.sync.full(store.pixel)
    assert run.status == "ok", run.error
    items = store.items()
    sweat = [i for i in items.values() if i.item_group_id == str(SWEATSHIRT_ID)]
    assert len(sweat) == 10
    assert {i.options for i in sweat} == {f"{c} / {s}" for c in ("Red", "Blue")
                                          for s in ("S", "M", "L", "XL", "XXL")}  # fmt: skip
    assert items[OUT_OF_STOCK_SKU].availability == "out of stock"
    assert all(i.availability == "in stock" for i in sweat if i.sku_id != OUT_OF_STOCK_SKU)
    assert items[NO_PRICE_SKU].price == Decimal("45.00")  # the product's price
    assert items["SWEAT-RED-M"].price == Decimal("50.90")
    assert (items["SWEAT-BLUE-S"].color, items["SWEAT-BLUE-S"].size) == ("Blue", "S")
    assert items["SWEAT-RED-S"].description == "Warm cotton sweatshirt.\nSoft\nRoomy"
    mug = items["MUG-1"]  # no variants: one item, the snippet's content_id
    assert mug.item_group_id == str(MUG_ID)
    assert (mug.price, mug.sale_price) == (Decimal("15.00"), Decimal("12.00"))
    assert not any(i.item_group_id == str(HIDDEN_ID) for i in items.values())
    assert all(https_url(i.link) and https_url(i.image_link) for i in items.values())
    assert all(i.currency == "USD" and i.brand == "Acme" for i in items.values())
    assert len(items) == 10 + 1 + 60
    assert store.api.catalog_pages() >= 3
    assert (run.products, run.variants, run.changed, run.deleted, run.invalid) == (62, 71, 71, 0, 0)


def test_a_second_pull_changes_only_what_changed(store: Store) -> None:
    store.sync.full(store.pixel)
    store.api.products[MUG_ID].price = Decimal("11.00")
    del store.api.products[200]
    store.api.products[201].visible = False
    run = store.sync.full(store.pixel)
    assert (run.status, run.changed, run.deleted) == ("ok", 1, 2)
    items = store.items()
    assert items["MUG-1"].sale_price == Decimal("11.00")
    assert "STICKER-00000" not in items and "STICKER-00001" not in items


def test_rate_limits_and_server_errors_mid_pull_still_give_a_complete_catalog(
    store: Store,
) -> None:
    store.api.retry_after = "0.2"
    store.api.fail_after(1, 429)  # the second catalog request is rate limited ...

    def heal_after_one(seconds: float) -> None:
        store.waits.append(seconds)
        if len(store.waits) == 1:
            store.api.heal()
            store.api.inject(1, 500)  # ... and its retry meets a server error once

    store.sync.pacing = Pacing(RetryPolicy(base=0.01, max_delay=0.3, jitter=0.0),
                               max_attempts=4, sleep=heal_after_one)  # fmt: skip
    run = store.sync.full(store.pixel)
    assert run.status == "ok", run.error
    assert len(store.items()) == 71
    assert store.waits[0] >= 0.2  # Retry-After honoured


def test_a_pull_that_cannot_finish_leaves_the_previous_catalog(store: Store) -> None:
    assert store.sync.full(store.pixel).status == "ok"
    before = store.items()
    for pid in range(200, 220):
        del store.api.products[pid]
    store.api.products[MUG_ID].price = Decimal("1.00")
    store.api.fail_after(1, 503)  # the first page is read, the second never
    run = store.sync.full(store.pixel)
    assert run.status == "failed" and "503" in run.error
    assert store.items() == before
    [latest, _] = store.catalog.runs(store.pixel.id)
    assert (latest.status, latest.error) == ("failed", run.error)
    store.api.heal()
    assert store.sync.full(store.pixel).status == "ok"
    assert len(store.items()) == 71 - 20


def test_a_refused_token_fails_the_pull_with_the_reason(store: Store, database: Database) -> None:
    pixel = pixel_store(database).update(store.pixel.id, store_api_token="wrong:token")
    run = store.sync.full(pixel)
    assert run.status == "failed" and "refused the token" in run.error


def test_bigcommerce_pauses_when_its_rate_limit_window_is_spent(
    database: Database, catalog: CatalogStore
) -> None:
    for s in make_store("bigcommerce", database, catalog):
        s.api.quota, s.api.window_ms = 2, 150
        run = s.sync.full(s.pixel)
        assert run.status == "ok", run.error
        assert len(s.items()) == 71
        assert s.waits and s.api.rate_limited == 0  # paused before, never ran into 429


def test_shopify_throttled_answers_are_retried(database: Database, catalog: CatalogStore) -> None:
    for s in make_store("shopify", database, catalog):
        s.api.throttle(2)
        run = s.sync.full(s.pixel)
        assert run.status == "ok", run.error
        assert len(s.items()) == 71 and len(s.waits) >= 2
