"""Every report's numbers equal the truth the generator knows (tests/datagen.py).

The dataset goes in through ``Runtime.insert_events``, the loader's own
insert (the same columnar rows the log would deliver), in several batches so
copies of one event sit in different parts, as they do in production. That
skips HTTP for speed; the ingest path has its own tests, and
``test_dashboard.py`` sends a few events through ``/collect`` and
``/api/v1/events`` to the reports end to end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient

from pixel_server.pipeline.record import Record
from pixel_server.reports import ReportParams, run
from pixel_server.reports.base import ParamError, parse_params
from pixel_server.reports.export import to_csv
from pixel_server.reports.products import MONEY
from pixel_server.storage import migrate
from pixel_server.storage.client import connect, parse_url
from tests.datagen import FUNNEL, Dataset, Truth, generate
from tests.ingest_helpers import add_pixel, app_client, runtime_of, shared_settings

TZ = "Europe/Berlin"
FIRST, LAST = date(2026, 3, 4), date(2026, 3, 13)  # a part of the 14 generated days


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path
) -> Iterator[tuple[TestClient, Dataset]]:
    with app_client(shared_settings(tmp_path_factory, engine_dir)) as client:
        runtime = runtime_of(client)
        pixel = add_pixel(runtime, timezone=TZ)
        ds = generate(pixel_id=pixel["id"], tz=TZ, first_day=date(2026, 3, 2), days=14)
        for i in range(0, len(ds.records), 1500):
            runtime.insert_events(ds.records[i : i + 1500], f"datagen-{i}")
        yield client, ds


def report(client: TestClient, ds: Dataset, name: str, **kw: Any) -> dict[str, Any]:
    """The report read from the stored rollups, after checking it equals the live merge."""
    params = ReportParams(
        ds.pixel_id, kw.pop("first", FIRST), kw.pop("last", LAST), kw.pop("tz", TZ), **kw
    )
    ch = runtime_of(client).database.client()
    live = run(ch, name, params, cached=False).data
    cached = run(ch, name, params, cached=True).data
    assert cached == live
    return cached


def truth(ds: Dataset, **kw: Any) -> Truth:
    return Truth.of(ds, kw.get("first", FIRST), kw.get("last", LAST), kw.get("tz"))


def test_the_dataset_has_every_awkward_case(loaded: tuple[TestClient, Dataset]) -> None:
    _, ds = loaded
    dedup = truth(ds).dedup()
    for combination in ("browser+server", "browser+webhook", "browser+server+webhook"):
        assert dedup.get(combination, 0) > 0, combination
    assert dedup["same_source_duplicates"] > 0 and dedup["missing_event_id"] == 2
    assert {e.currency for e in ds.events if e.name == "Purchase"} == {"EUR", "USD"}
    assert any(e.name == "Refund" and e.value is not None and e.value < 0 for e in ds.events)
    late = [e for e in ds.events if e.event_id == "purchase:late-1"]
    assert len(late) == 2 and late[1].time - late[0].time > 48 * 3600
    first_copy: dict[str, str] = {}
    for r in sorted(ds.records, key=lambda r: r.event_time):
        first_copy.setdefault(r.event_id, r.source)
    assert {"browser", "server", "webhook"} <= set(first_copy.values())  # both orders


# Kathmandu is UTC+5:45: its days start mid-hour, on a 15-minute rollup boundary.
@pytest.mark.parametrize("tz", [TZ, "America/New_York", "Asia/Kathmandu"])
def test_overview(loaded: tuple[TestClient, Dataset], tz: str) -> None:
    client, ds = loaded
    got = report(client, ds, "overview", tz=tz)
    counts, visitors, visitors_by_day = truth(ds, tz=tz).overview()
    assert got["totals"]["visitors"] == visitors
    assert got["totals"]["events"] == sum(counts.values())
    seen = {(d["date"], name): n for d in got["days"] for name, n in d["by_event"].items() if n}
    assert seen == counts
    assert {d["date"]: d["visitors"] for d in got["days"] if d["visitors"]} == visitors_by_day
    assert got["days"][0]["date"] == FIRST.isoformat()
    assert len(got["days"]) == (LAST - FIRST).days + 1  # days without events included


@pytest.mark.parametrize("tz", [TZ, "Asia/Kathmandu"])
def test_funnel(loaded: tuple[TestClient, Dataset], tz: str) -> None:
    client, ds = loaded
    got = report(client, ds, "funnel", tz=tz)["steps"]
    expected = truth(ds, tz=tz).funnel()
    assert [s["event"] for s in got] == list(FUNNEL)
    assert [s["visitors"] for s in got] == expected
    assert got[0]["step_conversion"] is None
    assert got[1]["step_conversion"] == round(expected[1] / expected[0], 6)
    assert got[4]["overall_conversion"] == round(expected[4] / expected[0], 6)


@pytest.mark.parametrize("tz", [TZ, "Asia/Kathmandu"])
def test_purchases(loaded: tuple[TestClient, Dataset], tz: str) -> None:
    client, ds = loaded
    got = report(client, ds, "purchases", tz=tz)
    expected = truth(ds, tz=tz).purchases()
    by_key = {(r["date"], r["currency"]): r for r in got["days"]}
    assert set(by_key) == set(expected)
    for key, want in expected.items():
        row = by_key[key]
        for field in ("orders", "gross_revenue", "refunds", "refunded", "revenue"):
            assert row[field] == want[field], (key, field)
    for total in got["totals"]:
        rows = [v for (_, c), v in expected.items() if c == total["currency"]]
        orders = sum(int(r["orders"]) for r in rows)
        gross = sum((Decimal(r["gross_revenue"]) for r in rows), Decimal(0))
        assert total["orders"] == orders
        assert total["revenue"] == sum((Decimal(r["revenue"]) for r in rows), Decimal(0))
        assert total["aov"] == (gross / orders).quantize(Decimal("0.0001"))
    assert any(r["refunded"] < 0 for r in got["days"])  # the refund nets revenue out


def test_products_and_variants(loaded: tuple[TestClient, Dataset]) -> None:
    client, ds = loaded
    got = report(client, ds, "products")
    expected = truth(ds).products()
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for p in got["products"]:
        seen[(p["product"], "")] = p
        for v in p["variants"]:
            seen[(p["product"], v["variant"])] = v
    assert set(seen) == set(expected)
    for key, want in expected.items():
        row = seen[key]
        for field in ("views", "add_to_carts", "orders", "units", "refunded_units"):
            assert row[field] == want[field], (key, field)
        for field in MONEY:
            assert row[field] == want[field], (key, field)
        assert row["view_to_purchase"] == (
            round(want["orders"] / want["views"], 6) if want["views"] else None  # type: ignore[operator]
        )  # type: ignore[attr-defined]
    # The generator's refunds return units by line and money without lines.
    assert any(r["refunded_units"] for r in seen.values())
    assert any(sum(r["refunded_without_lines"].values()) for r in seen.values())
    hoodie = next(p for p in got["products"] if p["product"] == "hoodie")
    assert len(hoodie["variants"]) == 4
    assert hoodie["units"] == sum(v["units"] for v in hoodie["variants"])


@pytest.mark.parametrize("window", [1, 7, 28])
@pytest.mark.parametrize("model", ["last_touch", "first_touch"])
def test_attribution(loaded: tuple[TestClient, Dataset], window: int, model: str) -> None:
    client, ds = loaded
    got = report(client, ds, "attribution", window=window, model=model)
    t = truth(ds)
    expected = t.attribution(window, model)
    assert {
        (r["channel"], r["currency"]): {"orders": r["orders"], "revenue": r["revenue"]}
        for r in got["channels"]
    } == expected
    want_products = t.attribution_products(window, model)
    assert {
        (r["channel"], r["product"], r["currency"]): {
            "orders": r["orders"],
            "units": r["units"],
            "revenue": r["revenue"],
        }
        for r in got["products"]
    } == want_products


def test_the_click_window_decides(loaded: tuple[TestClient, Dataset]) -> None:
    """The ttclid click 36 h before purchase:window-1 counts in 7 days, not in 1."""
    _, ds = loaded
    t = truth(ds)
    buy = next(e for e in ds.events if e.event_id == "purchase:window-1")
    assert t.attribution_channel(buy, 7, "last_touch") == "tiktok_paid"
    assert t.attribution_channel(buy, 1, "last_touch") == "direct"


def test_operations_dedup(loaded: tuple[TestClient, Dataset]) -> None:
    client, ds = loaded
    got = report(client, ds, "operations")
    expected = truth(ds).dedup()
    by_sources = {r["sources"]: r["events"] for r in got["dedup"]["by_sources"]}
    counters = ("same_source_duplicates", "missing_event_id")
    assert by_sources == {k: v for k, v in expected.items() if k not in counters}
    totals = got["dedup"]["totals"]
    assert totals["same_source_duplicates"] == expected["same_source_duplicates"]
    assert totals["missing_event_id"] == expected["missing_event_id"]
    assert [r["outcome"] for r in got["forwarding"]] == ["sent", "retrying", "dead"]


def test_csv_of_every_table(loaded: tuple[TestClient, Dataset]) -> None:
    client, ds = loaded
    params = ReportParams(ds.pixel_id, FIRST, LAST, TZ)
    ch = runtime_of(client).database.client()
    for name in ("overview", "funnel", "purchases", "products", "attribution", "operations"):
        for table_name, table in run(ch, name, params).tables.items():
            text = to_csv(table)
            assert text.splitlines()[0].split(",") == table.columns, (name, table_name)
            assert len(text.splitlines()) == len(table.rows) + 1
    variants = run(ch, "products", params).tables["variants"]
    assert variants.columns[-10:] == [f"{m}_{c}" for c in ("EUR", "USD") for m in MONEY]
    assert "refunded_units" in variants.columns
    by_variant = {row[1]: dict(zip(variants.columns, row, strict=True)) for row in variants.rows}
    want = {k[1]: v for k, v in truth(ds).products().items() if k[1]}
    for variant, row in by_variant.items():  # the CSV's cells are the report's numbers
        assert row["revenue_EUR"] == want[variant]["revenue"].get("EUR", Decimal("0.0000"))
        assert row["refunded_without_lines_USD"] == want[variant]["refunded_without_lines"].get(
            "USD", Decimal("0.0000")
        )


def test_parameters() -> None:
    p = parse_params("px", {"from": "2026-03-01", "to": "2026-03-31"}, "Europe/Berlin")
    assert (p.start.isoformat(), p.end.isoformat()) == (
        "2026-02-28T23:00:00+00:00",
        "2026-03-31T22:00:00+00:00",
    )  # DST from 29 March
    assert parse_params("px", {}, "UTC", today=date(2026, 3, 31)).first == date(2026, 3, 2)
    for query, param in [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "x"}, "to"),
        ({"tz": "Mars/Base"}, "tz"),
        ({"window": "3"}, "window"),
        ({"model": "linear"}, "model"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "from"),
    ]:
        with pytest.raises(ParamError) as err:
            parse_params("px", query, "UTC")
        assert err.value.param == param


def test_a_late_copy_changes_the_stored_reports_at_its_insert(
    loaded: tuple[TestClient, Dataset],
) -> None:
    """A copy arriving hours later (a webhook re-sent with the final amount)
    replaces its event's merged state: the revenue moves by exactly its change."""
    client, _ = loaded
    runtime = runtime_of(client)
    ch = runtime.database.client()
    pixel = add_pixel(runtime, timezone="UTC")
    ds = generate(pixel_id=pixel["id"], tz="UTC", visitors=40, days=6)
    runtime.insert_events(ds.records, "late-1")
    first, last = ds.first_day, ds.first_day + timedelta(days=5)
    params = ReportParams(pixel["id"], first, last, "UTC")
    before = run(ch, "purchases", params).data
    paid = next(r for r in ds.records if r.event == "Purchase" and r.source == "server")
    late = msgspec.structs.replace(
        paid, source="webhook", value=(paid.value or 0) + 100, received_at=paid.received_at + 3600
    )
    runtime.insert_events([late], "late-2")
    after = run(ch, "purchases", params).data
    assert after == run(ch, "purchases", params, cached=False).data
    gain = {
        t["currency"]: t["revenue"] - b["revenue"]
        for t, b in zip(after["totals"], before["totals"], strict=True)
    }
    assert sorted(gain.values()) == [0, 100]


def test_operations_forwarding_outcomes(loaded: tuple[TestClient, Dataset]) -> None:
    """Each forwarded copy counts once, by its latest attempt; failures keep TikTok's words."""
    client, ds = loaded
    ch = runtime_of(client).database.client()
    at = datetime(2026, 3, 5, 12, tzinfo=UTC).timestamp()
    attempts = [  # (event_id, source, attempt, seconds after `at`, outcome, code, message)
        ("e1", "browser", 1, 0, "sent", 0, "OK"),
        ("e2", "server", 1, 0, "retrying", 40100, "rate limited"),
        ("e2", "server", 2, 30, "sent", 0, "OK"),
        ("e3", "webhook", 1, 0, "retrying", 50000, "server error"),
        ("e4", "server", 1, 60, "dead", 40002, "Invalid value for field: currency"),
    ]
    ch.insert(
        "deliveries",
        [
            [
                ds.pixel_id,
                "Purchase",
                eid,
                src,
                round((at + dt) * 1000),
                n,
                round((at + dt) * 1000),
                12,
                200,
                code,
                msg,
                "req",
                "batch",
                outcome,
            ]
            for eid, src, n, dt, outcome, code, msg in attempts
        ],
        column_names=[
            "pixel_id",
            "event",
            "event_id",
            "source",
            "event_time",
            "attempt",
            "attempted_at",
            "latency_ms",
            "http_status",
            "tiktok_code",
            "tiktok_message",
            "request_id",
            "batch_id",
            "outcome",
        ],
    )
    got = report(client, ds, "operations")
    assert {r["outcome"]: (r["events"], r["attempts"]) for r in got["forwarding"]} == {
        "sent": (2, 3),
        "retrying": (1, 1),
        "dead": (1, 1),
    }
    messages = [m["tiktok_message"] for m in got["last_messages"]]
    assert messages == ["Invalid value for field: currency", "server error", "rate limited"]


def test_a_twin_after_midnight_merges_into_the_day_before(
    loaded: tuple[TestClient, Dataset],
) -> None:
    """The back end's copy of a purchase made at 23:59, dated after midnight,
    merges into the purchase of the day before; unrelated copies change nothing."""
    client, _ = loaded
    runtime = runtime_of(client)
    ch = runtime.database.client()
    pixel = add_pixel(runtime, timezone="UTC")
    day = date(2026, 3, 10)
    midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC).timestamp()
    browser = Record(
        pixel_id=pixel["id"],
        event="Purchase",
        received_event="Purchase",
        event_id="purchase:late-night",
        source="browser",
        event_time=midnight - 1,
        received_at=midnight,
        anonymous_id="anon-night",
        value=1.0,
        currency="USD",
        order_id="late-night",
    )
    other = msgspec.structs.replace(
        browser,
        event="ViewContent",
        event_id="vc-next-day",
        event_time=midnight + 3600,
        received_at=midnight + 3600,
    )
    runtime.insert_events([browser, other], "night-1")
    params = ReportParams(pixel["id"], day, day + timedelta(days=1), "UTC")
    assert run(ch, "purchases", params).data["totals"][0]["revenue"] == Decimal("1.0000")
    unrelated = msgspec.structs.replace(
        other, event_id="vc-next-day-2", received_at=midnight + 7200
    )
    runtime.insert_events([unrelated], "night-2")
    assert run(ch, "purchases", params).data["totals"][0]["revenue"] == Decimal("1.0000")
    server = msgspec.structs.replace(
        browser,
        source="server",
        event_time=midnight + 30,
        received_at=midnight + 9000,
        value=80.0,
        anonymous_id="",
    )
    runtime.insert_events([server], "night-3")
    totals = run(ch, "purchases", params).data["totals"]
    assert [(t["orders"], t["revenue"]) for t in totals] == [(1, Decimal("80.0000"))]
    assert run(ch, "purchases", params, cached=False).data["totals"] == totals


def test_a_day_shorter_than_a_utc_day_of_the_range(loaded: tuple[TestClient, Dataset]) -> None:
    """One Berlin day holds no whole UTC day: only per-bucket visitor rows count."""
    client, ds = loaded
    day = date(2026, 3, 6)
    overview = report(client, ds, "overview", first=day, last=day)
    _, visitors, _ = truth(ds, first=day, last=day).overview()
    assert overview["totals"]["visitors"] == visitors > 0
    funnel = report(client, ds, "funnel", first=day, last=day)["steps"]
    assert [s["visitors"] for s in funnel] == truth(ds, first=day, last=day).funnel()


def test_a_late_touch_reattributes_earlier_purchases(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path
) -> None:
    """A touch arriving after the purchase it precedes (days before it) moves
    the purchase to the touch's channel."""
    with app_client(shared_settings(tmp_path_factory, engine_dir)) as client:
        runtime = runtime_of(client)
        pixel = add_pixel(runtime, timezone="UTC")
        first = date(2026, 3, 2)
        ds = generate(pixel_id=pixel["id"], tz="UTC", visitors=150, days=10, first_day=first)
        runtime.insert_events(ds.records, "late-touch-1")
        params = ReportParams(pixel["id"], first, first + timedelta(days=9), "UTC")
        ch = runtime.database.client()
        before = run(ch, "attribution", params).data
        t = truth(ds, first=params.first, last=params.last)
        purchase = next(
            e
            for e in t.in_range(("Purchase",))
            if e.anonymous_id
            and e.time
            >= datetime.combine(first + timedelta(days=6), datetime.min.time(), UTC).timestamp()
            and t.attribution_channel(e, 7, "last_touch") == "direct"
        )
        template = next(r for r in ds.records if r.source == "browser" and r.event == "PageView")
        click = msgspec.structs.replace(
            template,
            event_id="late-ad-click",
            anonymous_id=purchase.anonymous_id,
            channel="tiktok_paid",
            ttclid="E.C.P.late",
            event_time=purchase.time - 5 * 86400,
            received_at=purchase.time + 3600,
        )
        runtime.insert_events([click], "late-touch-2")
        after = run(ch, "attribution", params).data
        assert after == run(ch, "attribution", params, cached=False).data

        def orders(data: dict[str, Any], channel: str) -> int:
            return sum(r["orders"] for r in data["channels"] if r["channel"] == channel)

        assert orders(after, "tiktok_paid") == orders(before, "tiktok_paid") + 1
        assert orders(after, "direct") == orders(before, "direct") - 1


def test_migration_0007_reads_older_copies_as_without_refund_amounts(engine_dir: Path) -> None:
    """Copies stored before refund lines existed read zeros of the right length
    (a Refund's lines then return price × quantity), and migration 14 merges
    them into the stored rows the reports read."""
    target = parse_url(f"chdb://{engine_dir}", "t_" + uuid.uuid4().hex[:12])
    ch = connect(target)
    try:
        migrate.applied_versions(ch)  # creates schema_migrations
        for m in migrate.available():
            if m.version < 7:
                for statement in m.statements():
                    ch.command(statement)
                ch.insert("schema_migrations", [[m.version, m.name, m.checksum]],
                          column_names=["version", "name", "checksum"])  # fmt: skip
        ds = generate(visitors=60, days=3, first_day=FIRST, tz="UTC", pixel_id="px_old")
        old = [msgspec.structs.replace(r, content_refunds=[]) for r in ds.records]
        # The columns before migration 7 (no contents.refunded / refunded_share).
        scalars = [f for f in old[0].__struct_fields__ if f not in ("contents", "content_refunds")]
        nested = ["content_id", "item_group_id", "name", "category", "brand", "quantity", "price"]
        rows = [
            [round(getattr(r, f) * 1000) if f in ("event_time", "received_at") else getattr(r, f)
             for f in scalars] + [[c[i] for c in r.contents] for i in range(len(nested))]
            for r in old
        ]  # fmt: skip
        ch.insert("events", rows, column_names=[*scalars, *(f"contents.{n}" for n in nested)])
        later = [m.version for m in migrate.available() if m.version >= 7]
        assert [m.version for m in migrate.apply(ch)] == later
        assert ch.command("SELECT count() FROM merged_events FINAL") == len(ds.events)
        assert ch.command(
            "SELECT countIf(length(`contents.refunded`) != length(`contents.content_id`)"
            " OR arrayExists(x -> x != 0, `contents.refunded_share`)) FROM events"
        ) == 0  # fmt: skip
        params = ReportParams("px_old", FIRST, FIRST + timedelta(days=2), "UTC")
        expected = Truth.of(
            replace(ds, events=[replace(e, refund_lines=[]) for e in ds.events]),
            FIRST, FIRST + timedelta(days=2),
        ).products()  # fmt: skip
        for cached in (True, False):
            got = run(ch, "products", params, cached=cached).data["products"]
            assert {(p["product"], ""): p["revenue"] for p in got} == {
                k: v["revenue"] for k, v in expected.items() if not k[1]
            }
    finally:
        ch.command(f"DROP DATABASE IF EXISTS `{target.database}`")
