"""The catalog feed TikTok fetches: CSV in TikTok's format, token, 304s, gzip."""

from __future__ import annotations

import csv
import gzip
import io
from decimal import Decimal

import httpx
from starlette.testclient import TestClient

from pixel_server.catalog.feed import COLUMNS, REQUIRED
from pixel_server.catalog.store import Stored
from tests.catalog_helpers import item
from tests.ingest_helpers import add_pixel, runtime_of


def setup(client: TestClient) -> tuple[str, str]:
    runtime = runtime_of(client)
    pixel = add_pixel(runtime)
    runtime.catalog.write(pixel["id"], [
        Stored(item("SWEAT-RED-M", "101", color="Red", size="M", options="Red / M",
                    sale_price=Decimal("8.00"),
                    additional_image_links=("https://cdn.example.com/a.jpg",
                                            "https://cdn.example.com/b.jpg"))),
        Stored(item("SWEAT-RED-L", "101", description='Says "hi", twice,\non two lines')),
        Stored(item("BROKEN", "102", link="/relative"), ("bad_link",)),
    ])  # fmt: skip
    result = runtime.management.run("catalog.feed_url", {"pixel": pixel["id"]})
    return pixel["id"], result["path"]


def rows(response: httpx.Response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.text)))


def test_the_feed_is_tiktok_csv_one_row_per_valid_variant(client: TestClient) -> None:
    _, path = setup(client)
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    header = next(csv.reader(io.StringIO(response.text)))
    assert tuple(header[: len(REQUIRED)]) == REQUIRED and tuple(header) == COLUMNS
    feed = rows(response)
    assert [r["sku_id"] for r in feed] == ["SWEAT-RED-L", "SWEAT-RED-M"]  # BROKEN left out
    red_m = feed[1]
    assert (red_m["price"], red_m["sale_price"]) == ("10.00 USD", "8.00 USD")
    assert (red_m["item_group_id"], red_m["color"], red_m["size"]) == ("101", "Red", "M")
    assert red_m["additional_image_link"] == (
        "https://cdn.example.com/a.jpg,https://cdn.example.com/b.jpg"
    )
    assert feed[0]["description"] == 'Says "hi", twice,\non two lines'


def test_a_wrong_or_missing_token_is_404(client: TestClient) -> None:
    pixel_id, path = setup(client)
    for url in (f"/feeds/{pixel_id}/tiktok.csv", f"/feeds/{pixel_id}/tiktok.csv?token=nope",
                path.replace(pixel_id, "px_unknown")):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_rotating_the_token_retires_the_old_url(client: TestClient) -> None:
    pixel_id, old = setup(client)
    runtime = runtime_of(client)
    assert runtime.management.run("catalog.feed_url", {"pixel": pixel_id})["token"] is None
    new = runtime.management.run("catalog.rotate_feed_token", {"pixel": pixel_id})["path"]
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200


def test_an_unchanged_feed_is_304_and_a_change_is_not(client: TestClient) -> None:
    pixel_id, path = setup(client)
    first = client.get(path)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert client.get(path, headers={"if-none-match": etag}).status_code == 304
    assert client.get(path, headers={"if-modified-since": modified}).status_code == 304
    runtime_of(client).catalog.write(pixel_id, [Stored(item("NEW", "103"))])
    again = client.get(path, headers={"if-none-match": etag})
    assert again.status_code == 200 and again.headers["etag"] != etag
    assert "NEW" in [r["sku_id"] for r in rows(again)]


def test_the_feed_is_gzipped_for_clients_that_accept_it(client: TestClient) -> None:
    _, path = setup(client)
    with client.stream("GET", path, headers={"accept-encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    text = gzip.decompress(raw).decode()
    assert text.splitlines()[0].startswith("sku_id,title,description,availability")
    plain = client.get(path, headers={"accept-encoding": "identity"})
    assert plain.text == text and plain.headers["etag"] != response.headers["etag"]
