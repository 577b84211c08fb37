"""The report API, CSV, login, dashboard, settings and demo over HTTP: who may see
what (owner, reader, another pixel, nobody), parameter errors, and a few events
sent through /collect and /api/v1/events counted once end to end."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pixel_server.console.pages import amount
from tests.datagen import generate
from tests.ingest_helpers import (
    BROWSER_UA,
    ORIGIN,
    add_pixel,
    app_client,
    runtime_of,
    shared_settings,
)

REPORTS = ("overview", "funnel", "purchases", "products", "attribution", "operations")
RANGE = "from=2026-03-02&to=2026-03-15"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[dict[str, Any]]:
    settings = shared_settings(tmp_path_factory, engine_dir, PIXEL_DEMO="true")
    with app_client(settings) as client:
        runtime = runtime_of(client)
        pixel = add_pixel(runtime, timezone="Europe/Berlin")
        other = add_pixel(runtime, name="Other shop")
        runtime.management.run(
            "pixel.update", {"id": pixel["id"], "tiktok_access_token": "tt-secret-value-123"}
        )
        reader = runtime.management.run("token.add", {"pixel": pixel["id"], "role": "reader"})
        ds = generate(pixel_id=pixel["id"], tz="Europe/Berlin", visitors=60)
        runtime.insert_events(ds.records, "dashboard-test")
        yield {"client": client, "pixel": pixel, "other": other, "reader": reader["token"]}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize("name", REPORTS)
def test_every_report_answers_json_and_csv(env: dict[str, Any], name: str) -> None:
    c, pixel = env["client"], env["pixel"]
    r = c.get(f"/api/v1/reports/{pixel['id']}/{name}?{RANGE}", headers=bearer(env["reader"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["report"] == name and body["params"]["tz"] == "Europe/Berlin"
    for table in body["tables"]:
        csv = c.get(
            f"/api/v1/reports/{pixel['id']}/{name}.csv?{RANGE}&table={table}",
            headers=bearer(env["reader"]),
        )
        assert csv.status_code == 200
        assert csv.headers["content-type"].startswith("text/csv")
        assert "attachment" in csv.headers["content-disposition"]


def test_no_token_is_401_and_another_pixels_token_is_403(env: dict[str, Any]) -> None:
    c, pixel, other = env["client"], env["pixel"], env["other"]
    url = f"/api/v1/reports/{pixel['id']}/overview"
    c.cookies.clear()
    assert c.get(url).status_code == 401
    assert c.get(url, headers=bearer("prt_not-a-token")).status_code == 401
    r = c.get(url, headers=bearer(other["owner_token"]))
    assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_pixel"
    assert c.get(f"/dashboard/{pixel['id']}").status_code == 401
    assert (
        c.get(f"/dashboard/{pixel['id']}", headers=bearer(other["owner_token"])).status_code == 403
    )


@pytest.mark.parametrize(
    ("query", "status", "param"),
    [
        ("from=2026-02-30", 400, "from"),
        ("to=yesterday", 400, "to"),
        ("from=2026-03-10&to=2026-03-01", 422, "from"),
        ("from=2024-01-01&to=2026-03-01", 422, "from"),
        ("tz=Not/AZone", 400, "tz"),
        ("window=3", 400, "window"),
        ("model=linear", 400, "model"),
    ],
)
def test_bad_parameters_are_named(env: dict[str, Any], query: str, status: int, param: str) -> None:
    c, pixel = env["client"], env["pixel"]
    r = c.get(f"/api/v1/reports/{pixel['id']}/attribution?{query}", headers=bearer(env["reader"]))
    assert r.status_code == status
    assert r.json()["error"]["field"] == param


def test_unknown_report_and_table(env: dict[str, Any]) -> None:
    c, pixel = env["client"], env["pixel"]
    h = bearer(env["reader"])
    assert c.get(f"/api/v1/reports/{pixel['id']}/revenue", headers=h).status_code == 404
    r = c.get(f"/api/v1/reports/{pixel['id']}/funnel.csv?table=nope", headers=h)
    assert r.status_code == 400 and r.json()["error"]["field"] == "table"


def test_reader_sees_reports_but_not_settings(env: dict[str, Any]) -> None:
    c, pixel = env["client"], env["pixel"]
    url = f"/dashboard/{pixel['id']}/settings"
    assert c.get(url, headers=bearer(env["reader"])).status_code == 403
    owner = c.get(url, headers=bearer(pixel["owner_token"]))
    assert owner.status_code == 200
    assert "tt-secret-value-123" not in owner.text  # credentials only as "set"
    assert pixel["owner_token"] not in owner.text and pixel["api_key"] not in owner.text


def test_install_page_is_for_owners(env: dict[str, Any]) -> None:
    c, pixel = env["client"], env["pixel"]
    url = f"/install/{pixel['id']}"
    assert c.get(url, headers=bearer(env["reader"])).status_code == 403
    page = c.get(url, headers=bearer(pixel["owner_token"]))
    assert page.status_code == 200
    tag = f'<script async src="http://127.0.0.1:8000/p/{pixel["id"]}.js"></script>'
    assert html.escape(tag) in page.text.replace("&#34;", "&quot;")


def test_dashboard_range_and_bad_parameters(env: dict[str, Any]) -> None:
    c, pixel = env["client"], env["pixel"]
    h = bearer(pixel["owner_token"])
    page = c.get(f"/dashboard/{pixel['id']}?{RANGE}&window=28&model=first_touch", headers=h)
    assert page.status_code == 200
    assert 'value="2026-03-02"' in page.text and "first touch, 28-day" in page.text
    bad = c.get(f"/dashboard/{pixel['id']}?from=garbage", headers=h)
    assert bad.status_code == 200 and "from must be a date" in bad.text


def test_openapi_documents_the_report_endpoints(env: dict[str, Any]) -> None:
    doc = env["client"].get("/openapi.json").json()
    path = doc["paths"]["/api/v1/reports/{pixel_id}/{report}"]["get"]
    names = {p["name"] for p in path["parameters"]}
    assert {"pixel_id", "report", "from", "to", "tz", "window", "model"} <= names


def test_demo_store_uses_the_real_snippet(env: dict[str, Any]) -> None:
    c = env["client"]
    page = c.get("/demo")
    assert page.status_code == 200
    demo = next(p for p in runtime_of(c).registry.all() if p.name == "Demo store")
    assert f'src="http://127.0.0.1:8000/p/{demo.id}.js"' in page.text
    assert 'href="/login?token=prt_' in page.text and 'ttq.track("Purchase"' in page.text


def test_events_through_the_ingest_path_count_once(env: dict[str, Any]) -> None:
    """A purchase sent by the browser and by the back end, plus a browser retry."""
    c = env["client"]
    runtime = runtime_of(c)
    pixel = add_pixel(runtime, name="E2E shop")
    now = time.time()
    browser = {
        "event": "Purchase",
        "event_id": "purchase:e2e-1",
        "event_time": now,
        "user": {"anonymous_id": "anon-e2e"},
        "page": {"url": f"{ORIGIN}/thanks?ttclid=E.C.P.e2e", "referrer": ""},
        "properties": {"value": 1, "currency": "USD", "order_id": "e2e-1"},
    }
    server = {
        "event": "Purchase",
        "event_id": "purchase:e2e-1",
        "event_time": now,
        "properties": {
            "value": 42.5,
            "currency": "USD",
            "order_id": "e2e-1",
            "contents": [
                {"content_id": "sku-1", "item_group_id": "p-1", "quantity": 2, "price": 21.25}
            ],
        },
    }
    headers = {"origin": ORIGIN, "user-agent": BROWSER_UA, "content-type": "application/json"}
    for _ in range(2):  # the retry collapses at ingest
        r = c.post(f"/collect?p={pixel['id']}", json={"events": [browser]}, headers=headers)
        assert r.status_code == 202
    r = c.post(
        "/api/v1/events",
        headers=bearer(pixel["api_key"]),
        json={"event_source": "web", "event_source_id": pixel["id"], "data": [server]},
    )
    assert r.status_code == 200, r.text
    today = datetime.fromtimestamp(now, UTC).date().isoformat()
    url = f"/api/v1/reports/{pixel['id']}/purchases?from={today}&to={today}&tz=UTC"
    reader = runtime.wal.reader("loader") if runtime.wal else None
    deadline = time.monotonic() + 20
    while reader is not None and reader.backlog().bytes and time.monotonic() < deadline:
        time.sleep(0.05)  # both copies in ClickHouse (the loader flushes every 100 ms)
    body = c.get(url, headers=bearer(pixel["owner_token"])).json()
    assert [(t["currency"], t["orders"], t["revenue"]) for t in body["totals"]] == [
        ("USD", 1, 42.5)
    ]
    attribution = c.get(
        url.replace("purchases", "attribution"), headers=bearer(pixel["owner_token"])
    ).json()
    assert [(r["channel"], r["orders"]) for r in attribution["channels"]] == [("tiktok_paid", 1)]
    ops = c.get(url.replace("purchases", "operations"), headers=bearer(pixel["owner_token"]))
    dedup = ops.json()["dedup"]["by_sources"]
    assert [(r["sources"], r["events"]) for r in dedup] == [("browser+server", 1)]
    counters = ops.json()["process_counters"]["pixel_duplicates_collapsed_total"]
    assert counters["browser"] >= 1


def test_charts_are_readable_and_ranges_one_click_away(env: dict[str, Any]) -> None:
    c, pixel = env["client"], env["pixel"]
    h = bearer(pixel["owner_token"])
    page = c.get(f"/dashboard/{pixel['id']}?{RANGE}", headers=h).text
    assert "Mar 2" in page and "..." not in page.split('id="chart-overview"')[1][:20000]
    labels = re.findall(r'<a href="([^"]+)"(?: class="current"[^>]*)?>([^<]+)</a>', page)
    presets = {label: href for href, label in labels if "from=" in href}
    assert set(presets) >= {"Today", "7 days", "28 days", "90 days", "Month to date"}
    # The link's range is the pixel's today (Europe/Berlin), and following it marks it current.
    today = datetime.now(ZoneInfo("Europe/Berlin")).date().isoformat()
    week = html.unescape(presets["7 days"])
    assert f"to={today}" in week and "tz=Europe%2FBerlin" in week
    assert 'aria-current="true">7 days</a>' in c.get(week, headers=h).text
    # Amounts in the currency's own format, as the report computed them.
    totals = c.get(f"/api/v1/reports/{pixel['id']}/purchases?{RANGE}", headers=h).json()["totals"]
    for t in totals:
        assert amount(t["revenue"], t["currency"]) in page


def test_an_empty_range_gets_small_notes_not_empty_charts(env: dict[str, Any]) -> None:
    c, other = env["client"], env["other"]
    page = c.get(f"/dashboard/{other['id']}?{RANGE}", headers=bearer(other["owner_token"])).text
    assert page.count('class="empty"') == 4 and "pygal-chart" not in page
    assert "No visitors in this range yet." in page
