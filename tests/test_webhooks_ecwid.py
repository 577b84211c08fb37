"""Ecwid order webhooks end to end: the signature over "{eventCreated}.{eventId}"
is checked, the order is fetched in the background from the (stand-in) REST API
with the store's token, and becomes ``purchase:<vendorOrderNumber>``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.ingest_helpers import shared_settings
from tests.standins.ecwid_api import EcwidApi
from tests.standins.ecwid_api import running as ecwid_running
from tests.webhook_helpers import (
    STORE_TOKEN,
    ago,
    copies,
    ecwid_event,
    ecwid_headers,
    ecwid_order,
    encode,
    log_ends,
    metric,
    post_browser_purchase,
    post_webhook,
    runtime_of,
    wait_for,
    wait_merged,
    webhook_app,
)
from tests.webhook_helpers import add_shop as _add_shop

ORDER_ID = "XJ12H"


@pytest.fixture(scope="module")
def api() -> Iterator[EcwidApi]:
    with ecwid_running(STORE_TOKEN, store_id="1003", currency="USD") as a:
        yield a


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[TestClient]:
    with webhook_app(shared_settings(tmp_path_factory, engine_dir)) as c:
        yield c


@pytest.fixture
def shop(client: TestClient, api: EcwidApi) -> dict[str, Any]:
    api.reset()
    return _add_shop(client, "ecwid", store_api_base=api.base_url, store_api_token=STORE_TOKEN)


def send(client: TestClient, pixel_id: str, event: dict[str, Any]) -> Any:
    return post_webhook(client, "ecwid", pixel_id, encode(event), ecwid_headers(event))


def fetched(client: TestClient) -> float:
    return metric(client, "pixel_webhook_fetches_total", platform="ecwid", result="ok")


@pytest.mark.parametrize("webhook_first", [True, False], ids=["webhook-first", "browser-first"])
def test_order_and_browser_copy_count_once(
    client: TestClient, api: EcwidApi, shop: dict[str, Any], webhook_first: bool
) -> None:
    api.add_order(ecwid_order())
    steps = [
        lambda: send(client, shop["id"], ecwid_event(ORDER_ID)),
        lambda: post_browser_purchase(client, shop["id"], ORDER_ID),
    ]
    answers = [step() for step in (steps if webhook_first else steps[::-1])]
    assert sorted(a.status_code for a in answers) == [200, 202]
    queued = next(a for a in answers if a.status_code == 200).json()
    assert (queued["status"], queued["order_id"]) == ("queued", ORDER_ID)
    (row,) = wait_merged(
        client, shop["id"], lambda rows: len(rows) == 1 and len(rows[0]["sources"]) == 2
    )
    assert row["event_id"] == f"purchase:{ORDER_ID}" and row["sources"] == ["browser", "webhook"]
    # the currency comes from the store profile: Ecwid orders have none
    assert (float(row["value"]), row["currency"], row["order_id"]) == (35.5, "USD", ORDER_ID)
    assert row["contents.content_id"] == ["00004-RED"]
    assert row["contents.item_group_id"] == ["561238129"]
    assert (row["contents.quantity"], [float(p) for p in row["contents.price"]]) == ([2], [15.0])
    assert (row["anonymous_id"], row["ttclid"]) == ("anon-42", "E.C.P.tt-click-1")
    assert len(row["email_sha256"]) == 1 and len(row["phone_sha256"]) == 1


def test_the_order_is_fetched_with_the_stores_token(
    client: TestClient, api: EcwidApi, shop: dict[str, Any]
) -> None:
    api.add_order(ecwid_order())
    send(client, shop["id"], ecwid_event(ORDER_ID))
    wait_for(lambda: len(copies(client, shop["id"])) == 1)
    assert f"/api/v3/1003/orders/{ORDER_ID}" in api.requests


def test_the_event_time_is_when_the_order_was_created(
    client: TestClient, api: EcwidApi, shop: dict[str, Any]
) -> None:
    created = ago(240)
    api.add_order(ecwid_order(created=created))
    send(client, shop["id"], ecwid_event(ORDER_ID))
    (row,) = wait_merged(client, shop["id"], lambda rows: len(rows) == 1)
    assert row["event_time"].timestamp() == pytest.approx(int(created.timestamp()), abs=1)


def test_failing_fetches_are_retried_until_the_order_is_stored(
    client: TestClient, api: EcwidApi, shop: dict[str, Any]
) -> None:
    api.add_order(ecwid_order())
    api.inject(2, status=503)  # two answers are errors, then the API is fine
    retries = metric(client, "pixel_webhook_fetches_total", platform="ecwid", result="retry")
    assert send(client, shop["id"], ecwid_event(ORDER_ID)).json()["status"] == "queued"
    wait_for(lambda: len(copies(client, shop["id"])) == 1)
    after = metric(client, "pixel_webhook_fetches_total", platform="ecwid", result="retry")
    assert after - retries == 2
    assert metric(client, "pixel_webhook_fetch_errors_total", platform="ecwid",
                  reason="http_error") >= 2  # fmt: skip


def test_a_slow_api_times_out_and_is_retried(
    client: TestClient, api: EcwidApi, shop: dict[str, Any]
) -> None:
    api.add_order(ecwid_order())
    api.inject(1, delay=1.5)  # longer than the test policy's 0.5 s timeout
    send(client, shop["id"], ecwid_event(ORDER_ID))
    wait_for(lambda: len(copies(client, shop["id"])) == 1)
    assert metric(client, "pixel_webhook_fetch_errors_total", platform="ecwid",
                  reason="timeout") >= 1  # fmt: skip


def test_an_order_not_visible_yet_is_fetched_again(
    client: TestClient, api: EcwidApi, shop: dict[str, Any]
) -> None:
    send(client, shop["id"], ecwid_event(ORDER_ID))  # the API does not know the order yet
    wait_for(lambda: api.order_requests(ORDER_ID) >= 1)
    api.add_order(ecwid_order())
    wait_for(lambda: len(copies(client, shop["id"])) == 1)


def test_an_incomplete_order_stores_nothing(
    client: TestClient, api: EcwidApi, shop: dict[str, Any]
) -> None:
    api.add_order(ecwid_order(paymentStatus="INCOMPLETE"))
    before = runtime_of(client).wal.write_end  # type: ignore[union-attr]
    done = fetched(client)
    send(client, shop["id"], ecwid_event(ORDER_ID))
    wait_for(lambda: fetched(client) > done)
    assert runtime_of(client).wal.write_end == before  # type: ignore[union-attr]


def test_awaiting_payment_counts_and_a_refund_nets_out(
    client: TestClient, api: EcwidApi, shop: dict[str, Any]
) -> None:
    api.add_order(ecwid_order(paymentStatus="AWAITING_PAYMENT"))
    send(client, shop["id"], ecwid_event(ORDER_ID))
    wait_for(lambda: len(copies(client, shop["id"])) == 1)
    refund_at = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
    api.add_order(ecwid_order(paymentStatus="PARTIALLY_REFUNDED", refundedAmount=15,
                              refunds=[{"date": refund_at, "source": "CP", "reason": "Too small",
                                        "amount": 15}]))  # fmt: skip
    send(client, shop["id"], ecwid_event(ORDER_ID, event_type="order.updated"))
    rows = wait_merged(client, shop["id"], lambda rows: len(rows) == 2)
    assert {r["event_id"]: float(r["value"]) for r in rows} == {
        f"purchase:{ORDER_ID}": 35.5,
        f"refund:{ORDER_ID}:1": -15.0,
    }


def test_other_event_types_are_acknowledged_and_ignored(
    client: TestClient, shop: dict[str, Any]
) -> None:
    before = log_ends(client)
    answer = send(client, shop["id"], ecwid_event(ORDER_ID, event_type="product.updated"))
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    assert log_ends(client) == before


def test_a_signature_for_another_event_is_refused(client: TestClient, shop: dict[str, Any]) -> None:
    event = ecwid_event(ORDER_ID)
    headers = ecwid_headers(event)
    event["eventId"] = "0d4f6c55-ffff-4b1b-9d1c-2a6c1e0f9a77"  # a captured signature, reused
    before = log_ends(client)
    answer = post_webhook(client, "ecwid", shop["id"], encode(event), headers)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "bad_signature"
    assert log_ends(client) == before


def test_ids_that_do_not_fit_a_url_are_refused(client: TestClient, shop: dict[str, Any]) -> None:
    answer = send(client, shop["id"], ecwid_event("../../profile"))
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "data.orderId"
