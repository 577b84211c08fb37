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


def test_status_reports_the_catalog_once_its_tables_exist(management: Management) -> None:
    with running("tok") as store:
        pixel = add_pixel(
            management,
            "bigcommerce",
            store_id=store.store_hash,
            store_api_base=store.base_url,
            store_api_token="tok",
        )
        assert run(management, "connect.status", pixel)["catalog"] == "no catalog tables"
        client = management.database.client()
        client.command(
            "CREATE TABLE catalog_items (pixel_id String, sku_id String)"
            " ENGINE = MergeTree ORDER BY (pixel_id, sku_id)"
        )
        status = run(management, "connect.status", pixel)
        assert status["catalog"] == {"catalog_items": 0}
        assert "catalog: no items synced yet" in status["problems"]
        client.insert(
            "catalog_items",
            [[pixel, "SKU-1"], [pixel, "SKU-2"], ["px_other", "X"]],
            column_names=["pixel_id", "sku_id"],
        )
        assert run(management, "connect.status", pixel)["catalog"] == {"catalog_items": 2}
