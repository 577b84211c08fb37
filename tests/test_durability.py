"""Nothing lost, nothing counted twice: ClickHouse outages, the disk budget,
torn log tails, and same-source / cross-source duplicates (docs/architecture.md §1-2)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pixel_server.app import create_app
from pixel_server.config import Settings, load_settings
from pixel_server.pipeline.record import decode_key
from pixel_server.runtime import Runtime
from pixel_server.storage.queries import merged_events_sql
from tests.conftest import UNLIMITED
from tests.ingest_helpers import block_loader

ORIGIN = "https://shop.example.com"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def runtime_of(client: TestClient) -> Runtime:
    return client.app.state.runtime  # type: ignore[attr-defined,no-any-return]


def add_pixel(client: TestClient) -> dict[str, Any]:
    return runtime_of(client).management.run(  # type: ignore[no-any-return]
        "pixel.add", {"name": "Shop", "origins": [ORIGIN]}
    )


def post_browser(client: TestClient, pixel_id: str, events: list[dict[str, Any]]) -> Any:
    return client.post(
        f"/collect?p={pixel_id}",
        json={"events": events},
        headers={"origin": ORIGIN, "user-agent": UA},
    )


def post_server(client: TestClient, pixel: dict[str, Any], events: list[dict[str, Any]]) -> Any:
    return client.post(
        "/api/v1/events",
        json={"event_source": "web", "event_source_id": pixel["id"], "data": events},
        headers={"authorization": f"Bearer {pixel['api_key']}"},
    )


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def loaded(client: TestClient) -> bool:
    wal = runtime_of(client).wal
    assert wal is not None
    return wal.reader("loader").backlog().bytes == 0


def merged(client: TestClient, pixel_id: str) -> list[dict[str, Any]]:
    wait_until(lambda: loaded(client))
    ch = runtime_of(client).database.client()
    result = ch.query(
        f"SELECT * FROM ({merged_events_sql()}) ORDER BY event_time, event_id",
        parameters={
            "pixel": pixel_id,
            "start": datetime(2000, 1, 1, tzinfo=UTC),
            "end": datetime(2100, 1, 1, tzinfo=UTC),
        },
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def event(name: str = "ViewContent", **extra: Any) -> dict[str, Any]:
    return {"event": name, "event_id": extra.pop("event_id", uuid.uuid4().hex), **extra}


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


# ---------------------------------------------------------------- dedup


def test_same_source_duplicates_collapse(app_client: TestClient) -> None:
    pixel = add_pixel(app_client)
    e = event("AddToCart", event_id="dup-1")
    first = post_browser(app_client, pixel["id"], [e, e])
    again = post_browser(app_client, pixel["id"], [e])
    assert first.status_code == again.status_code == 202
    rows = merged(app_client, pixel["id"])
    assert [(r["event_id"], r["copies"]) for r in rows] == [("dup-1", 1)]
    metrics = app_client.get("/metrics").text
    assert 'pixel_duplicates_collapsed_total{source="browser"} 2.0' in metrics


def test_browser_and_server_copies_of_a_purchase_count_once(app_client: TestClient) -> None:
    pixel = add_pixel(app_client)
    browser_copy = event(
        "Purchase",
        event_id="purchase:1001",
        user={"anonymous_id": "anon-1", "ttclid": "E.C.P.click"},
        properties={"value": 1, "currency": "USD"},  # the browser's guess
        page={"url": f"{ORIGIN}/thanks", "referrer": "https://www.tiktok.com/"},
    )
    server_copy = event(
        "CompletePayment",  # legacy name: same event as Purchase
        event_id="purchase:1001",
        user={"email": "buyer@example.com"},
        properties={"value": 59.9, "currency": "EUR", "order_id": "1001",
                    "contents": [{"content_id": "SKU-1", "price": 29.95, "quantity": 2}]},
    )  # fmt: skip
    assert post_server(app_client, pixel, [server_copy]).status_code == 200
    assert post_browser(app_client, pixel["id"], [browser_copy]).status_code == 202
    (row,) = merged(app_client, pixel["id"])
    assert row["event"] == "Purchase" and row["copies"] == 2
    assert row["sources"] == ["browser", "server"]
    assert (float(row["value"]), row["currency"], row["order_id"]) == (59.9, "EUR", "1001")
    assert row["contents.content_id"] == ["SKU-1"]
    assert (row["ttclid"], row["anonymous_id"], row["channel"]) == (
        "E.C.P.click", "anon-1", "tiktok_paid"
    )  # fmt: skip
    assert len(row["email_sha256"]) == 1


def test_copies_49_hours_apart_are_two_events(app_client: TestClient) -> None:
    pixel = add_pixel(app_client)
    now = time.time()
    old = event("Lead", event_id="lead-7", event_time=now - 49 * 3600)
    new = event("Lead", event_id="lead-7", event_time=now)
    near = event("Lead", event_id="lead-7", event_time=now - 3600)
    assert post_server(app_client, pixel, [old, new, near]).json()["accepted"] == 3
    rows = merged(app_client, pixel["id"])
    assert [r["event_id"] for r in rows] == ["lead-7", "lead-7"]
    assert sorted(r["copies"] for r in rows) == [1, 1]
    # "near" was a same-source duplicate of "new": collapsed at ingest
    assert post_server(app_client, pixel, [near]).json()["duplicates"] == 1


def test_events_without_event_id_are_counted(app_client: TestClient) -> None:
    pixel = add_pixel(app_client)
    post_browser(app_client, pixel["id"], [{"event": "PageView"}, {"event": "PageView"}])
    rows = merged(app_client, pixel["id"])
    assert len(rows) == 2 and all(r["event_id_assigned"] for r in rows)
    text = app_client.get("/metrics").text
    assert 'pixel_events_missing_event_id_total{source="browser"} 2.0' in text


# -------------------------------------------------------------- outages


def test_clickhouse_outage_loses_nothing(app_client: TestClient) -> None:
    pixel = add_pixel(app_client)
    runtime = runtime_of(app_client)
    assert runtime.loader is not None
    real_insert = runtime.loader.insert
    failing = {"on": True, "calls": 0}

    def flaky(batch: list[Any], token: str) -> None:
        if failing["on"]:
            failing["calls"] += 1
            raise ConnectionError("injected: ClickHouse is down")
        real_insert(batch, token)

    runtime.loader.insert = flaky
    sent = [event(event_id=f"outage-{i}") for i in range(120)]
    for i in range(0, len(sent), 30):
        assert post_browser(app_client, pixel["id"], sent[i : i + 30]).status_code == 202
    wait_until(lambda: failing["calls"] >= 2)
    ready = app_client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["loader"] == "degraded"  # public: the state only
    assert "injected" not in ready.text
    details = runtime.management.run("status", {})  # operators: every detail
    assert "injected" in details["checks"]["loader"]
    assert ready.json()["checks"]["log"]["backlog"]["loader"]["bytes"] > 0
    assert 'pixel_log_backlog_bytes{reader="loader"}' in app_client.get("/metrics").text
    failing["on"] = False
    rows = merged(app_client, pixel["id"])
    assert sorted(r["event_id"] for r in rows) == sorted(e["event_id"] for e in sent)
    assert all(r["copies"] == 1 for r in rows)
    wait_until(lambda: app_client.get("/readyz").status_code == 200)


def test_a_replayed_batch_is_not_loaded_twice(app_client: TestClient) -> None:
    """ClickHouse took the batch but the answer was lost: the retry is dropped
    by the insert_deduplication_token."""
    pixel = add_pixel(app_client)
    runtime = runtime_of(app_client)
    assert runtime.loader is not None
    real_insert = runtime.loader.insert
    lost = {"done": False}

    def answer_lost(batch: list[Any], token: str) -> None:
        real_insert(batch, token)
        if not lost["done"]:
            lost["done"] = True
            raise TimeoutError("injected: answer lost after insert")

    runtime.loader.insert = answer_lost
    post_browser(app_client, pixel["id"], [event(event_id=f"r-{i}") for i in range(10)])
    wait_until(lambda: lost["done"] and loaded(app_client))
    ch = runtime.database.client()
    count = ch.query("SELECT count() FROM events").result_rows[0][0]
    assert count == 10


def test_disk_budget_answers_503_and_keeps_what_it_acknowledged(
    tmp_path: Path, engine_dir: Path, database_name: str
) -> None:
    settings = load_settings({
        "PIXEL_DATA_DIR": str(tmp_path / "data"),
        "PIXEL_CLICKHOUSE_URL": f"chdb://{engine_dir}?database={database_name}",
        "PIXEL_LOG_LEVEL": "error",
        "PIXEL_WAL_MAX_MB": "2",
        "PIXEL_WAL_SEGMENT_MB": "1",
        **UNLIMITED,
    })  # fmt: skip
    with TestClient(create_app(settings)) as c:
        pixel = add_pixel(c)
        unblock = block_loader(runtime_of(c))
        acked: list[str] = []
        refused = None
        for round_ in range(200):
            batch = [event(event_id=f"b{round_}-{i}", properties={"description": "x" * 400})
                     for i in range(40)]  # fmt: skip
            r = post_browser(c, pixel["id"], batch)
            if r.status_code == 503:
                refused = r
                break
            assert r.status_code == 202
            acked += [e["event_id"] for e in batch]
        assert refused is not None, "the budget was never reached"
        assert refused.json()["error"]["code"] == "log_full"
        assert int(refused.headers["retry-after"]) >= 1
        unblock()
        rows = merged(c, pixel["id"])
        assert sorted(r["event_id"] for r in rows) == sorted(acked)


def test_torn_tail_after_power_loss_recovers_everything_before(settings: Settings) -> None:
    with TestClient(create_app(settings)) as c:
        pixel = add_pixel(c)
        runtime = runtime_of(c)
        assert runtime.loader is not None
        runtime.loader.insert = lambda batch, token: (_ for _ in ()).throw(ConnectionError("down"))
        for i in range(5):
            assert post_browser(c, pixel["id"], [event(event_id=f"t{i}")]).status_code == 202
    # power loss mid-write: the last record is cut short
    segments = sorted((settings.data_dir / "wal").glob("*.log"))
    last = max((s for s in segments if s.stat().st_size), key=lambda p: p.name)
    with last.open("r+b") as f:
        f.truncate(last.stat().st_size - 7)
    with TestClient(create_app(settings)) as c:
        rows = merged(c, pixel["id"])
        assert sorted(r["event_id"] for r in rows) == ["t0", "t1", "t2", "t3"]
        assert c.get("/readyz").status_code == 200


def test_a_row_clickhouse_never_takes_is_parked_not_blocking(
    app_client: TestClient, settings: Settings
) -> None:
    """ClickHouse answers, but refuses one row every time: the batch is loaded
    around it and the row goes to the quarantine file; the loader moves on."""
    pixel = add_pixel(app_client)
    runtime = runtime_of(app_client)
    assert runtime.loader is not None
    real_insert = runtime.loader.insert

    def refuses_poison(batch: list[Any], token: str) -> None:
        if any(decode_key(p).event_id == "poison" for p in batch):
            raise ValueError("injected: Decimal overflow")
        real_insert(batch, token)

    runtime.loader.insert = refuses_poison
    ids = ["good-1", "poison", "good-2", "good-3"]
    assert (
        post_browser(app_client, pixel["id"], [event(event_id=i) for i in ids]).status_code == 202
    )
    rows = merged(app_client, pixel["id"])
    assert sorted(r["event_id"] for r in rows) == ["good-1", "good-2", "good-3"]
    parked = (settings.data_dir / "quarantine" / "events.jsonl").read_text().splitlines()
    assert len(parked) == 1 and '"event_id":"poison"' in parked[0]
    assert "pixel_loader_quarantined_total 1.0" in app_client.get("/metrics").text
    assert app_client.get("/readyz").status_code == 200
    # later events load as usual
    post_browser(app_client, pixel["id"], [event(event_id="after")])
    assert "after" in [r["event_id"] for r in merged(app_client, pixel["id"])]
