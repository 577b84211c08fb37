"""``pixel-server catalog ...`` against a running server (and without one)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.standins import catalog_apis
from tests.standins.catalog_seed import seed
from tests.test_cli import Server, cli, cli_json

TOKEN = "bc-token-1"


@pytest.fixture
def bigcommerce() -> Iterator[catalog_apis.BigCommerceCatalogApi]:
    with catalog_apis.running(catalog_apis.BigCommerceCatalogApi(TOKEN, seed(10))) as api:
        yield api


def add_pixel(data: Path, base: str) -> str:
    created = cli_json(data, "pixel", "add", "--name", "Acme", "--platform", "bigcommerce",
                       "--store-id", "abc123xyz", "--store-api-base", base,
                       "--store-api-token", TOKEN)  # fmt: skip
    return str(created["id"])


def test_catalog_commands_through_the_running_server(
    tmp_path: Path, bigcommerce: catalog_apis.BigCommerceCatalogApi
) -> None:
    data = tmp_path / "data"
    server = Server(data, tmp_path / "server.log")
    try:
        pixel = add_pixel(data, bigcommerce.base_url)
        run = cli_json(data, "catalog", "sync", "--pixel", pixel)
        assert (run["status"], run["products"], run["variants"]) == ("ok", 12, 21)
        text = cli(data, "catalog", "sync", "--pixel", pixel, "--full").stdout
        assert text.startswith("sync ok: 12 products, 21 variants, 21 changed, 0 deleted")
        status = cli_json(data, "catalog", "status", "--pixel", pixel)
        assert status["counts"] == {"items": 21, "products": 12, "invalid": 0, "valid": 21}
        assert status["last_runs"][0]["status"] == "ok"
        assert status["match_rate"]["rate"] is None  # no events yet
        first = cli_json(data, "catalog", "feed-url", "--pixel", pixel)
        assert first["url"].startswith("http://") and first["token"]
        assert first["url"].endswith(first["path"])
        feed = httpx.get(server.url + first["path"])
        assert feed.status_code == 200
        assert len(list(csv.DictReader(io.StringIO(feed.text)))) == 21
        again = cli_json(data, "catalog", "feed-url", "--pixel", pixel)
        assert again["token"] is None  # shown once
        rotated = cli_json(data, "catalog", "rotate-feed-token", "--pixel", pixel)
        old = httpx.get(server.url + first["path"])
        new = httpx.get(server.url + rotated["path"])
        assert (old.status_code, new.status_code) == (404, 200)
        bigcommerce.fail_always(503)
        failed = cli(data, "catalog", "sync", "--pixel", pixel, check=False)
        assert failed.returncode == 1 and "the catalog was left as it was" in failed.stdout
    finally:
        server.stop()


def test_catalog_status_without_a_server(
    tmp_path: Path, bigcommerce: catalog_apis.BigCommerceCatalogApi
) -> None:
    data = tmp_path / "data"
    pixel = add_pixel(data, bigcommerce.base_url)
    assert cli_json(data, "catalog", "sync", "--pixel", pixel)["status"] == "ok"
    text = cli(data, "catalog", "status", "--pixel", pixel).stdout
    assert "items 21 (21 valid, 0 invalid) in 12 products" in text
    unknown = cli(data, "catalog", "status", "--pixel", "px_nope", check=False)
    assert unknown.returncode == 1 and "no pixel" in unknown.stderr
