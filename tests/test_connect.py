"""What every platform's connect shares: settings it needs, platforms without
a store API, and the health check's catalog section."""

from __future__ import annotations

from pixel_server.management import Management
from tests.connect_helpers import add_pixel, failing, management, run
from tests.standins.bigcommerce_admin import running

__all__ = ["management"]


def test_missing_settings_are_named(management: Management) -> None:
    pixel = add_pixel(management, "bigcommerce", store_id="abc123xyz")
    message = failing(management, "connect", pixel)
    assert "--store-api-base" in message and "--store-api-token" in message


def test_a_plain_html_site_has_nothing_to_connect(management: Management) -> None:
    pixel = add_pixel(management, "html")
    assert "pixel-server install" in failing(management, "connect", pixel)


def test_an_unknown_pixel(management: Management) -> None:
    assert "no pixel" in failing(management, "connect", "px_missing")


def test_status_reports_the_catalogs_items_and_last_pull(management: Management) -> None:
    from pixel_server.catalog.store import CatalogStore, Stored, SyncRun
    from tests.catalog_helpers import item

    with running("tok") as store:
        pixel = add_pixel(
            management,
            "bigcommerce",
            store_id=store.store_hash,
            store_api_base=store.base_url,
            store_api_token="tok",
        )
        status = run(management, "connect.status", pixel)
        assert status["catalog"]["items"] == 0
        assert "catalog: no items synced yet" in status["problems"]
        catalog = CatalogStore(management.database.client)
        catalog.write(pixel, [Stored(item("SKU-1")), Stored(item("SKU-2"))])
        catalog.record(SyncRun(pixel, "s-1", "full", status="failed", error="store API down"))
        status = run(management, "connect.status", pixel)
        assert (status["catalog"]["items"], status["catalog"]["valid"]) == (2, 2)
        assert "catalog: the last full pull failed: store API down" in status["problems"]
        catalog.record(SyncRun(pixel, "s-2", "full", status="ok", started_at=9e9))
        status = run(management, "connect.status", pixel)
        assert status["catalog"]["last_full_sync"]["status"] == "ok"
        assert not [p for p in status["problems"] if p.startswith("catalog")]
