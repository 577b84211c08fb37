"""What happens after the gateway: TikTok gets what it would have got from
the integration directly, once, and a browser copy of the same event merges
with the gateway's copy into one event in the reports.

Golden inputs are bodies an integration sends to TikTok (already-hashed user
fields, as TikTok requires); the stand-in checks each forwarded request as
strictly as TikTok and records what it accepted.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pixel_server.app import create_app
from pixel_server.ingest.gateway import EVENT_TRACK, PIXEL_BATCH, PIXEL_TRACK
from tests.ingest_helpers import runtime_of, shared_settings
from tests.standins.tiktok_api import TikTokStandIn, validate_body
from tests.test_forwarder import FAST, wait_for
from tests.webhook_helpers import merged

ORIGIN = "https://shop.example.com"
CODE, TOKEN = "C4GATEWAYFWD", "tt-gateway-token"
EMAIL_SHA = "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f"
PHONE_SHA = "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd"
EXTERNAL_ID_SHA = "80fba0ae1c48e3978e43e4efc365e14e12ea0c830ba8ba5b9a2dafc7e3f2ab8b"
NOW = int(time.time()) - 120
PAGE = {"url": f"{ORIGIN}/p/sweatshirt?ttclid=E.C.P.gw", "referrer": f"{ORIGIN}/cart"}
PROPERTIES = {
    "contents": [{"content_id": "SKU-1077218-RED-M", "content_name": "Sweatshirt",
                  "content_category": "Apparel", "brand": "Acme", "price": 8.0, "quantity": 2}],
    "content_type": "product", "currency": "USD", "value": 16.0, "order_id": "10045",
}  # fmt: skip


def direct_event(name: str, event_id: str) -> dict[str, Any]:
    """An event as an integration sends it to TikTok's 2.0 API."""
    return {
        "event": name,
        "event_time": NOW,
        "event_id": event_id,
        "user": {"email": EMAIL_SHA, "phone": PHONE_SHA, "external_id": EXTERNAL_ID_SHA,
                 "ttclid": "E.C.P.gw", "ttp": "ttp.1700000000.gw", "ip": "13.57.97.131",
                 "user_agent": "Mozilla/5.0 (iPhone)", "locale": "en-US"},
        "properties": copy.deepcopy(PROPERTIES),
        "page": PAGE,
        "limited_data_use": False,
    }  # fmt: skip


def v1_event(name: str, event_id: str) -> dict[str, Any]:
    """The same event in the 1.0 form (TikTok's SDK, RudderStack)."""
    lines = [{**line, "content_type": "product"} for line in PROPERTIES["contents"]]
    return {
        "type": "track",
        "event": name,
        "event_id": event_id,
        "timestamp": datetime.fromtimestamp(NOW, UTC).isoformat(),
        "context": {"ad": {"callback": "E.C.P.gw"}, "page": PAGE, "ip": "13.57.97.131",
                    "user_agent": "Mozilla/5.0 (iPhone)",
                    "user": {"email": EMAIL_SHA, "phone_number": PHONE_SHA,
                             "external_id": EXTERNAL_ID_SHA, "ttp": "ttp.1700000000.gw",
                             "locale": "en-US"}},
        "properties": {"contents": lines, "currency": "USD", "value": 16.0, "order_id": "10045"},
    }  # fmt: skip


V2_NAMES = ["Purchase", "AddToCart", "ViewContent", "InitiateCheckout"]
V1_NAMES = ["Purchase", "AddToCart", "Search"]


@pytest.fixture(scope="module")
def api() -> Iterator[TikTokStandIn]:
    with TikTokStandIn({TOKEN: {CODE}}) as standin:
        yield standin


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path, api: TikTokStandIn
) -> Iterator[TestClient]:
    app = create_app(shared_settings(tmp_path_factory, engine_dir))
    app.state.runtime.forwarder_options = dict(FAST)
    with TestClient(app, client=("203.0.113.9", 50000)) as c:
        yield c


@pytest.fixture(scope="module")
def pixel(client: TestClient, api: TikTokStandIn) -> dict[str, Any]:
    created: dict[str, Any] = runtime_of(client).management.run("pixel.add", {
        "name": "Gateway", "origins": [ORIGIN], "platform": "html", "tiktok_pixel_code": CODE,
        "tiktok_access_token": TOKEN, "tiktok_api_base": api.base_url,
    })  # fmt: skip
    return created


@pytest.fixture(scope="module")
def received(
    client: TestClient, pixel: dict[str, Any], api: TikTokStandIn
) -> dict[str, dict[str, Any]]:
    """Golden inputs through all three paths; what TikTok received, by event_id."""
    headers = {"access-token": pixel["api_key"]}
    body = {"event_source": "web", "event_source_id": CODE, "test_event_code": "TEST2024",
            "data": [direct_event(n, f"v2-{n}") for n in V2_NAMES]}  # fmt: skip
    validate_body(copy.deepcopy(body), time.time())  # TikTok itself takes this body
    assert client.post(EVENT_TRACK, json=body, headers=headers).json()["code"] == 0
    batch = {"pixel_code": CODE, "batch": [v1_event(n, f"v1-{n}") for n in V1_NAMES]}
    assert client.post(PIXEL_BATCH, json=batch, headers=headers).json()["code"] == 0
    track = {"pixel_code": CODE, **v1_event("Lead", "v1-track")}
    del track["type"]
    assert client.post(PIXEL_TRACK, json=track, headers=headers).json()["code"] == 0
    expected = len(V2_NAMES) + len(V1_NAMES) + 1
    assert wait_for(lambda: len(api.events(CODE)) >= expected)
    events = api.events(CODE)
    assert len(events) == expected, "an event was sent twice"
    return {e["event_id"]: e for e in events}


@pytest.mark.parametrize("name", V2_NAMES)
def test_a_2_0_event_reaches_tiktok_exactly_as_sent(
    name: str, received: dict[str, dict[str, Any]]
) -> None:
    assert received[f"v2-{name}"] == direct_event(name, f"v2-{name}")


@pytest.mark.parametrize("name", [*V1_NAMES, "Lead"])
def test_a_1_0_event_reaches_tiktok_as_the_2_0_event_it_means(
    name: str, received: dict[str, dict[str, Any]]
) -> None:
    event_id = "v1-track" if name == "Lead" else f"v1-{name}"
    assert received[event_id] == direct_event(name, event_id)


def test_test_event_code_is_passed_on_only_with_its_events(
    api: TikTokStandIn, received: dict[str, dict[str, Any]]
) -> None:
    codes = {x.test_event_code for x in api.exchanges if x.pixel_code == CODE
             for event_id in x.event_ids if event_id.startswith("v2-")}  # fmt: skip
    assert codes == {"TEST2024"}
    others = {x.test_event_code for x in api.exchanges if x.pixel_code == CODE
              for event_id in x.event_ids if event_id.startswith("v1-")}  # fmt: skip
    assert others == {None}
    assert all(x.token == TOKEN and x.code == 0 for x in api.exchanges if x.pixel_code == CODE)


def test_a_browser_copy_and_the_gateway_copy_merge_into_one_event(
    client: TestClient, pixel: dict[str, Any], received: dict[str, dict[str, Any]]
) -> None:
    browser = {
        "event": "Purchase", "event_id": "order-merge-1", "event_time": NOW,
        "user": {"anonymous_id": "anon-merge"},
        "page": {"url": f"{ORIGIN}/thanks?ttclid=E.C.P.browser", "referrer": f"{ORIGIN}/cart"},
        "properties": {"value": 1.0, "currency": "USD"},  # the browser's guess
    }  # fmt: skip
    headers = {"origin": ORIGIN, "user-agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    r = client.post(f"/collect?p={pixel['id']}", json=browser, headers=headers)
    assert r.status_code == 202, r.text
    server = {**direct_event("Purchase", "order-merge-1"), "user": {"email": EMAIL_SHA}}
    body = {"event_source": "web", "event_source_id": pixel["id"], "data": [server]}
    answer = client.post(EVENT_TRACK, json=body, headers={"access-token": pixel["api_key"]})
    assert answer.json()["data"] == {"accepted": 1, "duplicates": 0, "dropped": {},
                                     "rejected": []}  # fmt: skip
    rows = [r for r in merged(client, pixel["id"]) if r["event_id"] == "order-merge-1"]
    assert len(rows) == 1
    (row,) = rows
    assert row["copies"] == 2
    assert row["sources"] == ["browser", "server"]
    assert float(row["value"]) == 16.0  # order data from the server copy
    assert row["anonymous_id"] == "anon-merge"  # identity from the browser copy
    assert row["ttclid"] == "E.C.P.browser"
