"""Pushing the catalog to TikTok's Catalog API (stand-in): batches, deletions,
rejections, retries without duplicates, dead letters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest

from pixel_server.catalog.push import UPLOAD_PATH, CatalogPush
from pixel_server.catalog.store import CatalogStore, Stored
from pixel_server.pixel import Pixel
from pixel_server.sinks.answers import RetryPolicy
from pixel_server.storage.database import Database
from tests import catalog_helpers
from tests.catalog_helpers import add_pixel, item
from tests.standins.tiktok_api import TikTokStandIn
from tests.standins.tiktok_catalog import MAX_UPLOAD

database, catalog = catalog_helpers.database, catalog_helpers.catalog  # fixtures
TOKEN, BC, CATALOG = "tt-catalog-token", "9001", "7001"
SKUS = [f"SKU-{i:02d}" for i in range(45)]


@pytest.fixture
def tiktok() -> Iterator[TikTokStandIn]:
    with TikTokStandIn({TOKEN: None}) as standin:
        standin.catalog.add_catalog(BC, CATALOG)
        yield standin


@pytest.fixture
def pixel(database: Database, catalog: CatalogStore, tiktok: TikTokStandIn) -> Pixel:
    p = add_pixel(database, tiktok_api_base=tiktok.base_url, tiktok_access_token=TOKEN,
                  tiktok_catalog_id=CATALOG, tiktok_bc_id=BC)  # fmt: skip
    catalog.write(p.id, [Stored(item(s, sale_price=Decimal("8.00"), color="Red")) for s in SKUS]
                  + [Stored(item("BROKEN", link="/x"), ("bad_link",))])  # fmt: skip
    return p


def pusher(catalog: CatalogStore) -> CatalogPush:
    return CatalogPush(catalog, RetryPolicy(base=0.01, max_delay=0.02), max_attempts=4,
                       timeout=2.0)  # fmt: skip


def uploads(tiktok: TikTokStandIn) -> list[int]:
    return [n for path, n in tiktok.catalog.requests if path == UPLOAD_PATH]


def test_valid_items_go_in_batches_within_the_limit(
    pixel: Pixel, catalog: CatalogStore, tiktok: TikTokStandIn
) -> None:
    run = pusher(catalog).push(pixel)
    assert (run.status, run.changed, run.deleted, run.invalid) == ("ok", 45, 0, 0)
    assert uploads(tiktok) == [20, 20, 5] and max(uploads(tiktok)) <= MAX_UPLOAD
    stored = tiktok.catalog.catalogs[(BC, CATALOG)]
    assert sorted(stored) == SKUS  # BROKEN never sent
    assert stored["SKU-01"]["price"] == {"price": "10.00", "currency": "USD"}
    assert stored["SKU-01"]["sale_price"] == {"sale_price": "8.00", "currency": "USD"}
    assert stored["SKU-01"]["availability"] == "IN_STOCK" and stored["SKU-01"]["color"] == "Red"
    again = pusher(catalog).push(pixel)  # nothing changed: nothing sent
    assert (again.changed, len(uploads(tiktok))) == (0, 3)


def test_deleted_and_newly_invalid_items_are_deleted_at_tiktok(
    pixel: Pixel, catalog: CatalogStore, tiktok: TikTokStandIn
) -> None:
    pusher(catalog).push(pixel)
    catalog.write(pixel.id, [Stored(item("SKU-03", price=None), ("bad_price",)),
                             Stored(item("SKU-04", title="New title"))],
                  [("SKU-01", "1"), ("SKU-02", "1")])  # fmt: skip
    run = pusher(catalog).push(pixel)
    assert (run.changed, run.deleted) == (1, 3)
    stored = tiktok.catalog.catalogs[(BC, CATALOG)]
    assert {"SKU-01", "SKU-02", "SKU-03"}.isdisjoint(stored)
    assert stored["SKU-04"]["title"] == "New title" and len(stored) == 42


def test_a_rejected_item_is_recorded_with_tiktoks_message(
    pixel: Pixel, catalog: CatalogStore, tiktok: TikTokStandIn
) -> None:
    tiktok.catalog.reject("SKU-07", "image_link: the image could not be downloaded")
    run = pusher(catalog).push(pixel)
    assert (run.status, run.changed, run.invalid) == ("ok", 44, 1)
    assert "SKU-07" not in tiktok.catalog.catalogs[(BC, CATALOG)]
    rejected = [r for r in catalog.push_log(pixel.id, 500) if r["outcome"] == "rejected"]
    assert [(r["sku_id"], r["tiktok_code"]) for r in rejected] == [("SKU-07", 40002)]
    assert "could not be downloaded" in rejected[0]["tiktok_message"]
    assert pusher(catalog).push(pixel).invalid == 0  # not sent again until it changes


def test_a_retried_batch_is_not_duplicated(
    pixel: Pixel, catalog: CatalogStore, tiktok: TikTokStandIn
) -> None:
    tiktok.catalog.fail_next("accepted_500", "rate", "500")  # stored, answer lost; 40100; 5xx
    run = pusher(catalog).push(pixel)
    assert (run.status, run.changed) == ("ok", 45)
    assert uploads(tiktok) == [20, 20, 20, 20, 20, 5]  # the first batch three more times
    assert len(tiktok.catalog.catalogs[(BC, CATALOG)]) == 45
    log = catalog.push_log(pixel.id, 1000)
    sent = Counter(r["sku_id"] for r in log if r["outcome"] == "sent")
    assert set(sent.values()) == {1} and len(sent) == 45
    assert Counter(r["outcome"] for r in log)["retrying"] == 3 * 20


def test_a_refused_token_dead_letters_and_a_later_push_recovers(
    pixel: Pixel, catalog: CatalogStore, tiktok: TikTokStandIn
) -> None:
    tiktok.revoke(TOKEN)
    run = pusher(catalog).push(pixel)
    assert run.status == "failed" and "40105" in run.error
    dead = [r for r in catalog.push_log(pixel.id, 100) if r["outcome"] == "dead"]
    assert len(dead) == 20 and "access token" in dead[0]["tiktok_message"]
    tiktok.allow(TOKEN)
    assert pusher(catalog).push(pixel).changed == 45


def test_the_periodic_pull_pushes_what_it_changed(
    database: Database, catalog: CatalogStore, tiktok: TikTokStandIn
) -> None:
    from pixel_server.catalog.schedule import CatalogSchedule
    from pixel_server.catalog.sync import CatalogSync
    from tests.standins import catalog_apis
    from tests.standins.catalog_seed import seed

    with catalog_apis.running(catalog_apis.ShopifyCatalogApi("shp", seed(5))) as shop:
        p = add_pixel(database, platform="shopify", store_id="acme.myshopify.com",
                      store_api_base=shop.base_url, store_api_token="shp",
                      tiktok_api_base=tiktok.base_url, tiktok_access_token=TOKEN,
                      tiktok_catalog_id=CATALOG, tiktok_bc_id=BC)  # fmt: skip
        schedule = CatalogSchedule(lambda: [p], CatalogSync(catalog), pusher(catalog))
        runs = schedule.run_once()
        assert len(runs) == 2, runs
        full, pushed = runs
        assert (full.kind, full.status, pushed.kind, pushed.status) == ("full", "ok", "push", "ok")
        assert len(tiktok.catalog.catalogs[(BC, CATALOG)]) == full.variants == 16
