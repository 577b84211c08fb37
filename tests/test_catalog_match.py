"""Catalog match rate: which of the pixel's content ids are catalog items."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from starlette.testclient import TestClient

from pixel_server.catalog.match import lookup_titles, match_rate
from pixel_server.catalog.store import Stored
from pixel_server.pipeline.record import Record
from pixel_server.reports import run as run_report
from pixel_server.reports.base import ReportParams
from tests.catalog_helpers import item
from tests.ingest_helpers import add_pixel, runtime_of

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # pinned: the window is the 7 days before
COUNTED = ("ViewContent", "AddToCart", "Purchase")


def test_a_generated_dataset_gives_the_exact_rate(client: TestClient) -> None:
    runtime = runtime_of(client)
    pixel_id = add_pixel(runtime)["id"]
    catalog_ids = [f"SKU-{i}" for i in range(30)]
    invalid_ids = ["BROKEN-1", "BROKEN-2"]  # in the catalog, but never sent to TikTok
    stranger_ids = [f"OLD-{i}" for i in range(15)]
    runtime.catalog.write(
        pixel_id,
        [Stored(item(s)) for s in catalog_ids]
        + [Stored(item(s, link="/x"), ("bad_link",)) for s in invalid_ids],
    )
    runtime.catalog.write(pixel_id, [], [("SKU-29", "1")])  # deleted: no longer matches
    rng = random.Random(12)
    records, events_by_id = [], defaultdict(set)
    for n in range(400):
        name = rng.choice((*COUNTED, "PageView", "InitiateCheckout"))
        when = NOW - timedelta(days=rng.uniform(0, 9))
        ids = rng.sample(catalog_ids + invalid_ids + stranger_ids, rng.randint(1, 3))
        for source in rng.sample(["browser", "server", "webhook"], rng.randint(1, 2)):
            records.append(Record(
                pixel_id, name, name, f"e{n}", source, when.timestamp(), when.timestamp(),
                contents=[(c, "1", "", "", "", 1, None) for c in ids],
            ))  # fmt: skip
        if name in COUNTED and when >= NOW - timedelta(days=7):
            for c in ids:
                events_by_id[c].add((name, f"e{n}"))
    runtime.insert_events(records, "match-test")
    valid = set(catalog_ids) - {"SKU-29"}
    matched = {c for c in events_by_id if c in valid}
    m = match_rate(runtime.database.client(), pixel_id, now=NOW)
    assert (m.content_ids, m.matched_ids) == (len(events_by_id), len(matched))
    assert m.rate == round(len(matched) / len(events_by_id), 4)
    total = sum(len(v) for v in events_by_id.values())
    hits = sum(len(v) for c, v in events_by_id.items() if c in valid)
    assert (m.events, m.matched_events) == (total, hits)
    assert m.event_rate == round(hits / total, 4)
    unmatched = sorted(((-len(v), c) for c, v in events_by_id.items() if c not in valid))
    assert [u["content_id"] for u in m.top_unmatched] == [c for _, c in unmatched[:10]]
    assert 0 < m.rate < 1 and {"BROKEN-1", "SKU-29"} & {c for _, c in unmatched}


def test_no_events_is_no_rate_and_the_report_shows_it(client: TestClient) -> None:
    runtime = runtime_of(client)
    pixel_id = add_pixel(runtime)["id"]
    m = match_rate(runtime.database.client(), pixel_id, now=NOW)
    assert (m.rate, m.event_rate, m.top_unmatched) == (None, None, [])
    params = ReportParams(pixel_id, date(2026, 6, 1), date(2026, 6, 9), "UTC")
    report = run_report(runtime.database.client(), "operations", params)
    assert report.data["catalog_match"]["content_ids"] == 0


def test_reports_can_look_up_titles_and_options(client: TestClient) -> None:
    runtime = runtime_of(client)
    pixel_id = add_pixel(runtime)["id"]
    runtime.catalog.write(pixel_id, [Stored(item("SWEAT-RED-M", title="Sweatshirt",
                                                 options="Red / M"))])  # fmt: skip
    found = lookup_titles(runtime.database.client(), pixel_id, ["SWEAT-RED-M", "NOPE"])
    assert found == {"SWEAT-RED-M": {"title": "Sweatshirt", "options": "Red / M",
                                     "image_link": "https://cdn.example.com/SWEAT-RED-M.jpg",
                                     "link": "https://shop.example.com/p/1"}}  # fmt: skip


def test_the_products_report_and_dashboard_name_what_the_catalog_knows(
    client: TestClient,
) -> None:
    runtime = runtime_of(client)
    pixel = add_pixel(runtime)
    pixel_id = pixel["id"]
    runtime.catalog.write(pixel_id, [
        Stored(item("SW-RED-M", group="SW", title="Heavy sweatshirt", options="Red / M")),
        Stored(item("SW-BLUE-S", group="SW", title="Heavy sweatshirt", options="Blue / S")),
    ])  # fmt: skip
    when = NOW - timedelta(days=1)
    runtime.insert_events([
        Record(pixel_id, "ViewContent", "ViewContent", f"v{i}", "browser", when.timestamp(),
               when.timestamp(), contents=[(sku, "SW" if sku != "LOOSE-1" else "LOOSE", "", "",
                                            "", 1, None)])
        for i, sku in enumerate(("SW-RED-M", "SW-BLUE-S", "LOOSE-1"))
    ], "titles")  # fmt: skip
    day = when.date()
    params = ReportParams(pixel_id, day, day, "UTC")
    products = {
        p["product"]: p
        for p in run_report(runtime.database.client(), "products", params).data["products"]
    }
    sweat = products["SW"]
    assert sweat["title"] == "Heavy sweatshirt"
    assert sweat["image_link"].startswith("https://cdn.example.com/")
    assert sorted(v["options"] for v in sweat["variants"]) == ["Blue / S", "Red / M"]
    assert "title" not in products["LOOSE"]  # unknown to the catalog: its id only
    page = client.get(
        f"/dashboard/{pixel_id}",
        params={"from": day.isoformat(), "to": day.isoformat(), "tz": "UTC"},
        headers={"authorization": f"Bearer {pixel['owner_token']}"},
    )
    assert page.status_code == 200
    assert "Heavy sweatshirt" in page.text and "Red / M" in page.text
    assert 'class="thumb" src="https://cdn.example.com/' in page.text
    match = page.text[page.text.index('id="catalog-match"') :]
    assert "<strong>66.7%</strong> of the 3 product ids" in match and "LOOSE-1" in match
