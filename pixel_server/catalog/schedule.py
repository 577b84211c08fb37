"""The periodic full pull: repairs whatever product webhooks missed.

A background thread looks every ``check_every`` seconds for pixels whose last
full pull started more than ``catalog_sync_hours`` ago (a pixel setting;
default 24, 0 turns it off) and whose store is configured (platform with a
catalog API, store id and token), and pulls them one after another; a pixel
with a TikTok catalog then gets what changed pushed
(:mod:`pixel_server.catalog.push`). A failed pull is tried again at the next
check after an hour, not in a tight loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Final

from pixel_server.catalog import push
from pixel_server.catalog.store import SyncRun
from pixel_server.catalog.sync import CatalogSync
from pixel_server.pixel import Pixel

log = logging.getLogger("pixel_server.catalog")

PLATFORMS: Final = frozenset({"ecwid", "bigcommerce", "shopify", "woocommerce"})
RETRY_FAILED_S: Final = 3600.0


def configured(pixel: Pixel) -> bool:
    return (pixel.enabled and pixel.platform in PLATFORMS and bool(pixel.store_id)
            and bool(pixel.store_api_token) and pixel.catalog_sync_hours > 0)  # fmt: skip


class CatalogSchedule:
    def __init__(
        self,
        pixels: Callable[[], Iterable[Pixel]],
        sync: CatalogSync,
        pusher: push.CatalogPush | None = None,
        check_every: float = 60.0,
    ) -> None:
        self._pixels = pixels
        self._sync = sync
        self._push = pusher
        self.check_every = check_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self, now: float) -> list[Pixel]:
        out = []
        for pixel in self._pixels():
            if not configured(pixel):
                continue
            last = self._sync.store.runs(pixel.id, limit=1, kind="full")
            if not last:
                out.append(pixel)
                continue
            age = now - last[0].started_at
            wait = pixel.catalog_sync_hours * 3600.0
            if last[0].status == "failed":
                wait = min(wait, RETRY_FAILED_S)
            if age >= wait and last[0].status != "running":
                out.append(pixel)
        return out

    def run_once(self, now: float | None = None) -> list[SyncRun]:
        runs = []
        for pixel in self.due(now or time.time()):
            runs.append(self._sync.full(pixel))
            if self._push is not None and push.configured(pixel) and runs[-1].status == "ok":
                runs.append(self._push.push(pixel))
        return runs

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="catalog-schedule", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.check_every):
            try:
                self.run_once()
            except Exception as exc:  # ClickHouse down: try at the next check
                log.warning("catalog schedule check failed", extra={"error": str(exc)})
