"""Reports stay exact while copies arrive, in any order, at any hour.

The stored rows are written at every insert (``merged_events`` and its
materialized views), so a report read between two inserts must equal the
definition computed at query time from the copies loaded so far, and, once
everything is in, the generator's truth. And a report's default range,
"today" in the pixel's zone, must hold the events of the zone's today on
both sides of UTC midnight (the clock pinned with time-machine).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import time_machine
from starlette.testclient import TestClient

from pixel_server.pipeline.record import Record
from pixel_server.reports import REPORTS, ReportParams, run
from tests.datagen import Truth, generate
from tests.ingest_helpers import add_pixel, app_client, runtime_of, shared_settings

TZ = "America/Los_Angeles"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[TestClient]:
    with app_client(shared_settings(tmp_path_factory, engine_dir)) as c:
        yield c


@pytest.mark.parametrize("seed", [1, 2])
def test_reads_between_inserts_in_random_order_equal_the_truth_so_far(
    client: TestClient, seed: int
) -> None:
    runtime = runtime_of(client)
    ch = runtime.database.client()
    pixel = add_pixel(runtime, timezone=TZ)
    first = date(2026, 3, 2)
    ds = generate(pixel_id=pixel["id"], tz=TZ, first_day=first, days=4, visitors=70, seed=seed)
    params = ReportParams(pixel["id"], first, first + timedelta(days=3), TZ)
    copies = list(ds.records)
    rng = random.Random(seed)
    rng.shuffle(copies)  # twins, retries and refunds arrive in any order
    loaded = 0
    for n, size in enumerate(iter(lambda: rng.randint(1, 120), None)):
        if loaded >= len(copies):
            break
        runtime.insert_events(copies[loaded : loaded + size], f"interleaved-{seed}-{n}")
        loaded += size
        for name in rng.sample(sorted(REPORTS), 2):  # two reports after each insert
            assert run(ch, name, params).data == run(ch, name, params, cached=False).data, name
    truth = Truth.of(ds, params.first, params.last, TZ)
    overview = run(ch, "overview", params).data
    counts, visitors, _ = truth.overview()
    assert overview["totals"]["visitors"] == visitors
    assert overview["totals"]["events"] == sum(counts.values())
    funnel = run(ch, "funnel", params).data["steps"]
    assert [s["visitors"] for s in funnel] == truth.funnel()
    for name in REPORTS:
        assert run(ch, name, params).data == run(ch, name, params, cached=False).data, name


def _event(pixel_id: str, name: str, at: float, n: int, **fields: Any) -> Record:
    return Record(
        pixel_id=pixel_id,
        event=name,
        received_event=name,
        event_id=f"{name}-{n}-{at}",
        source="browser",
        event_time=at,
        received_at=at,
        anonymous_id="anon-midnight",
        channel="tiktok_paid",
        **fields,
    )


# Both sides of UTC midnight; Los Angeles is still on the day before at both.
@pytest.mark.parametrize(
    "now", [datetime(2026, 12, 4, 23, 40, tzinfo=UTC), datetime(2026, 12, 5, 0, 20, tzinfo=UTC)]
)
def test_every_report_defaults_to_the_zones_today_either_side_of_utc_midnight(
    client: TestClient, now: datetime
) -> None:
    runtime = runtime_of(client)
    pixel = add_pixel(runtime, timezone=TZ)
    at = (now - timedelta(minutes=15)).timestamp()
    # Dec 3, 23:50 and Dec 5, 00:05 in Los Angeles: the zone's yesterday and tomorrow.
    before = datetime(2026, 12, 4, 7, 50, tzinfo=UTC).timestamp()
    after = datetime(2026, 12, 5, 8, 5, tzinfo=UTC).timestamp()
    purchase = msgspec.structs.replace(
        _event(pixel["id"], "Purchase", at, 3, value=12.5, currency="USD", order_id="o-1"),
        event_id=f"purchase:o-{at}",
    )
    records = [
        _event(pixel["id"], "ViewContent", at - 60, 1),
        _event(pixel["id"], "AddToCart", at - 30, 2),
        purchase,
        _event(pixel["id"], "ViewContent", before, 4),
        _event(pixel["id"], "ViewContent", after, 5),
    ]
    runtime.insert_events(records, f"midnight-{now.isoformat()}")
    headers = {"authorization": f"Bearer {pixel['owner_token']}"}
    with time_machine.travel(now, tick=False):
        got = {
            name: client.get(f"/api/v1/reports/{pixel['id']}/{name}", headers=headers).json()
            for name in REPORTS
        }
        today = client.get(
            f"/api/v1/reports/{pixel['id']}/overview?from=2026-12-04", headers=headers
        ).json()
    for data in got.values():  # the last 30 days up to the zone's today
        assert (data["params"]["from"], data["params"]["to"]) == ("2026-11-05", "2026-12-04")
        assert data["params"]["tz"] == TZ
    assert today["totals"]["events"] == 3  # the zone's today only
    assert [d["events"] for d in got["overview"]["days"][-2:]] == [1, 3]
    assert got["overview"]["totals"]["events"] == 4  # tomorrow's is out of range
    assert [s["visitors"] for s in got["funnel"]["steps"]] == [1, 1, 0, 0, 0]
    assert got["purchases"]["totals"][0]["orders"] == 1
    assert [(c["channel"], c["orders"]) for c in got["attribution"]["channels"]] == [
        ("tiktok_paid", 1)
    ]
    assert got["operations"]["dedup"]["totals"]["events"] == 4
    assert got["products"]["products"] == []  # no contents: no product rows
