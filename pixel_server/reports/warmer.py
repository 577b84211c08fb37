"""Keeps the report cache current in the background, so a report seldom waits.

Reports are exact because :func:`.cache.prepare` re-merges, before the report
runs, every cached day whose copies changed. For a busy shop that costs
seconds on the first view after new events arrive, and minutes on the very
first view (every day of the range merged once). The warmer pays those costs
ahead: every ``interval`` seconds it reads the per-pixel change summary
ClickHouse keeps on every insert (``report_day_stats``) and, for each pixel
whose copies changed since its last pass, prepares the range the dashboard
opens with (the last 30 days, plus attribution's look-back), newest week
first. A report arriving meanwhile waits only for the week being merged
(the per-pixel lock in :mod:`.cache`), never for the whole pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Final

from clickhouse_connect.driver.client import Client

from pixel_server.metrics import Metrics
from pixel_server.registry import PixelRegistry
from pixel_server.reports import cache, needed_range
from pixel_server.reports.base import WINDOWS, parse_params

log = logging.getLogger(__name__)

CHUNK: Final = timedelta(days=7)
_CHANGES: Final = """
SELECT pixel_id, toString(countMerge(copies)) || '@' || toString(maxMerge(last_received))
FROM report_day_stats WHERE day >= {lo:Date} GROUP BY pixel_id
"""


class Warmer:
    def __init__(
        self,
        client: Callable[[], Client],
        registry: PixelRegistry,
        metrics: Metrics,
        interval: float,
    ) -> None:
        self._client = client
        self._registry = registry
        self._metrics = metrics
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: dict[str, str] = {}  # pixel -> change summary at its last complete pass

    def start(self) -> None:
        if self._interval <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="report-warmer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.run_once()
            except Exception as exc:  # ClickHouse down, a bad day: try again next time
                self._metrics.report_warm_errors.inc()
                log.warning("report cache warming failed", extra={"error": str(exc)})

    def run_once(self) -> list[str]:
        """One pass: warm every pixel whose copies changed; returns the pixels warmed."""
        client = self._client()
        lo = (datetime.now(UTC) - timedelta(days=400)).date()
        changes = dict(client.query(_CHANGES, parameters={"lo": lo}).result_rows)
        warmed = []
        for pixel_id, summary in changes.items():
            pixel = self._registry.get(pixel_id)
            if pixel is None or self._seen.get(pixel_id) == summary:
                continue
            if self._warm(client, pixel_id, pixel.timezone):
                self._seen[pixel_id] = summary
                warmed.append(pixel_id)
        return warmed

    def _warm(self, client: Client, pixel_id: str, tz: str) -> bool:
        """Prepare the dashboard's default range, newest week first; False if stopped."""
        params = parse_params(pixel_id, {}, tz)
        start, end = needed_range("attribution", replace(params, window=max(WINDOWS)))
        started = time.perf_counter()
        rebuilt = 0
        upper = end
        while upper > start:
            if self._stop.is_set():
                return False
            lower = max(start, upper - CHUNK)
            rebuilt += len(cache.prepare(client, pixel_id, lower, upper))
            upper = lower
        self._metrics.report_days_rebuilt.labels("warmer").inc(rebuilt)
        if rebuilt:
            log.info(
                "report cache warmed",
                extra={
                    "pixel_id": pixel_id,
                    "days_rebuilt": rebuilt,
                    "seconds": round(time.perf_counter() - started, 2),
                },
            )
        return True
