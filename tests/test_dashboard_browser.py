"""The dashboard in headless Chromium (Debian's /usr/bin/chromium via Playwright):
it renders its charts without page errors, a reader cannot open the settings,
the owner can, and the demo store fills the dashboard through the real snippet.
Screenshots go to ``test-artifacts/`` (git-ignored)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, free_port, subprocess_env
from tests.console_helpers import running_server
from tests.datagen import generate
from tests.ingest_helpers import BROWSER_UA, ORIGIN, add_pixel, shared_settings
from tests.standins.tiktok_api import TikTokStandIn

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
RANGE = "from=2026-03-02&to=2026-03-15"
TIKTOK_TOKEN, TIKTOK_CODE = "browser-tiktok-token-1", "BROWSER1CODE"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[dict[str, Any]]:
    """The real app on uvicorn in a thread (lifespan on), demo mode, with a dataset."""
    port = free_port()
    settings = shared_settings(
        tmp_path_factory,
        engine_dir,
        PIXEL_DEMO="true",
        PIXEL_PORT=str(port),
        PIXEL_WAL_FSYNC="false",
    )
    with (
        TikTokStandIn({TIKTOK_TOKEN: {TIKTOK_CODE}}) as api,
        running_server(settings) as (
            base,
            runtime,
        ),
    ):
        pixel = add_pixel(runtime, timezone="Europe/Berlin", name="Browser shop")
        reader = runtime.management.run("token.add", {"pixel": pixel["id"], "role": "reader"})
        ds = generate(pixel_id=pixel["id"], tz="Europe/Berlin", visitors=120)
        runtime.insert_events(ds.records, "browser-test")
        yield {"base": base, "pixel": pixel, "reader": reader["token"], "runtime": runtime,
               "api": api, "settings": settings}  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Started and stopped within this module: the sync API holds an event loop meanwhile.
    with playwright_sync.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser: Any, **context: Any) -> tuple[Any, list[str]]:
    page = browser.new_context(**context).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return page, errors


def test_owner_sees_charts_tables_and_settings(server: dict[str, Any], browser: Any) -> None:
    page, errors = open_page(browser, viewport={"width": 1366, "height": 900})
    pixel = server["pixel"]
    page.goto(f"{server['base']}/login?token={pixel['owner_token']}")
    assert page.url.endswith(f"/dashboard/{pixel['id']}")
    response = page.goto(f"{server['base']}/dashboard/{pixel['id']}?{RANGE}")
    assert response.status == 200
    assert page.locator("svg.pygal-chart").count() == 4
    for chart in ("overview", "funnel", "revenue", "channels"):
        box = page.locator(f"#chart-{chart} svg").bounding_box()
        assert box and box["width"] > 300 and box["height"] > 100, chart
    assert page.locator("#products tbody.product").count() == 4
    hoodie = page.locator("#products tbody.product", has_text="hoodie")
    assert hoodie.locator("tr.variant-row").count() == 4
    second = page.locator("#products tbody.product").nth(1)  # the first one starts open
    assert not second.locator("tr.variant-row").first.is_visible()  # closed: variants hidden
    second.locator("summary").click()
    assert second.locator("tr.variant-row").first.is_visible()
    assert page.locator("#attribution tbody tr").count() >= 2
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    install = page.goto(f"{server['base']}/install/{pixel['id']}")
    assert install.status == 200
    assert f"/p/{pixel['id']}.js" in page.locator("#script-tag").inner_text()
    assert errors == []


def test_reader_cannot_open_settings(server: dict[str, Any], browser: Any) -> None:
    page, errors = open_page(browser, viewport={"width": 390, "height": 844}, is_mobile=True)
    pixel = server["pixel"]
    page.goto(f"{server['base']}/login?token={server['reader']}")
    response = page.goto(f"{server['base']}/dashboard/{pixel['id']}?{RANGE}")
    assert response.status == 200 and page.locator("svg.pygal-chart").count() == 4
    assert page.get_by_role("link", name="Settings").count() == 0
    # Readable on a phone: nothing wider than the screen but scrollable tables.
    too_wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
        " > 391 && !e.closest('.scroll')).map(e => e.tagName + '.' + e.className).slice(0, 5)"
    )
    assert too_wide == []
    page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=False)
    denied = page.goto(f"{server['base']}/dashboard/{pixel['id']}/settings")
    assert denied.status == 403
    assert errors == [] or all("403" in e for e in errors)


def test_demo_store_fills_the_dashboard(server: dict[str, Any], browser: Any) -> None:
    page, errors = open_page(browser, viewport={"width": 1200, "height": 900})
    page.goto(f"{server['base']}/demo?ttclid=E.C.P.browser-demo")
    page.wait_for_function("window._pxs && window.ttq")  # the snippet has loaded
    card = page.locator(".product[data-product=hoodie]")
    card.locator("button.view").click()
    card.locator("button.add").click()
    page.locator("#checkout").click()
    page.locator("#payment").click()
    page.locator("#buy").click()
    login = page.locator("#dashboard-link").get_attribute("href")
    runtime = server["runtime"]
    demo = next(p for p in runtime.registry.all() if p.name == "Demo store")
    page.goto(f"{server['base']}{login}")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    deadline = time.monotonic() + 20
    while True:  # the loader flushes every 100 ms
        page.goto(f"{server['base']}/dashboard/{demo.id}?from={today}&to={today}&tz=UTC")
        cells = page.locator("#attribution tbody tr").first.inner_text()
        if "tiktok paid" in cells or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "tiktok paid" in cells and "USD" in cells
    page.screenshot(path=str(ARTIFACTS / "demo-dashboard.png"), full_page=True)
    assert errors == []


# ---------------------------------------------------------------- console


def log_in(page: Any, base: str, token: str) -> None:
    """Through the login form, the way a merchant does."""
    page.goto(f"{base}/login")
    page.fill("input[name=token]", token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def test_owner_sets_up_tiktok_on_the_settings_page(server: dict[str, Any], browser: Any) -> None:
    base, runtime, api = server["base"], server["runtime"], server["api"]
    pixel = add_pixel(runtime, name="Settings shop", tiktok_api_base=api.base_url)
    page, errors = open_page(browser, viewport={"width": 1280, "height": 1000})
    log_in(page, base, pixel["owner_token"])
    assert page.url.endswith(f"/dashboard/{pixel['id']}")
    page.get_by_role("link", name="Settings").click()
    page.fill("input[name=tiktok_pixel_code]", TIKTOK_CODE)
    page.fill("input[name=tiktok_access_token]", TIKTOK_TOKEN)
    page.fill("input[name=tiktok_test_event_code]", "TEST12345")
    page.get_by_role("button", name="Save settings").click()
    assert "Saved:" in page.locator("#settings-saved").inner_text()
    assert page.locator("#state-tiktok_access_token").inner_text() == "set"
    assert TIKTOK_TOKEN not in page.content()
    shown = subprocess.run(
        [sys.executable, "-m", "pixel_server", "pixel", "show", pixel["id"], "--json"],
        env=subprocess_env(PIXEL_DATA_DIR=str(server["settings"].data_dir)),
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    cli = json.loads(shown.stdout)
    assert cli["tiktok_pixel_code"] == TIKTOK_CODE and cli["tiktok_access_token"] is True
    page.get_by_role("button", name="Check TikTok connection").click()
    assert "TikTok accepted the test event" in page.locator("#tiktok-check").inner_text()
    page.screenshot(path=str(ARTIFACTS / "settings.png"), full_page=True)
    api.revoke(TIKTOK_TOKEN)
    try:
        page.get_by_role("button", name="Check TikTok connection").click()
        check = page.locator("#tiktok-check").inner_text()
        assert "access token rejected (40105): enter a new token" in check
    finally:
        api.allow(TIKTOK_TOKEN, TIKTOK_CODE)
    assert errors == []


def test_live_view_and_checklist_follow_a_page_view(server: dict[str, Any], browser: Any) -> None:
    base, runtime = server["base"], server["runtime"]
    pixel = add_pixel(runtime, name="Live shop")
    page, errors = open_page(browser, viewport={"width": 1280, "height": 800})
    log_in(page, base, pixel["owner_token"])
    todo = page.locator('#checklist li.todo[data-step="PageView seen"]')
    assert todo.count() == 1
    page.get_by_role("link", name="Live events").click()
    page.locator("#live-status", has_text="Connected").wait_for()
    event = {"event": "PageView", "event_id": "pv-browser-live-1", "event_time": time.time(),
             "page": {"url": ORIGIN + "/products/hoodie"}}  # fmt: skip
    r = httpx.post(f"{base}/collect?p={pixel['id']}", json={"events": [event]},
                   headers={"origin": ORIGIN, "user-agent": BROWSER_UA})  # fmt: skip
    assert r.status_code == 202
    # Pushed to the page within 2 s of being accepted (a wait, not a measurement).
    row = page.locator('#live-events tr[data-event="PageView"]')
    row.wait_for(timeout=2000)
    assert "pv-browser-live-1" in row.inner_text() and "browser" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "live-events.png"), full_page=True)
    page.goto(f"{base}/dashboard/{pixel['id']}")
    assert page.locator('#checklist li.done[data-step="PageView seen"]').count() == 1
    assert page.locator('#checklist li.done[data-step="Snippet seen on the storefront"]').count()
    assert errors == []


def test_agency_token_sees_exactly_its_two_pixels(server: dict[str, Any], browser: Any) -> None:
    base, runtime = server["base"], server["runtime"]
    first = add_pixel(runtime, name="Agency client A", timezone="Europe/Berlin")
    second = add_pixel(runtime, name="Agency client B", currency="EUR")
    agency = runtime.management.run(
        "token.add", {"pixels": f"{first['id']},{second['id']}", "role": "reader",
                      "label": "Acme Agency"},
    )  # fmt: skip
    page, errors = open_page(browser, viewport={"width": 1200, "height": 700})
    log_in(page, base, agency["token"])
    assert page.url.endswith("/console")
    rows = page.locator("#pixels tbody tr")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.pixel)")) == sorted(
        [first["id"], second["id"]]
    )
    assert page.get_by_role("link", name="Agency client B").count() == 1
    page.screenshot(path=str(ARTIFACTS / "agency-home.png"), full_page=True)
    page.get_by_role("link", name="Agency client A").click()
    assert page.get_by_role("link", name="Settings").count() == 0  # a reader
    assert page.goto(f"{base}/dashboard/{server['pixel']['id']}").status == 403
    assert errors == [] or all("403" in e for e in errors)
