"""The catalog at 100,000 variants: a full pull from a store stand-in, and the feed.

Usage: ``python -m bench.bench_catalog [--products 10000] [--variants 10]``

1. **Sync**: the BigCommerce catalog stand-in (``tests/standins/catalog_apis.py``,
   in its own process so its JSON rendering does not share our GIL) serves
   ``--products`` products of ``--variants`` variants each (an HTML description
   of about 500 characters each); the real :class:`~pixel_server.catalog.sync.CatalogSync`
   pulls them (pages of 250, variants and images included), validates, stages
   and commits them into embedded ClickHouse. Reported: wall time, items/s,
   and this process's RSS growth over the run (sampled every 10 ms).
2. **Feed**: the real feed route (``pixel_server/catalog/feed.py``) served by
   uvicorn in a thread; an httpx client streams
   ``/feeds/{pixel}/tiktok.csv`` (plain and gzip) to the last byte. Reported:
   time to last byte, bytes, rows, and RSS growth of the process during the
   request (server and client share the process, so this includes both).

Prints the figures; ``docs/benchmarks.md`` ("Catalog") holds a run's numbers.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from pixel_server.catalog import feed
from pixel_server.catalog.sources import Pacing
from pixel_server.catalog.store import CatalogStore
from pixel_server.catalog.sync import CatalogSync
from pixel_server.storage.client import parse_url
from pixel_server.storage.database import Database
from pixel_server.storage.pixels import PixelStore

TOKEN = "bench-token"
ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Peak:
    """The highest RSS seen while the block runs, sampled every 10 ms."""

    def __enter__(self) -> Peak:
        self.start = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())

    @property
    def growth(self) -> float:
        return self.peak - self.start


def serve_store(port: int, products: int, variants: int, ready: Any) -> None:
    sys.path.insert(0, str(ROOT))  # the stand-ins live in tests/
    from tests.standins.catalog_apis import BigCommerceCatalogApi
    from tests.standins.catalog_seed import bulk

    api = BigCommerceCatalogApi(TOKEN, bulk(products, variants))
    api.start()
    ready.put(api.base_url)
    threading.Event().wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--variants", type=int, default=10)
    ns = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    store_proc = ctx.Process(target=serve_store, args=(0, ns.products, ns.variants, ready),
                             daemon=True)  # fmt: skip
    store_proc.start()
    base = ready.get(timeout=300)
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        database = Database(parse_url(f"chdb://{Path(tmp) / 'ch'}"))
        pixel, _, _ = PixelStore(database.client()).add(
            name="Bench", platform="bigcommerce", store_id="abc123xyz",
            store_api_base=base, store_api_token=TOKEN,
        )  # fmt: skip
        catalog = CatalogStore(database.client)
        sync = CatalogSync(catalog, pacing=Pacing(timeout=120.0))
        with Peak() as peak:
            run, seconds = timed(lambda: sync.full(pixel))
        assert run.status == "ok", run.error
        print(f"sync: {run.variants} variants of {run.products} products in {seconds:.1f} s "
              f"= {run.variants / seconds:,.0f} items/s; RSS growth {peak.growth:.0f} MB "
              f"(start {peak.start:.0f} MB)")  # fmt: skip
        pixel, token = PixelStore(database.client()).rotate_feed_token(pixel.id)
        lookup = {pixel.id: pixel}
        app = Starlette(routes=feed.routes(lookup, catalog))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning"))  # fmt: skip
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/feeds/{pixel.id}/tiktok.csv?token={token}"
        for label, encoding in (("plain", "identity"), ("gzip", "gzip")):
            for attempt in range(2):  # the first warms ClickHouse's caches
                with Peak() as peak:
                    t0 = time.perf_counter()
                    size = rows = 0
                    with httpx.stream("GET", url, headers={"accept-encoding": encoding},
                                      timeout=120) as response:  # fmt: skip
                        assert response.status_code == 200
                        for chunk in response.iter_raw():
                            size += len(chunk)
                            if encoding == "identity":
                                rows += chunk.count(b"\n")
                    seconds = time.perf_counter() - t0
                print(f"feed {label} run {attempt + 1}: {seconds:.2f} s to the last byte, "
                      f"{size / 2**20:.2f} MB" + (f", {rows - 1} rows" if rows else "")
                      + f"; RSS growth {peak.growth:.1f} MB")  # fmt: skip
        etag = httpx.get(url).headers["etag"]
        t0 = time.perf_counter()
        status = httpx.get(url, headers={"if-none-match": etag}).status_code
        print(f"unchanged feed: {status} in {(time.perf_counter() - t0) * 1000:.0f} ms")
        server.should_exit = True
        database.close()
    print(f"load average at end: {os.getloadavg()}")
    store_proc.terminate()


if __name__ == "__main__":
    main()
