"""Browser tests: Debian's headless Chromium, driven by Playwright, against
test store pages served on 127.0.0.1.

Two local servers on two ports, so two origins, like a real store and us:

- the **store** (fixture ``store``) serves ``tests/browser/pages/`` and the
  snippet, rendered by ``render_snippet`` with the settings a test registers;
- the **collector** (fixture ``collector``) is where the snippet sends events.

The collector seam: tests talk to the collector only through

    collector.endpoint      base URL the snippet posts to ({endpoint}/collect?p=...)
    collector.pixel_id      a fresh pixel id for this test
    collector.events(pixel_id=None, *, count=None, timeout=10.0) -> list[dict]
                            the events received for the pixel (default: this
                            test's), each the JSON object the browser sent, in
                            arrival order; with ``count``, waits until that many
                            have arrived or ``timeout`` seconds have passed

It is a capture server that checks the wire contract strictly (see
``CaptureServer``) and passes every request on to the real pixel-server
(embedded ClickHouse), which must accept it; ``collector.stored(count)`` reads
back the rows it stored, and ``Journey.end()`` checks them against what the
browser sent.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pixel_server.app import create_app
from pixel_server.config import load_settings
from pixel_server.runtime import Runtime
from tests.browser.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CaptureServer,
    Collector,
    Store,
    Tab,
    ThreadedServer,
    store_app,
)
from tests.conftest import UNLIMITED

# ----------------------------------------------------------------- fixtures
# Package scope, not session: one browser and one pair of servers for the whole
# browser suite, stopped before the rest of the suite runs. (Playwright's sync
# API keeps an event loop running in the main thread while it is started, and
# asyncio.run() in later tests would refuse to run.)


@pytest.fixture(scope="package")
def _store_server() -> Iterator[tuple[Store, ThreadedServer]]:
    store = Store(origin="")
    with ThreadedServer(store_app(store)) as server:
        store.origin = server.origin
        yield store, server


@pytest.fixture(scope="package")
def _real_server(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path
) -> Iterator[tuple[Runtime, str]]:
    """The real pixel-server (embedded ClickHouse) behind the capture server."""
    settings = load_settings({
        "PIXEL_DATA_DIR": str(tmp_path_factory.mktemp("browser-data")),
        "PIXEL_CLICKHOUSE_URL": f"chdb://{engine_dir}?database=browser_{uuid.uuid4().hex[:8]}",
        "PIXEL_LOG_LEVEL": "warning",
        **UNLIMITED,
    })  # fmt: skip
    app = create_app(settings)
    with ThreadedServer(app, lifespan="on") as server:
        yield app.state.runtime, server.origin


@pytest.fixture(scope="package")
def _capture(
    _store_server: tuple[Store, ThreadedServer], _real_server: tuple[Runtime, str]
) -> Iterator[tuple[CaptureServer, str]]:
    store, _ = _store_server
    # "null": Shopify's pixel sandbox is an opaque origin.
    capture = CaptureServer(allowed_origins={store.origin, "null"}, forward_to=_real_server[1])
    with ThreadedServer(capture.app) as server:
        yield capture, server.origin


@pytest.fixture
def collector(
    _capture: tuple[CaptureServer, str],
    _store_server: tuple[Store, ThreadedServer],
    _real_server: tuple[Runtime, str],
) -> Iterator[Collector]:
    capture, endpoint = _capture
    runtime = _real_server[0]
    pixel = runtime.management.run(
        "pixel.add", {"name": "Browser test", "origins": [_store_server[0].origin, "null"]}
    )

    def stored(pixel_id: str, count: int, timeout: float) -> list[dict[str, Any]]:
        return stored_rows(runtime, pixel_id, count, timeout)

    yield Collector(endpoint=endpoint, pixel_id=pixel["id"], _events=capture.events,
                    _stored=stored)  # fmt: skip
    broken = capture.violations.get(pixel["id"])
    assert not broken, f"requests broke the /collect contract: {broken}"


def stored_rows(
    runtime: Runtime, pixel_id: str, count: int, timeout: float
) -> list[dict[str, Any]]:
    """The pixel's rows in ClickHouse once ``count`` are loaded (or at ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        result = runtime.database.client().query(
            "SELECT * FROM events WHERE pixel_id = {p:String} ORDER BY received_at, event_time",
            parameters={"p": pixel_id},
        )
        rows = [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.fixture
def store(_store_server: tuple[Store, ThreadedServer]) -> Store:
    return _store_server[0]


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    context = browser.new_context()
    # TikTok's servers are not reachable from here: fail such loads at once.
    context.route("https://analytics.tiktok.com/**", lambda route: route.abort())
    page = context.new_page()
    tab = Tab(page=page, errors=[], failed_loads=[])
    page.on("pageerror", lambda exc: tab.errors.append(f"pageerror: {exc}"))

    def on_console(msg: Any) -> None:
        if msg.type != "error":
            return
        # The browser's own line for a failed request (the endpoint is down,
        # a blocker refused it): network noise, not an error from our code.
        if msg.text.startswith("Failed to load resource"):
            tab.failed_loads.append(f"{msg.text} {msg.location.get('url', '')}")
        else:
            tab.errors.append(f"console: {msg.text}")

    page.on("console", on_console)
    yield tab
    context.close()


@pytest.fixture
def dead_endpoint() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
