"""The dashboard in headless Chromium (Debian's /usr/bin/chromium via Playwright):
it renders its charts without page errors, a reader cannot open the settings,
the owner can, and the demo store fills the dashboard through the real snippet.
Screenshots go to ``test-artifacts/`` (git-ignored)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, free_port
from tests.console_helpers import running_server
from tests.datagen import generate
from tests.ingest_helpers import add_pixel, shared_settings

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
    with running_server(settings) as (base, runtime):
        yield from _dataset(base, runtime)


def _dataset(base: str, runtime: Any) -> Iterator[dict[str, Any]]:
    pixel = add_pixel(runtime, timezone="Europe/Berlin", name="Browser shop")
    reader = runtime.management.run("token.add", {"pixel": pixel["id"], "role": "reader"})
    ds = generate(pixel_id=pixel["id"], tz="Europe/Berlin", visitors=120)
    runtime.insert_events(ds.records, "browser-test")
    yield {"base": base, "pixel": pixel, "reader": reader["token"], "runtime": runtime}


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
    page.wait_for_function("window.ttq && window.ttq._px")  # the snippet has loaded
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
