"""Erasure: a person's events leave ClickHouse, the reports, quarantine and the
copies still in transit; the audit keeps no identifier."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from starlette.testclient import TestClient

from pixel_server.events.normalise import hash_email
from pixel_server.pipeline import record as records
from pixel_server.pipeline.erasures import Erasures, Tombstone
from pixel_server.sinks.clickhouse import QUARANTINE_FILE, drop_from_quarantine
from tests.ingest_helpers import (
    ORIGIN,
    add_pixel,
    block_loader,
    count_rows,
    runtime_of,
    wait_for_rows,
)

JANE, JOHN = "Jane.Doe@Example.com", "john@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def purchase(order: str, email: str, value: float, now: float) -> dict[str, Any]:
    return {
        "event": "Purchase",
        "event_id": f"purchase:{order}",
        "event_time": now,
        "user": {"email": email},
        "properties": {"value": value, "currency": "USD", "order_id": order},
    }


def send(c: TestClient, pixel: dict[str, Any], events: list[dict[str, Any]]) -> None:
    body = {"event_source": "web", "event_source_id": pixel["id"], "data": events}
    r = c.post("/api/v1/events", headers=bearer(pixel["api_key"]), json=body)
    assert r.status_code == 200, r.text


def orders(c: TestClient, pixel: dict[str, Any], now: float) -> int:
    today = datetime.fromtimestamp(now, UTC).date().isoformat()
    url = f"/api/v1/reports/{pixel['id']}/purchases?from={today}&to={today}&tz=UTC"
    body = c.get(url, headers=bearer(pixel["owner_token"])).json()
    return sum(t["orders"] for t in body["totals"])


def test_erase_by_email_drops_report_totals_by_exactly_their_purchases(client: TestClient) -> None:
    runtime = runtime_of(client)
    pixel = add_pixel(runtime)
    now = time.time()
    send(client, pixel, [purchase("j1", JANE, 10, now), purchase("j2", JANE, 20, now),
                         purchase("o1", JOHN, 5, now)])  # fmt: skip
    browse = {"event": "ViewContent", "event_id": "v1", "event_time": now,
              "user": {"email": JANE, "anonymous_id": "anon-jane"}}  # fmt: skip
    same_browser = {"event": "AddToCart", "event_id": "c1", "event_time": now,
                    "user": {"anonymous_id": "anon-jane"}}  # fmt: skip
    send(client, pixel, [browse, same_browser])
    assert wait_for_rows(runtime, 5, pixel["id"]) == 5
    assert orders(client, pixel, now) == 3

    r = client.post(f"/api/v1/pixels/{pixel['id']}/erasures", json={"email": JANE},
                    headers=bearer(pixel["owner_token"]))  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["events"], body["purchases"], body["linked_browsers"]) == (4, 2, 1)
    assert orders(client, pixel, now) == 1  # John's order stays
    assert count_rows(runtime, pixel["id"]) == 1
    jane = hash_email(JANE)
    assert jane is not None
    assert count_rows(runtime, pixel["id"], f"has(email_sha256, '{jane}')") == 0

    log = client.get(f"/api/v1/pixels/{pixel['id']}/erasures",
                     headers=bearer(pixel["owner_token"])).json()["erasures"]  # fmt: skip
    assert len(log) == 1 and log[0]["kind"] == "email"
    assert jane not in str(log) and JANE.lower() not in str(log).lower()
    assert jane.startswith(log[0]["subject_prefix"]) and len(log[0]["subject_prefix"]) < 16


def test_copies_in_transit_are_not_stored_after_an_erasure(client: TestClient) -> None:
    runtime = runtime_of(client)
    pixel = add_pixel(runtime)
    now = time.time()
    unblock = block_loader(runtime)  # the copies wait in the log
    send(client, pixel, [purchase("t1", JANE, 10, now), purchase("t2", JOHN, 7, now)])
    r = client.post(f"/api/v1/pixels/{pixel['id']}/erasures", json={"email": JANE},
                    headers=bearer(pixel["owner_token"]))  # fmt: skip
    assert r.status_code == 200, r.text
    unblock()
    assert wait_for_rows(runtime, 1, pixel["id"]) == 1
    time.sleep(1.0)  # anything else the log held would be loaded meanwhile
    assert count_rows(runtime, pixel["id"]) == 1
    assert count_rows(runtime, pixel["id"], "order_id = 't2'") == 1
    # Tombstones survive a restart: they are in the data directory.
    assert Erasures(runtime.data_dir / "erasures.log").for_pixel(pixel["id"])


def test_the_api_refuses_what_it_cannot_erase(client: TestClient) -> None:
    runtime = runtime_of(client)
    pixel = add_pixel(runtime)
    reader = runtime.management.run("token.add", {"pixel": pixel["id"], "role": "reader"})
    url = f"/api/v1/pixels/{pixel['id']}/erasures"
    owner = bearer(pixel["owner_token"])
    cases = [
        ({}, owner, 400, "one_identifier"),
        ({"email": JANE, "phone": "+14155550100"}, owner, 400, "one_identifier"),
        ({"name": "Jane"}, owner, 400, "unknown_field"),
        ({"phone": "not a phone"}, owner, 400, "invalid_identifier"),
        ({"email": JANE}, bearer(reader["token"]), 403, "owner_only"),
        ({"email": JANE}, {}, 401, "unauthorized"),
    ]
    for body, headers, status, code in cases:
        r = client.post(url, json=body, headers=headers)
        assert (r.status_code, r.json().get("error", {}).get("code")) == (status, code), (
            body,
            r.text,
        )
    r = client.post(url, content=b"[1", headers={**owner, "content-type": "application/json"})
    assert r.status_code == 400
    r = client.post("/api/v1/pixels/px_nope/erasures", json={"email": JANE}, headers=owner)
    assert r.status_code in (403, 404)


def test_quarantined_rows_of_the_person_are_removed(tmp_path: Any) -> None:
    import msgspec

    path = tmp_path / QUARANTINE_FILE
    path.parent.mkdir(parents=True)
    jane = hash_email(JANE)
    rows = [
        records.Record(
            "px",
            "Purchase",
            "Purchase",
            f"e{i}",
            "server",
            1.0,
            2.0,
            email_sha256=[jane if i % 2 else "other"],
        )
        for i in range(4)
    ]
    path.write_bytes(b"".join(
        msgspec.json.encode({"batch_id": "b", "error": "x", "record": msgspec.structs.asdict(r)})
        + b"\n" for r in rows
    ))  # fmt: skip
    erasures = Erasures(None)
    erasures.add([Tombstone("px", "email", jane or "", before=10.0)])
    assert drop_from_quarantine(path, erasures) == 2
    assert jane not in path.read_text() and path.read_text().count("\n") == 2
    assert ORIGIN  # the helpers' shop origin is what the pixel registered


def test_the_cli_erases_from_standard_input_and_lists_erasures(tmp_path: Any) -> None:
    from tests.test_cli import cli, cli_json

    data = tmp_path / "data"
    pixel = cli_json(data, "pixel", "add", "--name", "Shop")
    done = cli(data, "erase", "--pixel", pixel["id"], "--email", "-", "--json", stdin=JANE + "\n")
    result = json_of(done.stdout)
    assert (result["kind"], result["events"]) == ("email", 0)
    both = cli(data, "erase", "--pixel", pixel["id"], "--email", JANE, "--phone", "+14155550100",
               check=False)  # fmt: skip
    assert both.returncode == 1 and "exactly one" in both.stderr
    listed = cli_json(data, "erase", "--pixel", pixel["id"], "--list")
    assert [r["kind"] for r in listed] == ["email"]
    assert "jane" not in str(listed).lower()


def json_of(text: str) -> Any:
    import json

    return json.loads(text)
