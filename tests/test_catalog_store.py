"""Catalog storage: versions, tombstones, staged full pulls, sync runs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pixel_server.catalog.store import CatalogStore, Stored, SyncRun
from tests import catalog_helpers
from tests.catalog_helpers import item

database, catalog = catalog_helpers.database, catalog_helpers.catalog  # fixtures


def skus(store: CatalogStore, pixel: str, valid_only: bool = True) -> list[str]:
    return [i.sku_id for page in store.feed_pages(pixel, valid_only, 2) for i in page]


def test_the_latest_version_wins_and_tombstones_delete(catalog: CatalogStore) -> None:
    catalog.write("px", [Stored(item("a")), Stored(item("b")), Stored(item("c"))])
    catalog.write("px", [Stored(item("b", price=Decimal("12.50")))], [("c", "1")])
    assert skus(catalog, "px") == ["a", "b"]
    assert catalog.items("px", ["b", "c"])["b"].price == Decimal("12.50")
    assert set(catalog.live("px")) == {"a", "b"}
    catalog.write("px", [Stored(item("c"))])  # a deleted item may come back
    assert skus(catalog, "px") == ["a", "b", "c"]
    assert skus(catalog, "other") == []


def test_invalid_items_are_kept_out_of_the_feed_and_listed(catalog: CatalogStore) -> None:
    catalog.write("px", [Stored(item("a")), Stored(item("b", link="/b"), ("bad_link",))])
    assert skus(catalog, "px") == ["a"]
    assert skus(catalog, "px", valid_only=False) == ["a", "b"]
    assert catalog.invalid("px") == [
        {"sku_id": "b", "item_group_id": "1", "title": "Product b", "problems": ["bad_link"]}
    ]
    assert catalog.counts("px") == {"items": 2, "products": 1, "invalid": 1, "valid": 1}


def test_a_staged_pull_changes_nothing_until_it_commits(catalog: CatalogStore) -> None:
    catalog.write("px", [Stored(item("a")), Stored(item("b"))])
    before = catalog.feed_state("px")
    catalog.stage("sync-1", "px", [Stored(item("a", title="New"))])
    assert catalog.items("px", ["a"])["a"].title == "Product a"
    assert catalog.feed_state("px") == before
    catalog.commit("sync-1", "px", [("b", "1")])
    assert skus(catalog, "px") == ["a"]
    assert catalog.items("px", ["a"])["a"].title == "New"
    assert catalog.feed_state("px").version > before.version


def test_sync_runs_keep_their_latest_state(catalog: CatalogStore) -> None:
    run = SyncRun("px", "s1", "full")
    catalog.record(run)
    run.status, run.finished_at, run.changed = "ok", run.started_at + 1, 7
    catalog.record(run)
    [latest] = catalog.runs("px")
    assert (latest.status, latest.changed) == ("ok", 7)
    assert latest.finished_at == pytest.approx(run.finished_at, abs=0.001)


def test_the_feed_csv_pages_cover_every_valid_item_once(catalog: CatalogStore) -> None:
    import csv
    import io

    catalog.write("px", [Stored(item(s, sale_price=Decimal("8.50"))) for s in "abcde"]
                  + [Stored(item("f", link="/f"), ("bad_link",))])  # fmt: skip
    catalog.write("px", [], [("c", "1")])
    chunks = list(catalog.feed_csv_pages("px", ["sku_id", "price", "sale_price"], page_rows=2))
    assert len(chunks) == 2
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    assert rows == [[s, "10.00 USD", "8.50 USD"] for s in "abde"]
