"""The report cache warmer: after new copies arrive, the dashboard's range is
merged in the background, so the report itself finds every day current.

The clock is pinned: which UTC days the dashboard's range covers depends on
the hour (the pixel's today ends at 08:00 UTC the next day in Los Angeles)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
import time_machine

from pixel_server.reports import ReportParams, cache, needed_range, run
from pixel_server.reports.base import WINDOWS, parse_params
from tests.datagen import generate
from tests.ingest_helpers import WAIT_SECONDS, add_pixel, app_client, runtime_of, shared_settings

TZ = "America/Los_Angeles"
# Either side of UTC midnight and of the pixel's midnight (08:00 UTC).
INSTANTS = [
    "2026-12-04T23:50:00Z",
    "2026-12-05T00:10:00Z",
    "2026-12-05T07:50:00Z",
    "2026-12-05T08:10:00Z",
    "2026-12-05T16:45:00Z",
]


@pytest.fixture(params=INSTANTS[-1:])
def pinned(request: pytest.FixtureRequest) -> Iterator[None]:
    """The clock starts at the given instant and runs on from there."""
    with time_machine.travel(request.param, tick=True):
        yield


def _dashboard_range(pixel_id: str) -> tuple[ReportParams, datetime, datetime]:
    params = parse_params(pixel_id, {}, TZ)
    start, end = needed_range("attribution", replace(params, window=max(WINDOWS)))
    return params, start, end


@pytest.mark.parametrize("pinned", INSTANTS, indirect=True)
def test_a_pass_warms_only_pixels_whose_copies_changed(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path, pinned: None
) -> None:
    with app_client(shared_settings(tmp_path_factory, engine_dir)) as client:
        runtime = runtime_of(client)
        busy, quiet = add_pixel(runtime, timezone=TZ), add_pixel(runtime, timezone=TZ)
        today = datetime.now(UTC).date()
        ds = generate(
            pixel_id=busy["id"], tz=TZ, visitors=60, days=3, first_day=today - timedelta(days=4)
        )
        runtime.insert_events(ds.records, "warm-1")
        ch = runtime.database.client()

        assert runtime.warmer.run_once() == [busy["id"]]  # quiet has no copies at all
        params, start, end = _dashboard_range(busy["id"])
        assert cache.prepare(ch, busy["id"], start, end) == []  # nothing left to merge
        assert runtime.warmer.run_once() == []  # nothing changed since

        before = run(ch, "overview", params).data["totals"]["events"]
        now = time.time()
        fresh = msgspec.structs.replace(
            ds.records[0], event_id="warm-fresh", event_time=now, received_at=now
        )
        runtime.insert_events([fresh], "warm-2")
        assert runtime.warmer.run_once() == [busy["id"]]
        assert cache.prepare(ch, busy["id"], start, end) == []
        assert run(ch, "overview", params).data["totals"]["events"] == before + 1
        assert quiet["id"] not in runtime.warmer.run_once()


def test_the_background_thread_warms_after_an_insert(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path, pinned: None
) -> None:
    settings = shared_settings(tmp_path_factory, engine_dir, PIXEL_REPORT_WARM_INTERVAL_S="0.2")
    with app_client(settings) as client:
        runtime = runtime_of(client)
        pixel = add_pixel(runtime, timezone=TZ)
        today = datetime.now(UTC).date()
        ds = generate(
            pixel_id=pixel["id"], tz=TZ, visitors=40, days=2, first_day=today - timedelta(days=2)
        )
        runtime.insert_events(ds.records, "warm-bg")
        _, start, end = _dashboard_range(pixel["id"])
        ch = runtime.database.client()
        metric = runtime.metrics.report_days_rebuilt.labels("warmer")
        deadline = time.monotonic() + WAIT_SECONDS * 3
        while metric._value.get() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert metric._value.get() > 0
        assert cache.prepare(ch, pixel["id"], start, end) == []
        # The dashboard then rebuilds nothing itself.
        page = client.get(
            f"/dashboard/{pixel['id']}", headers={"authorization": f"Bearer {pixel['owner_token']}"}
        )
        assert page.status_code == 200
        assert runtime.metrics.report_days_rebuilt.labels("request")._value.get() == 0
        assert b"pixel_report_days_rebuilt_total" in client.get("/metrics").content


def test_a_pass_warms_changed_days_outside_the_dashboard_range(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path, pinned: None
) -> None:
    """Copies landing on an old day (a back-end import, late webhooks) are
    merged by the warmer too, with the days they can affect."""
    with app_client(shared_settings(tmp_path_factory, engine_dir)) as client:
        runtime = runtime_of(client)
        pixel = add_pixel(runtime, timezone=TZ)
        today = datetime.now(UTC).date()
        recent = generate(pixel_id=pixel["id"], tz=TZ, visitors=30, days=1, first_day=today)
        runtime.insert_events(recent.records, "warm-recent")
        assert runtime.warmer.run_once() == [pixel["id"]]  # first pass: the dashboard's range
        old_day = today - timedelta(days=200)
        old = generate(pixel_id=pixel["id"], tz="UTC", visitors=30, days=1, first_day=old_day)
        runtime.insert_events(old.records, "warm-old")
        assert runtime.warmer.run_once() == [pixel["id"]]
        ch = runtime.database.client()
        start = datetime.combine(old_day, datetime.min.time(), UTC)
        assert cache.prepare(ch, pixel["id"], start, start + timedelta(days=1)) == []
