"""Report query and dashboard page latency on a large embedded dataset.

    .venv/bin/python -m bench.bench_reports --events 10000000          # the target size
    .venv/bin/python -m bench.bench_reports --events 1000000 --repeat 10

Loading: ``tests/datagen.py`` simulates one day of a shop's traffic (every
copy kind: browser/server/webhook copies, retries, refunds, events without
event_id) into a template table; the template is then copied day after day
into ``events`` with ``INSERT ... SELECT`` (ids made unique per day,
visitors recurring across days), so ClickHouse writes the millions of rows
in big batches without Python in the way; then the copies are merged into
``merged_events`` and its rollups as migration 14 does for a server
upgraded with data (timed apart: a one-off cost). All events belong to one
pixel: the worst case for a per-pixel report.

Measured, p50/p95 of ``--repeat`` runs over the last ``--range-days`` days:
each report query (``pixel_server.reports.run``) and the whole dashboard page
(``GET /dashboard/{pixel}``: six reports, charts, HTML), warm and right after
a batch of new copies for today (inserted through the loader's insert, which
merges them); the time from a server start on the existing data to its first
dashboard answer; the time from an accepted ``/collect`` event to its
appearance in the overview; and disk bytes per stored copy. Prints a
Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from starlette.testclient import TestClient

from pixel_server.app import create_app
from pixel_server.config import load_settings
from pixel_server.pipeline.record import encode
from pixel_server.reports import REPORTS, ReportParams, run
from pixel_server.storage import merged
from pixel_server.storage.events import EventStore
from tests.datagen import generate

FIRST_DAY = date(2026, 1, 1)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load(client: object, pixel_id: str, events: int, days: int) -> float:
    """Fill ``events`` with about ``events`` rows over ``days`` days; returns seconds."""
    started = time.perf_counter()
    per_day = events // days
    # One simulated day, sized to per_day copies (about 12 copies per visitor).
    ds = generate(
        seed=11,
        visitors=max(50, per_day // 12),
        days=1,
        first_day=FIRST_DAY,
        tz="UTC",
        pixel_id=pixel_id,
    )
    records = ds.records[:per_day]
    # The template day goes through the loader's insert (unmerged), then moves aside.
    store = EventStore(lambda: client)  # type: ignore[arg-type,return-value]
    for i in range(0, len(records), 100_000):
        store._insert([encode(r) for r in records[i : i + 100_000]], f"template-{i}")
    client.command("DROP TABLE IF EXISTS events_template")  # type: ignore[attr-defined]
    client.command("CREATE TABLE events_template AS events")  # type: ignore[attr-defined]
    client.command("INSERT INTO events_template SELECT * FROM events")  # type: ignore[attr-defined]
    client.command("TRUNCATE TABLE events")  # type: ignore[attr-defined]
    for day in range(days):
        # Visitors come back: anonymous ids repeat every 10 days.
        client.command(  # type: ignore[attr-defined]
            f"""INSERT INTO events SELECT * REPLACE (
                concat(event_id, '~{day}') AS event_id,
                if(anonymous_id = '', '', concat(anonymous_id, '~{day % 10}')) AS anonymous_id,
                if(order_id = '', '', concat(order_id, '~{day}')) AS order_id,
                event_time + toIntervalDay({day}) AS event_time,
                received_at + toIntervalDay({day}) AS received_at)
            FROM events_template"""
        )
    client.command("DROP TABLE events_template")  # type: ignore[attr-defined]
    return time.perf_counter() - started


def settle(client: object, limit: float = 300.0) -> float:
    """Wait until ClickHouse has no merge or mutation running (the load leaves
    both behind), so the timings measure reports, not the load's tail."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        busy = client.query(  # type: ignore[attr-defined]
            "SELECT (SELECT count() FROM system.merges)"
            " + (SELECT count() FROM system.mutations WHERE NOT is_done)"
        ).result_rows[0][0]
        if not busy:
            break
        time.sleep(1.0)
    return time.perf_counter() - started


def _freshness(http: TestClient, pixel: dict[str, str], limit: float = 30.0) -> float:
    """Seconds from a ``/collect`` answer to the event's count in today's overview."""
    now = time.time()
    today = datetime.fromtimestamp(now, UTC).date()
    url = f"/api/v1/reports/{pixel['id']}/overview?from={today}&to={today}&tz=UTC"
    headers = {"authorization": f"Bearer {pixel['owner_token']}"}

    def counted() -> int:
        return int(http.get(url, headers=headers).json()["totals"]["events"])

    before = counted()
    event = {
        "event": "ViewContent",
        "event_id": f"fresh-{now}",
        "event_time": now,
        "user": {"anonymous_id": "anon-fresh"},
        "page": {"url": "https://b.example/p/1", "referrer": ""},
    }
    r = http.post(
        f"/collect?p={pixel['id']}",
        json={"events": [event]},
        headers={"origin": "https://b.example", "content-type": "application/json",
                 "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36"},
    )  # fmt: skip
    assert r.status_code == 202, r.text
    accepted = time.perf_counter()
    while counted() == before:
        if time.perf_counter() - accepted > limit:
            raise RuntimeError("the event never reached the overview")
        time.sleep(0.05)
    return time.perf_counter() - accepted


def _disk(client: object, copies: int) -> dict[str, str]:
    """Bytes on disk per stored copy: the copies, the merged rows, the rollups."""
    sizes = dict(
        client.query(  # type: ignore[attr-defined]
            "SELECT table, sum(bytes_on_disk) FROM system.parts WHERE active"
            " AND database = currentDatabase() GROUP BY table"
        ).result_rows
    )
    groups = {
        "copies (events)": ("events",),
        "merged rows (merged_events)": (merged.TABLE,),
        "rollups": merged.ROLLUP_TABLES,
    }
    out = {
        f"disk per copy, {name}": f"{sum(sizes.get(t, 0) for t in tables) / copies:.1f} B"
        for name, tables in groups.items()
    }
    total = sum(sizes.get(t, 0) for tables in groups.values() for t in tables)
    out["disk per copy, all of them"] = f"{total / copies:.1f} B"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90, help="days the events cover")
    parser.add_argument("--range-days", type=int, default=30, help="report range (last N days)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--data-dir", type=Path, default=None, help="kept if given")
    parser.add_argument("--live", action="store_true", help="also time merging at query time")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-reports-"))
    settings = load_settings(
        {
            "PIXEL_DATA_DIR": str(data_dir / "data"),
            "PIXEL_CLICKHOUSE_URL": f"chdb://{data_dir / 'clickhouse'}?database=bench",
            "PIXEL_LOG_LEVEL": "error",
            "PIXEL_WAL_FSYNC": "false",
        }
    )
    results: dict[str, list[float]] = {}
    facts: dict[str, str] = {}
    try:
        with TestClient(create_app(settings)) as http:
            runtime = http.app.state.runtime  # type: ignore[attr-defined]
            ch = runtime.database.client()
            pixels = runtime.registry.all()
            if pixels:
                pixel = {
                    "id": pixels[0].id,
                    "owner_token": runtime.management.run(
                        "token.add", {"pixel": pixels[0].id, "role": "owner"}
                    )["token"],
                }
                rows = int(ch.query("SELECT count() FROM events").result_rows[0][0])
                load_s = 0.0
            else:
                pixel = runtime.management.run(
                    "pixel.add", {"name": "Bench shop", "origins": ["https://b.example"]}
                )
                load_s = load(ch, pixel["id"], args.events, args.days)
                t = time.perf_counter()
                merged.backfill(ch)
                facts["merge of the stored copies (migration 14, one-off)"] = (
                    f"{time.perf_counter() - t:.1f} s"
                )
                rows = int(ch.query("SELECT count() FROM events").result_rows[0][0])
            last = FIRST_DAY + timedelta(days=args.days - 1)
            first = last - timedelta(days=args.range_days - 1)
            params = ReportParams(pixel["id"], first, last, "UTC")
            in_range = int(
                ch.query(
                    "SELECT count() FROM events WHERE event_time >= {s:DateTime64(3)} "
                    "AND event_time < {e:DateTime64(3)}",
                    parameters={"s": params.start, "e": params.end},
                ).result_rows[0][0]
            )
            print(f"rows: {rows:,} (in range: {in_range:,}); load: {load_s:.1f} s", flush=True)
            print(f"background merges settled in {settle(ch):.1f} s", flush=True)
            for name in REPORTS:
                run(ch, name, params)  # warm-up
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    run(ch, name, params)
                    times.append(time.perf_counter() - t)
                results[name] = times
            url = f"/dashboard/{pixel['id']}?from={first}&to={last}&tz=UTC"
            headers = {"authorization": f"Bearer {pixel['owner_token']}"}
            assert http.get(url, headers=headers).status_code == 200
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                assert http.get(url, headers=headers).status_code == 200
                times.append(time.perf_counter() - t)
            results["dashboard page"] = times
            # A batch of new copies for today (the last day), through the
            # loader's insert, then the report and the page right after it.
            fresh = generate(
                seed=99, visitors=80, days=1, first_day=last, tz="UTC", pixel_id=pixel["id"]
            ).records
            inserts, after, page_after = [], [], []
            for i in range(args.repeat):
                for r in fresh:
                    r.event_id += f"~fresh{i}"
                t = time.perf_counter()
                runtime.insert_events(fresh, f"bench-fresh-{i}")
                inserts.append(time.perf_counter() - t)
                t = time.perf_counter()
                run(ch, "overview", params)
                after.append(time.perf_counter() - t)
                t = time.perf_counter()
                assert http.get(url, headers=headers).status_code == 200
                page_after.append(time.perf_counter() - t)
            results[f"insert + merge of {len(fresh)} new copies (the loader's step)"] = inserts
            results["overview right after new copies"] = after
            results["dashboard page right after new copies"] = page_after
            facts["event accepted → in the overview"] = f"{_freshness(http, pixel):.2f} s"
            facts.update(_disk(ch, rows))
            if args.live:
                for name in ("overview", "purchases"):
                    times = []
                    for _ in range(max(1, args.repeat // 3)):
                        t = time.perf_counter()
                        run(ch, name, params, cached=False)
                        times.append(time.perf_counter() - t)
                    results[f"{name}, merged at query time"] = times
        # A server start on the existing data, to its first dashboard answer.
        t = time.perf_counter()
        with TestClient(create_app(settings)) as http:
            assert http.get(url, headers=headers).status_code == 200
        facts["server start → first dashboard answer"] = f"{time.perf_counter() - t:.1f} s"
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(
        f"\nmachine: {platform.machine()}, {platform.python_version()}, "
        f"range {first}..{last} ({args.range_days} days), {args.repeat} runs each\n"
    )
    print("| query | p50 ms | p95 ms |")
    print("|---|---:|---:|")
    for name, times in results.items():
        p50, p95 = _percentile(times, 0.5) * 1000, _percentile(times, 0.95) * 1000
        print(f"| {name} | {p50:.0f} | {p95:.0f} |")
    print(f"\nmean of all: {statistics.mean(t for v in results.values() for t in v) * 1000:.0f} ms")
    for name, value in facts.items():
        print(f"- {name}: {value}")


if __name__ == "__main__":
    main()
