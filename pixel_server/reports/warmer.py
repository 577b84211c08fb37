"""Keeps the report cache current in the background, so a report seldom waits.

Reports are exact because :func:`.cache.prepare` re-merges, before the report
runs, every cached day whose copies changed. For a busy shop that costs
seconds on the first view after new events arrive, and minutes on the very
first view (every day of the range merged once). The warmer pays those costs
ahead: every ``interval`` seconds it reads the per-day change summary
ClickHouse keeps on every insert (``report_day_stats``: copies and latest
arrival per pixel and UTC day) and prepares, per pixel, the days whose copies
changed since its last pass, with the days they can affect (two before: late
twins; 28 after: attribution, up to the UTC day on which the pixel's own
today ends). The first pass after a start also prepares the
range the dashboard opens with (the last 30 days and attribution's
look-back). Work goes newest days first, 14 days per call; a report arriving
meanwhile waits only for the call under way (the per-pixel lock in :mod:`.cache`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Final

from clickhouse_connect.driver.client import Client

from pixel_server.metrics import Metrics
from pixel_server.registry import PixelRegistry
from pixel_server.reports import cache, needed_range
from pixel_server.reports.base import WINDOWS, parse_params
from pixel_server.reports.rollups import ATTRIBUTION_LOOKBACK_DAYS

log = logging.getLogger(__name__)

# Days prepared per call: the pixel's builds hold its lock that long, so a
# report waits at most for one chunk; each call also checks the 28 days before.
CHUNK: Final = timedelta(days=14)
HORIZON: Final = timedelta(days=400)  # older days are left to the reports that ask
_CHANGES: Final = """
SELECT pixel_id, day, toString(countMerge(copies)) || '@' || toString(maxMerge(last_received))
FROM report_day_stats WHERE day >= {lo:Date} GROUP BY pixel_id, day
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
        # pixel -> day -> change summary, as of its last complete pass
        self._seen: dict[str, dict[date, str]] = {}

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
        today = datetime.now(UTC).date()
        result = client.query(_CHANGES, parameters={"lo": today - HORIZON})
        changes: dict[str, dict[date, str]] = defaultdict(dict)
        for pixel_id, day, summary in result.result_rows:
            changes[pixel_id][day] = summary
        warmed = []
        for pixel_id, days in changes.items():
            pixel = self._registry.get(pixel_id)
            seen = self._seen.get(pixel_id)
            if pixel is None or seen == days:
                continue
            ranges = []
            params = parse_params(pixel_id, {}, pixel.timezone)
            dashboard = needed_range("attribution", replace(params, window=max(WINDOWS)))
            if seen is None:  # first pass: what the dashboard opens with
                ranges.append(dashboard)
            changed = sorted(d for d, summary in days.items() if (seen or {}).get(d) != summary)
            if changed and seen is not None:
                first = changed[0] - timedelta(days=cache.NEIGHBOURS)
                # The pixel's today may end on the next UTC day (zones behind UTC).
                latest = max(today, cache.utc_days(*dashboard)[1], changed[-1])
                last = min(changed[-1] + timedelta(days=ATTRIBUTION_LOOKBACK_DAYS), latest)
                ranges.append((_midnight(first), _midnight(last + timedelta(days=1))))
            if self._warm(client, pixel_id, ranges):
                self._seen[pixel_id] = days
                warmed.append(pixel_id)
        return warmed

    def _warm(self, client: Client, pixel_id: str, ranges: list[tuple[datetime, datetime]]) -> bool:
        """Prepare ``ranges``, newest week first; False if stopped midway."""
        started = time.perf_counter()
        rebuilt = 0
        for start, end in ranges:
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


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)
