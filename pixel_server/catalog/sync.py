"""Catalog syncs: a full pull of a store's catalog, and one product's update.

Full pull (:meth:`CatalogSync.full`), in steps:

1. record a ``running`` sync run;
2. read every page from the pixel's source (paging, rate limits and retries
   are the source's); each item is checked against TikTok's rules
   (:mod:`pixel_server.catalog.validate`), a second item with a sku_id already
   seen is ``duplicate_sku_id``; items whose content changed (or that are new)
   are staged under the run's id;
3. only when the last page was read: commit the staged rows and tombstone
   every current item the pull did not see (its product is gone, hidden or
   lost that variant);
4. record the run ``ok`` with products, variants, changed, deleted and
   invalid counts — or ``failed`` with the error, when any step failed, in
   which case the catalog is exactly what it was before (staged rows expire).

One product (:meth:`CatalogSync.product`, for product webhooks): read it and
write its changed items and tombstones for variants it no longer has (all of
them when it is gone or hidden) at once. A webhook that lands while a full
pull of the same pixel runs may be overwritten by that pull's older read of
the product; the next webhook or pull puts it right.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Final

from pixel_server.catalog.model import Product
from pixel_server.catalog.sources import Pacing, Source, SourceError, for_pixel
from pixel_server.catalog.store import CatalogStore, Stored, SyncRun
from pixel_server.catalog.validate import problems
from pixel_server.pixel import Pixel
from pixel_server.storage.client import StorageError

log = logging.getLogger("pixel_server.catalog")

STAGE_ROWS: Final = 5000
SourceFor = Callable[[Pixel, Pacing | None], Source]


class CatalogSync:
    def __init__(
        self,
        store: CatalogStore,
        source_for: SourceFor = for_pixel,
        pacing: Pacing | None = None,
    ) -> None:
        self.store = store
        self._source_for = source_for
        self.pacing = pacing

    def full(self, pixel: Pixel, rewrite: bool = False) -> SyncRun:
        """A full pull; ``rewrite`` writes every item again, changed or not."""
        run = SyncRun(pixel.id, uuid.uuid4().hex, "full")
        self.store.record(run)
        try:
            self._pull(pixel, run, rewrite)
            run.status = "ok"
        except (SourceError, StorageError) as exc:
            run.status, run.error = "failed", str(exc)
            log.warning("catalog sync failed", extra={"pixel_id": pixel.id, "error": str(exc)})
        run.finished_at = time.time()
        self.store.record(run)
        return run

    def _pull(self, pixel: Pixel, run: SyncRun, rewrite: bool) -> None:
        live = self.store.live(pixel.id)
        seen: set[str] = set()
        staged: list[Stored] = []
        source = self._source_for(pixel, self.pacing)
        try:
            for page in source.pages():
                for product in page:
                    if product.hidden:
                        continue
                    run.products += 1
                    for item in product.items:
                        run.variants += 1
                        reasons = tuple(problems(item))
                        if item.sku_id in seen:
                            run.invalid += 1
                            continue  # the first item with a sku_id is the one TikTok keeps
                        seen.add(item.sku_id)
                        run.invalid += bool(reasons)
                        if rewrite or live.get(item.sku_id, ("",))[0] != item.content_hash():
                            staged.append(Stored(item, reasons))
                            run.changed += 1
                if len(staged) >= STAGE_ROWS:
                    self.store.stage(run.sync_id, pixel.id, staged)
                    staged = []
        finally:
            source.close()
        self.store.stage(run.sync_id, pixel.id, staged)
        gone = [(sku, group) for sku, (_, group) in live.items() if sku not in seen]
        run.deleted = len(gone)
        self.store.commit(run.sync_id, pixel.id, gone)

    def product(self, pixel: Pixel, product_id: str) -> SyncRun:
        """Bring one product up to date (read from the store)."""
        run = SyncRun(pixel.id, uuid.uuid4().hex, "product")
        source = self._source_for(pixel, self.pacing)
        try:
            self.apply(pixel, source.product(product_id), run)
            run.status = "ok"
        except (SourceError, StorageError) as exc:
            run.status, run.error = "failed", str(exc)
        finally:
            source.close()
        run.finished_at = time.time()
        self.store.record(run)
        return run

    def apply(self, pixel: Pixel, product: Product, run: SyncRun) -> None:
        live = self.store.live(pixel.id, group=product.product_id)
        keep = () if product.hidden else product.items
        run.products = 0 if product.hidden else 1
        run.variants = len(keep)
        changed = []
        for item in keep:
            reasons = tuple(problems(item))
            run.invalid += bool(reasons)
            if live.get(item.sku_id, ("",))[0] != item.content_hash():
                changed.append(Stored(item, reasons))
        wanted = {i.sku_id for i in keep}
        gone = [(sku, group) for sku, (_, group) in live.items() if sku not in wanted]
        run.changed, run.deleted = len(changed), len(gone)
        if changed or gone:
            self.store.write(pixel.id, changed, gone, run.sync_id)
