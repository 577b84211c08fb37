"""Shared pieces of the catalog tests: a migrated database, pixels, items."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pixel_server.catalog.model import Item
from pixel_server.catalog.store import CatalogStore
from pixel_server.config import Settings
from pixel_server.pixel import Pixel
from pixel_server.secretbox import SecretBox
from pixel_server.storage.client import parse_url
from pixel_server.storage.database import Database
from pixel_server.storage.pixels import PixelStore


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(parse_url(settings.clickhouse_dsn))
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def catalog(database: Database) -> CatalogStore:
    return CatalogStore(database.client)


def pixel_store(database: Database) -> PixelStore:
    """The registry of the test's database, with a secret key of its own."""
    key = Path(tempfile.gettempdir()) / f"pixel-test-{database.target.database}.key"
    return PixelStore(database.client(), SecretBox(key))


def add_pixel(database: Database, **values: Any) -> Pixel:
    pixel, _, _ = pixel_store(database).add(name="Acme", **values)
    return pixel


def item(sku: str, group: str = "1", **changes: Any) -> Item:
    values: dict[str, Any] = {
        "sku_id": sku,
        "item_group_id": group,
        "title": f"Product {sku}",
        "description": "A product.",
        "brand": "Acme",
        "link": f"https://shop.example.com/p/{group}",
        "image_link": f"https://cdn.example.com/{sku}.jpg",
        "price": Decimal("10.00"),
        "currency": "USD",
        "availability": "in stock",
    }
    values.update(changes)
    return Item(**values)
