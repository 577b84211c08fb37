"""TikTok's own Python SDK (``tiktok-business-api-sdk``) against a running
server: an integration built on it switches to us by changing the SDK's host.

The SDK's ``EventCallbackApi`` calls the Events API 1.0 paths
(``/open_api/v1.3/pixel/track/`` and ``/pixel/batch/``) with an
``Access-Token`` header. It reads TikTok's envelope from an HTTP 200 and
returns ``{"data", "request_id"}`` for code 0, raises ``TiktokSDKError``
("Error Code: 40105, ...") for any other code, and raises ``ApiException``
for an HTTP status outside 2xx — which TikTok does not answer for a bad
token or a bad event, so neither does the gateway.

The server is the real app on uvicorn in a thread, on 127.0.0.1, with the
embedded ClickHouse.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from business_api_client.api.event_callback_api import EventCallbackApi
from business_api_client.api_client import ApiClient
from business_api_client.configuration import Configuration
from business_api_client.models import (
    OpenApiv13pixelbatchBatch,
    PixelBatchBody,
    PixelContent,
    PixelContext,
    PixelContextAd,
    PixelContextPage,
    PixelContextUser,
    PixelProperties,
    PixelTrackBody,
)
from business_api_client.rest import ApiException
from business_api_client.tiktok_business.tiktok_exceptions import TiktokSDKError

from pixel_server.app import Runtime, create_app
from tests.browser.harness import ThreadedServer
from tests.ingest_helpers import add_pixel, select_dicts, shared_settings, wait_for_rows

CODE = "C4SDKGATEWAY1"
EMAIL_SHA = (
    "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f"  # " ALICE_abc@gmail.com "
)
PHONE_SHA = "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd"  # "(+1)2133734253"
EXTERNAL_SHA = "80fba0ae1c48e3978e43e4efc365e14e12ea0c830ba8ba5b9a2dafc7e3f2ab8b"  # "user_123"
PAGE = "https://shop.example.com/p/sweatshirt?ttclid=E.C.P.sdk"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path
) -> Iterator[tuple[Runtime, str]]:
    app = create_app(shared_settings(tmp_path_factory, engine_dir))
    with ThreadedServer(app, lifespan="on") as running:
        yield app.state.runtime, running.origin


@pytest.fixture
def pixel(server: tuple[Runtime, str]) -> dict[str, Any]:
    runtime, _ = server
    created = add_pixel(runtime)
    code = CODE + created["id"][-6:].upper().replace("_", "0")  # one TikTok code per test
    runtime.management.run("pixel.update", {"id": created["id"], "tiktok_pixel_code": code})
    return {**created, "code": code}


def sdk(server: tuple[Runtime, str]) -> EventCallbackApi:
    """TikTok's client with one change: the host."""
    config = Configuration()
    config.host = server[1]
    return EventCallbackApi(ApiClient(config))


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def context(**user: str) -> PixelContext:
    return PixelContext(
        ad=PixelContextAd(callback="E.C.P.sdk"),
        page=PixelContextPage(url=PAGE, referrer="https://www.tiktok.com/"),
        user=PixelContextUser(**user),
        ip="203.0.113.7",
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)",
    )


def properties() -> PixelProperties:
    return PixelProperties(
        contents=[
            PixelContent(content_id="SKU-1-RED", content_name="Sweatshirt",
                         content_category="Apparel", content_type="product", price=8.0,
                         quantity=2),
        ],
        currency="USD",
        value=16.0,
        description="spring order",
    )  # fmt: skip


_COLUMNS = """event, received_event, event_id, toString(source) AS source,
    toUnixTimestamp64Milli(event_time) AS event_time_ms, ttclid, ttp, ip, user_agent,
    email_sha256, phone_sha256, external_id_sha256, page_url, page_referrer,
    contents.content_id AS content_id, contents.quantity AS quantity, contents.price AS price,
    content_type, value, currency, description, test_event_code"""


def stored(runtime: Runtime, pixel_id: str) -> list[dict[str, Any]]:
    return select_dicts(
        runtime.database.client(),
        f"SELECT {_COLUMNS} FROM events WHERE pixel_id = {{p:String}} ORDER BY event_id",
        {"p": pixel_id},
    )


def test_pixel_track_is_accepted_and_its_10_fields_are_mapped(
    server: tuple[Runtime, str], pixel: dict[str, Any]
) -> None:
    when = int(time.time()) - 600
    answer = sdk(server).pixel_track(
        pixel["api_key"],
        body=PixelTrackBody(
            pixel_code=pixel["code"],
            event="CompletePayment",
            event_id="sdk-order-1",
            timestamp=iso(when),
            context=context(email=EMAIL_SHA, phone_number=PHONE_SHA,
                            external_id=EXTERNAL_SHA, ttp="ttp.1700000000.sdk"),
            properties=properties(),
        ),
    )  # fmt: skip
    assert answer["request_id"]
    assert answer["data"]["accepted"] == 1
    runtime = server[0]
    assert wait_for_rows(runtime, 1, pixel["id"]) == 1
    assert stored(runtime, pixel["id"]) == [
        {
            "event": "Purchase",
            "received_event": "CompletePayment",
            "event_id": "sdk-order-1",
            "source": "server",
            "event_time_ms": when * 1000,  # timestamp -> event_time
            "ttclid": "E.C.P.sdk",  # context.ad.callback
            "ttp": "ttp.1700000000.sdk",
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)",
            "email_sha256": [EMAIL_SHA],  # already hashed: kept as given
            "phone_sha256": [PHONE_SHA],
            "external_id_sha256": [EXTERNAL_SHA],
            "page_url": PAGE,
            "page_referrer": "https://www.tiktok.com/",
            "content_id": ["SKU-1-RED"],
            "quantity": [2],
            "price": [Decimal("8")],
            "content_type": "product",  # 1.0 puts it on each content line
            "value": Decimal("16"),
            "currency": "USD",
            "description": "spring order",
            "test_event_code": "",
        }
    ]


def test_pixel_batch_is_accepted_once_and_raw_pii_is_hashed_once(
    server: tuple[Runtime, str], pixel: dict[str, Any]
) -> None:
    now = time.time()
    batch = [
        OpenApiv13pixelbatchBatch(
            type="track",
            event=name,
            event_id=f"sdk-batch-{i}",
            timestamp=iso(now - 60 * (i + 1)),
            context=context(email=" ALICE_abc@gmail.com ", phone_number="(+1)2133734253",
                            external_id="user_123"),
            properties=properties(),
        )
        for i, name in enumerate(["ViewContent", "AddToCart", "PlaceAnOrder"])
    ]  # fmt: skip
    body = PixelBatchBody(pixel_code=pixel["id"], batch=batch)  # our own pixel id works too
    api = sdk(server)
    assert api.pixel_batch(pixel["api_key"], body=body)["data"]["accepted"] == 3
    again = api.pixel_batch(pixel["api_key"], body=body)  # an integration's retry: code 0
    assert again["data"]["duplicates"] == 3
    runtime = server[0]
    assert wait_for_rows(runtime, 3, pixel["id"]) == 3
    rows = stored(runtime, pixel["id"])
    assert [(r["event"], r["event_id"]) for r in rows] == [
        ("ViewContent", "sdk-batch-0"),
        ("AddToCart", "sdk-batch-1"),
        ("PlaceAnOrder", "sdk-batch-2"),
    ]
    for row in rows:
        assert row["email_sha256"] == [EMAIL_SHA]
        assert row["phone_sha256"] == [PHONE_SHA]
        assert row["external_id_sha256"] == [EXTERNAL_SHA]
        assert row["ttclid"] == "E.C.P.sdk"
    time.sleep(0.3)  # a second copy, had it been let through, would be loaded by now
    assert wait_for_rows(runtime, 3, pixel["id"]) == 3


def refused(call: Any, code: int) -> str:
    """The SDK raised TikTok's error for ``code`` (not an HTTP error): its text."""
    with pytest.raises(TiktokSDKError) as raised:
        call()
    assert not isinstance(raised.value, ApiException)
    text = str(raised.value)
    assert text.startswith(f"Error Code: {code}, message: "), text
    return text


def test_a_wrong_token_raises_tiktoks_40105_as_tiktok_does(
    server: tuple[Runtime, str], pixel: dict[str, Any]
) -> None:
    body = PixelTrackBody(pixel_code=pixel["code"], event="Purchase", event_id="sdk-bad")
    api = sdk(server)
    refused(lambda: api.pixel_track("pk_not_a_key", body=body), 40105)
    assert api.api_client.last_response.status == 200
    refused(lambda: api.pixel_track(" ", body=body), 40104)  # TikTok's "empty token"
    batch = PixelBatchBody(pixel_code=pixel["code"], batch=[OpenApiv13pixelbatchBatch(
        type="track", event="Purchase", event_id="sdk-bad")])  # fmt: skip
    refused(lambda: api.pixel_batch("pk_not_a_key", body=batch), 40105)
    assert wait_for_rows(server[0], 1, pixel["id"], timeout=0.3) == 0


def test_another_pixels_key_is_code_40001_no_permission(
    server: tuple[Runtime, str], pixel: dict[str, Any]
) -> None:
    other = add_pixel(server[0], name="Another shop")
    body = PixelTrackBody(pixel_code=pixel["code"], event="Purchase", event_id="sdk-other")
    api = sdk(server)
    assert pixel["code"] in refused(lambda: api.pixel_track(other["api_key"], body=body), 40001)
    assert wait_for_rows(server[0], 1, pixel["id"], timeout=0.3) == 0


def test_an_invalid_event_is_code_40002_naming_the_1_0_field(
    server: tuple[Runtime, str], pixel: dict[str, Any]
) -> None:
    body = PixelTrackBody(pixel_code=pixel["code"], event="Purchase", event_id="sdk-future",
                          timestamp=iso(time.time() + 86_400))  # fmt: skip
    api = sdk(server)
    text = refused(lambda: api.pixel_track(pixel["api_key"], body=body), 40002)
    assert "message: timestamp: " in text


def test_test_event_code_is_kept_for_forwarding(
    server: tuple[Runtime, str], pixel: dict[str, Any]
) -> None:
    # The SDK's model has no test_event_code; integrations send a dict body for it.
    body = {"pixel_code": pixel["code"], "event": "Lead", "event_id": "sdk-test-1",
            "test_event_code": "TEST4242", "timestamp": iso(time.time() - 5)}  # fmt: skip
    assert sdk(server).pixel_track(pixel["api_key"], body=body)["data"]["accepted"] == 1
    runtime = server[0]
    assert wait_for_rows(runtime, 1, pixel["id"]) == 1
    assert stored(runtime, pixel["id"])[0]["test_event_code"] == "TEST4242"


def test_a_timestamp_without_a_zone_is_utc(
    server: tuple[Runtime, str], pixel: dict[str, Any]
) -> None:
    when = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0, tzinfo=None)
    body = PixelTrackBody(pixel_code=pixel["code"], event="Search", event_id="sdk-naive",
                          timestamp=when.isoformat())  # fmt: skip
    assert sdk(server).pixel_track(pixel["api_key"], body=body)["data"]["accepted"] == 1
    runtime = server[0]
    assert wait_for_rows(runtime, 1, pixel["id"]) == 1
    row = stored(runtime, pixel["id"])[0]
    assert row["event_time_ms"] == round(when.replace(tzinfo=UTC).timestamp() * 1000)
