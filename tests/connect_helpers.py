"""What the store-connection tests share: a management handle on the test's
own database, a pixel for a platform, and running connect operations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pixel_server.config import Settings
from pixel_server.management import Management
from pixel_server.pixel import RegistryError
from pixel_server.secretbox import SecretBox
from pixel_server.storage.client import parse_url
from pixel_server.storage.database import Database

# Where the store's script and webhooks point (never called: the stand-ins only
# record it, and BigCommerce and Shopify insist on https).
BASE_URL = "https://pixels.example.test"
SECRET = "whsec-connect-test"


@pytest.fixture
def management(settings: Settings) -> Iterator[Management]:
    database = Database(parse_url(settings.clickhouse_dsn))
    try:
        yield Management(database, box=SecretBox(settings.secret_key_path))
    finally:
        database.close()


def add_pixel(m: Management, platform: str, **settings: Any) -> str:
    pixel = m.run(
        "pixel.add",
        {"name": f"{platform} shop", "platform": platform, "webhook_secret": SECRET, **settings},
    )
    return str(pixel["id"])


def run(m: Management, op: str, pixel_id: str) -> Any:
    return m.run(op, {"pixel": pixel_id, "base_url": BASE_URL})


def failing(m: Management, op: str, pixel_id: str) -> str:
    """The error message of an operation that must fail."""
    with pytest.raises(RegistryError) as caught:
        run(m, op, pixel_id)
    return str(caught.value)
