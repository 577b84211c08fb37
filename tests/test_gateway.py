"""The TikTok-compatible gateway (``/open_api/v1.3/...``), in process.

The 2.0 path ``event/track/`` mirrors ``tests/test_ingest_api.py`` (same
body, same validation, partial acceptance and limits) with TikTok's header and
answers: ``Access-Token``, and HTTP 200 with ``{"code", "message",
"request_id", "data"}`` whatever the outcome — never a 4xx or 5xx for bad
input or credentials. The 1.0 paths are covered here for their mapping and
in ``tests/test_gateway_sdk.py`` through TikTok's own SDK.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import msgspec
import orjson
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31
from starlette.testclient import TestClient

from pixel_server.events.tiktok_v1 import decode_v1_batch, decode_v1_track, v1_field
from pixel_server.ingest.gateway import EVENT_TRACK, PIXEL_BATCH, PIXEL_TRACK, tiktok_field
from tests.ingest_helpers import (
    add_pixel,
    api_body,
    app_client,
    block_loader,
    metric,
    runtime_of,
    select_dicts,
    shared_settings,
    wait_for_rows,
)
from tests.test_ingest_api import EMAIL_SHA256, PHONE_SHA256, purchase

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def sha256(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[TestClient]:
    with app_client(shared_settings(tmp_path_factory, engine_dir)) as c:
        yield c


@pytest.fixture
def pixel(client: TestClient) -> dict[str, Any]:
    return add_pixel(runtime_of(client))


def send(client: TestClient, token: str | None, body: Any, path: str = EVENT_TRACK) -> Any:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["access-token"] = token
    return client.post(path, content=content, headers=headers)


def tiktok(response: Any, code: int) -> dict[str, Any]:
    """TikTok's envelope with ``code``, in an HTTP 200; returns it."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "request_id", "data"}
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert REQUEST_ID.match(body["request_id"])
    assert isinstance(body["data"], dict)
    return body


# ------------------------------------------------------------------ accepted


def test_events_with_the_pixels_key_are_accepted_and_stored_as_server_events(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    r = send(client, pixel["api_key"], api_body(pixel["id"], [purchase("g-1"), purchase("g-2")]))
    body = tiktok(r, 0)
    assert body["message"] == "OK"
    assert body["data"] == {"accepted": 2, "duplicates": 0, "dropped": {}, "rejected": []}
    runtime = runtime_of(client)
    assert wait_for_rows(runtime, 2, pixel["id"]) == 2
    rows = select_dicts(
        runtime.database.client(),
        "SELECT event_id, toString(source) AS source, email_sha256 FROM events"
        " WHERE pixel_id = {p:String} ORDER BY event_id",
        {"p": pixel["id"]},
    )
    email = [sha256(b"shopper@example.com")]
    assert rows == [
        {"event_id": "g-1", "source": "server", "email_sha256": email},
        {"event_id": "g-2", "source": "server", "email_sha256": email},
    ]


def test_event_source_id_may_be_the_tiktok_pixel_code(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    runtime_of(client).management.run(
        "pixel.update", {"id": pixel["id"], "tiktok_pixel_code": "C4GATEWAY2"}
    )
    r = send(client, pixel["api_key"], api_body("C4GATEWAY2", [purchase()]))
    assert tiktok(r, 0)["data"]["accepted"] == 1
    assert wait_for_rows(runtime_of(client), 1, pixel["id"]) == 1


def test_hashed_values_are_kept_raw_ones_hashed_and_test_event_code_kept(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    hashed = purchase("h-1", user={"email": EMAIL_SHA256, "phone": [PHONE_SHA256.upper()]})
    raw = purchase("h-2", user={"email": " ALICE_abc@gmail.com ", "phone": "(+1)2133734253"})
    body = api_body(pixel["id"], [hashed, raw], test_event_code="TEST77")
    tiktok(send(client, pixel["api_key"], body), 0)
    runtime = runtime_of(client)
    assert wait_for_rows(runtime, 2, pixel["id"]) == 2
    rows = select_dicts(
        runtime.database.client(),
        "SELECT email_sha256, phone_sha256, test_event_code FROM events"
        " WHERE pixel_id = {p:String} ORDER BY event_id",
        {"p": pixel["id"]},
    )
    expected = {"email_sha256": [EMAIL_SHA256], "phone_sha256": [PHONE_SHA256],
                "test_event_code": "TEST77"}  # fmt: skip
    assert rows == [expected, expected]


def test_some_events_may_be_rejected_by_index_while_the_rest_are_stored(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    data = [purchase(f"p-{i}") for i in range(5)]
    data[3]["properties"]["contents"][0]["price"] = -5
    data[4]["event_time"] = time.time() + 3600
    body = tiktok(send(client, pixel["api_key"], api_body(pixel["id"], data)), 20001)
    assert body["message"].startswith("Partial success: 2 events rejected; first ")
    assert "data.3.properties.contents.0.price: " in body["message"]
    assert body["data"]["accepted"] == 3
    assert [(x["index"], x["code"], x["field"]) for x in body["data"]["rejected"]] == [
        (3, "invalid_field", "data.3.properties.contents.0.price"),
        (4, "event_in_future", "data.4.event_time"),
    ]
    assert wait_for_rows(runtime_of(client), 3, pixel["id"]) == 3


def test_a_request_whose_events_are_all_invalid_is_40002_naming_the_field(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    data = [{"event": "Purchase", "properties": {"currency": "usd"}}, {"event": ""}]
    body = tiktok(send(client, pixel["api_key"], api_body(pixel["id"], data)), 40002)
    assert body["message"].startswith("data.0.properties.currency: unknown currency 'usd'")
    assert body["data"]["accepted"] == 0
    assert [x["field"] for x in body["data"]["rejected"]] == [
        "data.0.properties.currency",
        "data.1.event",
    ]


def test_a_second_copy_from_the_same_source_is_accepted_and_collapses(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    body = api_body(pixel["id"], [purchase("dup-g")])
    first = tiktok(send(client, pixel["api_key"], body), 0)["data"]
    second = tiktok(send(client, pixel["api_key"], body), 0)["data"]
    assert (first["accepted"], first["duplicates"]) == (1, 0)
    assert (second["accepted"], second["duplicates"]) == (1, 1)
    # The /api/v1/events copy is the same source (server): also a duplicate.
    r = client.post("/api/v1/events", content=orjson.dumps(body),
                    headers={"authorization": f"Bearer {pixel['api_key']}",
                             "content-type": "application/json"})  # fmt: skip
    assert r.json()["duplicates"] == 1


# ------------------------------------------------------------- credentials


@pytest.mark.parametrize(
    ("token", "code"),
    [(None, 40104), ("", 40104), ("   ", 40104), ("pk_wrong", 40105), ("Bearer x", 40105)],
)
def test_a_missing_or_wrong_token_is_4010x_before_the_body_is_read(
    client: TestClient, pixel: dict[str, Any], token: str | None, code: int
) -> None:
    received = metric(client, "pixel_events_received_total", source="server")
    for path in (EVENT_TRACK, PIXEL_TRACK, PIXEL_BATCH):
        for body in (orjson.dumps(api_body(pixel["id"], [purchase()])), b"{not json", b""):
            answer = tiktok(send(client, token, body, path), code)
            assert answer["data"]["error"]["code"] in ("missing_api_key", "invalid_api_key")
    assert metric(client, "pixel_events_received_total", source="server") == received


def test_our_bearer_header_is_not_tiktoks_header(client: TestClient, pixel: dict[str, Any]) -> None:
    r = client.post(EVENT_TRACK, json=api_body(pixel["id"], [purchase()]),
                    headers={"authorization": f"Bearer {pixel['api_key']}"})  # fmt: skip
    tiktok(r, 40104)


def test_the_key_of_another_pixel_or_a_disabled_pixel_is_40001(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    other = add_pixel(runtime_of(client), name="Other shop")
    body = tiktok(send(client, other["api_key"], api_body(pixel["id"], [purchase()])), 40001)
    assert pixel["id"] in body["message"]
    assert body["data"]["error"]["field"] == "event_source_id"
    tiktok(send(client, pixel["api_key"], api_body("C4NOSUCHPIXEL", [purchase()])), 40001)
    v1 = {"pixel_code": pixel["id"], "event": "Purchase"}
    assert (
        tiktok(send(client, other["api_key"], v1, PIXEL_TRACK), 40001)["data"]["error"]["field"]
        == "pixel_code"
    )
    runtime_of(client).management.run("pixel.update", {"id": pixel["id"], "enabled": False})
    tiktok(send(client, pixel["api_key"], api_body(pixel["id"], [purchase()])), 40001)
    assert wait_for_rows(runtime_of(client), 1, pixel["id"], timeout=0.3) == 0


# ------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b"[]", "the body must be a JSON object"),
        (b"null", "the body must be a JSON object"),
        (b"", "the request body is empty"),
        (b'{"event_source_id": "x", "data": [{}]}', "event_source: missing required field"),
        (b'{"event_source": "app", "event_source_id": "x", "data": [{}]}', "event_source: "),
        (b'{"event_source": "web", "event_source_id": "x", "data": []}', "data: "),
        (b'{"event_source": "web", "event_source_id": "", "data": [{}]}', "event_source_id: "),
    ],
)
def test_a_malformed_envelope_is_40002(
    client: TestClient, pixel: dict[str, Any], body: bytes, message: str
) -> None:
    answer = tiktok(send(client, pixel["api_key"], body), 40002)
    assert answer["message"].startswith(message), answer["message"]


def test_more_than_1000_events_is_40002_and_1000_are_taken(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    data = [{"event": "PageView", "event_id": str(i)} for i in range(1001)]
    answer = tiktok(send(client, pixel["api_key"], api_body(pixel["id"], data)), 40002)
    assert answer["message"].startswith("data: 1001 events in one body; at most 1000")
    answer = tiktok(send(client, pixel["api_key"], api_body(pixel["id"], data[:1000])), 0)
    assert answer["data"]["accepted"] == 1000


def test_a_body_over_5_mb_is_40002(client: TestClient, pixel: dict[str, Any]) -> None:
    body = b'{"event_source": "web", "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    answer = tiktok(send(client, pixel["api_key"], body), 40002)
    assert answer["data"]["error"]["code"] == "body_too_large"


def test_rate_limited_requests_are_40100_with_retry_after(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path
) -> None:
    limited = shared_settings(tmp_path_factory, engine_dir, PIXEL_RATE_LIMIT_PIXEL="1",
                              PIXEL_RATE_LIMIT_PIXEL_BURST="3")  # fmt: skip
    with app_client(limited) as client:
        pixel = add_pixel(runtime_of(client))
        data = [purchase(f"r-{i}") for i in range(3)]
        tiktok(send(client, pixel["api_key"], api_body(pixel["id"], data)), 0)
        r = send(client, pixel["api_key"], api_body(pixel["id"], [purchase("r-9")]))
        tiktok(r, 40100)
        assert int(r.headers["retry-after"]) >= 1


def test_a_full_event_log_is_http_503_with_retry_after_and_nothing_acked_is_lost(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path
) -> None:
    small = shared_settings(tmp_path_factory, engine_dir, PIXEL_WAL_MAX_MB="2",
                            PIXEL_WAL_SEGMENT_MB="1")  # fmt: skip
    with app_client(small) as client:
        runtime = runtime_of(client)
        pixel = add_pixel(runtime)
        unblock = block_loader(runtime)  # the log cannot drain: it fills up
        acked: list[str] = []
        refused = None
        for round_ in range(200):
            data = [purchase(f"full-{round_}-{i}", properties={"description": "x" * 400})
                    for i in range(40)]  # fmt: skip
            r = send(client, pixel["api_key"], api_body(pixel["id"], data))
            if r.status_code == 503:
                refused = r
                break
            assert r.json()["code"] == 0
            acked += [e["event_id"] for e in data]
        assert refused is not None, "the budget was never reached"
        body = refused.json()
        assert (body["code"], body["data"]["error"]["code"]) == (50002, "log_full")
        assert int(refused.headers["retry-after"]) >= 1
        unblock()
        assert wait_for_rows(runtime, len(acked), pixel["id"]) == len(acked)


def test_the_v1_2_paths_older_tags_call_work_too(client: TestClient, pixel: dict[str, Any]) -> None:
    body = {"pixel_code": pixel["id"], "event": "ViewContent", "event_id": "v12",
            "timestamp": str(int(time.time() * 1000))}  # fmt: skip
    path = PIXEL_TRACK.replace("v1.3", "v1.2")
    assert tiktok(send(client, pixel["api_key"], body, path), 0)["data"]["accepted"] == 1


def test_unknown_paths_and_methods_are_http_errors_as_at_tiktok(client: TestClient) -> None:
    assert client.post("/open_api/v1.3/event/nope/").status_code == 404
    assert client.get(EVENT_TRACK).status_code == 405


# ----------------------------------------------------------------- 1.0 shape


def test_pixel_track_maps_1_0_fields_onto_the_event(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    when = int(time.time()) - 120
    body = {
        "pixel_code": pixel["id"],
        "event": "ViewContent",
        "event_id": 4711,
        "timestamp": str(when),  # seconds as a string, as some integrations send
        "context": {"ad": {"callback": "E.C.P.v1"}, "ip": "198.51.100.4",
                    "user_agent": "Mozilla/5.0", "user": {"email": "Bob@Example.com "},
                    "page": {"url": "https://shop.example.com/p/1", "referrer": ""}},
        # the older flat form of one product
        "properties": {"content_id": "SKU-9", "content_name": "Mug", "price": 12.5,
                       "quantity": 1, "content_type": "product", "value": 12.5,
                       "currency": "EUR", "status": "in_stock"},
    }  # fmt: skip
    tiktok(send(client, pixel["api_key"], body, PIXEL_TRACK), 0)
    runtime = runtime_of(client)
    assert wait_for_rows(runtime, 1, pixel["id"]) == 1
    (row,) = select_dicts(
        runtime.database.client(),
        "SELECT event_id, toUnixTimestamp(event_time) AS t, ttclid, ip, user_agent,"
        " email_sha256, page_url, contents.content_id AS ids, contents.name AS names,"
        " content_type, currency, properties FROM events WHERE pixel_id = {p:String}",
        {"p": pixel["id"]},
    )
    assert row == {
        "event_id": "4711",
        "t": when,
        "ttclid": "E.C.P.v1",
        "ip": "198.51.100.4",
        "user_agent": "Mozilla/5.0",
        "email_sha256": [sha256(b"bob@example.com")],  # trimmed, lowercased, hashed
        "page_url": "https://shop.example.com/p/1",
        "ids": ["SKU-9"],
        "names": ["Mug"],
        "content_type": "product",
        "currency": "EUR",
        "properties": '{"status":"in_stock"}',
    }


def test_pixel_batch_rejects_items_one_by_one_with_1_0_field_paths(
    client: TestClient, pixel: dict[str, Any]
) -> None:
    batch = [
        {"type": "track", "event": "AddToCart", "event_id": "b-0"},
        "not an event",
        {"type": "identify", "event": "Lead"},
        {"event": "Lead", "context": {"ad": {"callback": 5}}},
        {"event": "Lead", "timestamp": "yesterday"},
        {"event": "Lead", "event_id": "b-5", "context": {"user": {"phone_number": ["x"] * 11}}},
    ]
    body = {"pixel_code": pixel["id"], "batch": batch}
    answer = tiktok(send(client, pixel["api_key"], body, PIXEL_BATCH), 20001)
    assert answer["data"]["accepted"] == 1
    assert [(x["index"], x["field"]) for x in answer["data"]["rejected"]] == [
        (1, "batch.1"),
        (2, "batch.2.type"),
        (3, "batch.3.context.ad.callback"),
        (4, "batch.4.timestamp"),
        (5, "batch.5.context.user.phone_number"),
    ]


def test_the_1_0_mapping_moves_fields_and_keeps_values() -> None:
    body = orjson.dumps({
        "pixel_code": "C4X", "event": "Purchase", "event_id": "o-1",
        "timestamp": "2026-01-01T10:00:00+02:00", "test_event_code": "T1",
        "context": {"ad": {"callback": "clk"}, "page": {"url": "https://s.example/"},
                    "user": {"email": "e", "phone_number": "p", "external_id": "x", "ttp": "t"},
                    "ip": "1.2.3.4", "user_agent": "UA"},
        "properties": {"contents": [{"content_id": 7, "content_type": "product_group"}],
                       "value": 1.10},
        "limited_data_use": True,
    })  # fmt: skip
    sent = decode_v1_track(body)
    assert (sent.pixel_code, sent.test_event_code, sent.positions, sent.failed) == (
        "C4X", "T1", [0], [])  # fmt: skip
    assert msgspec.json.decode(sent.events[0]) == {
        "event": "Purchase", "event_id": "o-1", "event_time": "2026-01-01T10:00:00+02:00",
        "user": {"email": "e", "phone": "p", "external_id": "x", "ttp": "t", "ttclid": "clk",
                 "ip": "1.2.3.4", "user_agent": "UA"},
        "properties": {"contents": [{"content_id": 7, "content_type": "product_group"}],
                       "value": 1.10, "content_type": "product_group"},
        "page": {"url": "https://s.example/"},
        "limited_data_use": True,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("timestamp", "event_time"),
    [
        ('"2026-01-01T10:00:00Z"', '"2026-01-01T10:00:00+00:00"'),
        ('"2026-01-01T10:00:00"', '"2026-01-01T10:00:00+00:00"'),  # no zone: UTC
        ('"2026-01-01T10:00:00.250-05:00"', '"2026-01-01T10:00:00.250000-05:00"'),
        ("1767261600", "1767261600"),
        ('"1767261600"', "1767261600"),
        ('"1767261600.5"', "1767261600.5"),
        ('"1767261600123"', "1767261600.123"),  # milliseconds, as Stape's sGTM tag sends
        ("1767261600000", "1767261600"),
        ('"soon"', '"soon"'),  # passed on: the event decoder refuses it
        ("true", "true"),
    ],
)
def test_1_0_timestamps(timestamp: str, event_time: str) -> None:
    body = b'{"pixel_code": "C4X", "batch": [{"event": "Lead", "timestamp": %s}]}' % (
        timestamp.encode()
    )
    (event,) = decode_v1_batch(body).events
    assert orjson.loads(event)["event_time"] == orjson.loads(event_time)


@pytest.mark.parametrize(
    ("v2", "prefix", "v1"),
    [
        ("data[0].user.ttclid", "", "context.ad.callback"),
        ("data[0].user.phone[3]", "batch[2]", "batch[2].context.user.phone_number[3]"),
        ("data[4].user.email", "batch[9]", "batch[9].context.user.email"),
        ("data[0].user.ip", "", "context.ip"),
        ("data[0].user.user_agent", "", "context.user_agent"),
        ("data[0].page.url", "", "context.page.url"),
        ("data[0].event_time", "batch[1]", "batch[1].timestamp"),
        ("data[0].properties.contents[0].price", "", "properties.contents[0].price"),
        ("data[0]", "batch[5]", "batch[5]"),
    ],
)
def test_field_paths_are_reported_as_sent(v2: str, prefix: str, v1: str) -> None:
    assert v1_field(v2, prefix) == v1
    assert tiktok_field(v1) == v1.replace("[", ".").replace("]", "")


# ------------------------------------------------------------------- OpenAPI


def test_openapi_json_documents_the_gateway(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    jsonschema_rs.validator_for(OPENAPI_31).validate(doc)
    for path in (EVENT_TRACK, PIXEL_TRACK, PIXEL_BATCH):
        operation = doc["paths"][path]["post"]
        assert operation["security"] == [{"accessToken": []}]
        assert set(operation["responses"]) == {"200", "503"}
    scheme = doc["components"]["securitySchemes"]["accessToken"]
    assert scheme == {"type": "apiKey", "in": "header", "name": "Access-Token"}
    assert "/api/v1/events" in doc["paths"]  # ours is still there
