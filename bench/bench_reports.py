"""Report query and dashboard page latency on a large embedded dataset.

    .venv/bin/python -m bench.bench_reports --events 10000000          # the target size
    .venv/bin/python -m bench.bench_reports --events 1000000 --repeat 10

Loading: ``tests/datagen.py`` simulates one day of a shop's traffic (every
copy kind: browser/server/webhook copies, retries, refunds, events without
event_id) into a template table; the template is then copied day after day
into ``events`` with ``INSERT ... SELECT`` (ids made unique per day,
visitors recurring across days), so ClickHouse writes the millions of rows
in big batches without Python in the way. All events belong to one pixel:
the worst case for a per-pixel report.

First the report cache is built for the whole range (timed apart: a one-off
cost). Measured: each report query (``pixel_server.reports.run``) and the whole
dashboard page (``GET /dashboard/{pixel}``, all six reports plus charts and
HTML) over the last ``--range-days`` days, p50/p95 of ``--repeat`` runs.
Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from starlette.testclient import TestClient

from pixel_server.app import create_app
from pixel_server.config import load_settings
from pixel_server.pipeline.record import COLUMNS, to_columns
from pixel_server.reports import REPORTS, ReportParams, cache, needed_range, run
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
    client.command("CREATE TABLE IF NOT EXISTS events_template AS events")  # type: ignore[attr-defined]
    client.command("TRUNCATE TABLE events_template")  # type: ignore[attr-defined]
    for i in range(0, len(records), 100_000):
        client.insert(
            "events_template",
            to_columns(records[i : i + 100_000]),  # type: ignore[attr-defined]
            column_names=list(COLUMNS),
            column_oriented=True,
        )
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
    """Wait until ClickHouse has no merge or mutation running (the cache build
    leaves both behind), so the timings measure reports, not the build's tail."""
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
            # Warming passes are run (and timed) by hand below.
            "PIXEL_REPORT_WARM_INTERVAL_S": "0",
        }
    )
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
            t = time.perf_counter()
            built = cache.prepare(ch, pixel["id"], *needed_range("attribution", params))
            build_s = time.perf_counter() - t
            print(f"cache build: {len(built)} days in {build_s:.1f} s", flush=True)
            print(f"background merges settled in {settle(ch):.1f} s", flush=True)
            results: dict[str, list[float]] = {}
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
            # Fresh events on the last day: the next report re-merges the days they touch.
            fresh = generate(
                seed=99, visitors=80, days=1, first_day=last, tz="UTC", pixel_id=pixel["id"]
            ).records
            times = []
            for i in range(args.repeat):
                for r in fresh:
                    r.event_id += f"~fresh{i}"
                runtime.insert_events(fresh, f"bench-fresh-{i}")
                t = time.perf_counter()
                run(ch, "overview", params)
                times.append(time.perf_counter() - t)
            results[f"overview after {len(fresh)} new copies (re-merge)"] = times
            # The same, when the background warmer has merged them first (as it
            # does within PIXEL_REPORT_WARM_INTERVAL_S of their arrival).
            times, passes = [], []
            runtime.warmer.run_once()  # a running server's warmer has passed before
            for i in range(args.repeat):
                for r in fresh:
                    r.event_id += f"~warm{i}"
                runtime.insert_events(fresh, f"bench-warm-{i}")
                t = time.perf_counter()
                runtime.warmer.run_once()
                passes.append(time.perf_counter() - t)
                t = time.perf_counter()
                run(ch, "overview", params)
                times.append(time.perf_counter() - t)
            results["warmer pass after new copies (background)"] = passes
            results["overview after new copies, warmer passed first"] = times
            if args.live:
                for name in ("overview", "purchases"):
                    times = []
                    for _ in range(max(1, args.repeat // 3)):
                        t = time.perf_counter()
                        run(ch, name, params, cached=False)
                        times.append(time.perf_counter() - t)
                    results[f"{name}, no cache (merge at query time)"] = times
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


if __name__ == "__main__":
    main()
