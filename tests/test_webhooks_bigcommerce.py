"""BigCommerce order webhooks end to end: the custom secret header authenticates
the callback, the order (and its lines and refunds) is fetched in the background
from the (stand-in) REST API, and only placed orders count."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.ingest_helpers import shared_settings
from tests.standins.bigcommerce_api import BigCommerceApi
from tests.standins.bigcommerce_api import running as bigcommerce_running
from tests.webhook_helpers import (
    STORE_TOKEN,
    ago,
    bigcommerce_callback,
    bigcommerce_headers,
    bigcommerce_order,
    copies,
    encode,
    fixture,
    metric,
    post_browser_purchase,
    post_webhook,
    runtime_of,
    wait_for,
    wait_merged,
    webhook_app,
)
from tests.webhook_helpers import add_shop as _add_shop

ORDER_ID = "250"


@pytest.fixture(scope="module")
def api() -> Iterator[BigCommerceApi]:
    with bigcommerce_running(STORE_TOKEN, store_hash="abc123xyz") as a:
        yield a


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[TestClient]:
    with webhook_app(shared_settings(tmp_path_factory, engine_dir)) as c:
        yield c


@pytest.fixture
def shop(client: TestClient, api: BigCommerceApi) -> dict[str, Any]:
    api.reset()
    return _add_shop(
        client, "bigcommerce", store_api_base=api.base_url, store_api_token=STORE_TOKEN
    )


def add_order(
    api: BigCommerceApi, refunds: list[dict[str, Any]] | None = None, **changes: Any
) -> None:
    api.add_order(bigcommerce_order(**changes), fixture("bigcommerce_order_250_products.json"),
                  refunds)  # fmt: skip


def send(client: TestClient, pixel_id: str, scope: str = "store/order/created") -> Any:
    body = encode(bigcommerce_callback(int(ORDER_ID), scope=scope))
    return post_webhook(client, "bigcommerce", pixel_id, body, bigcommerce_headers())


def fetched(client: TestClient, result: str = "ok") -> float:
    return metric(client, "pixel_webhook_fetches_total", platform="bigcommerce", result=result)


@pytest.mark.parametrize("webhook_first", [True, False], ids=["webhook-first", "browser-first"])
def test_order_and_browser_copy_count_once(
    client: TestClient, api: BigCommerceApi, shop: dict[str, Any], webhook_first: bool
) -> None:
    add_order(api)
    steps = [
        lambda: send(client, shop["id"]),
        lambda: post_browser_purchase(client, shop["id"], ORDER_ID),
    ]
    answers = [step() for step in (steps if webhook_first else steps[::-1])]
    assert sorted(a.status_code for a in answers) == [200, 202]
    (row,) = wait_merged(
        client, shop["id"], lambda rows: len(rows) == 1 and len(rows[0]["sources"]) == 2
    )
    assert row["event_id"] == f"purchase:{ORDER_ID}" and row["sources"] == ["browser", "webhook"]
    assert (float(row["value"]), row["currency"], row["order_id"]) == (21.5, "USD", ORDER_ID)
    assert row["contents.content_id"] == ["SLCTBS"]
    assert row["contents.item_group_id"] == ["77"]
    assert row["contents.name"] == ["[Sample] Fog Linen Chambray Towel - Beige Stripe"]
    assert (row["contents.quantity"], [float(p) for p in row["contents.price"]]) == ([2], [10.75])
    assert (row["anonymous_id"], row["ttclid"]) == ("anon-42", "E.C.P.tt-click-1")
    assert len(row["email_sha256"]) == 1 and len(row["phone_sha256"]) == 1


def test_an_incomplete_order_stores_nothing_until_its_status_moves_on(
    client: TestClient, api: BigCommerceApi, shop: dict[str, Any]
) -> None:
    add_order(api, status_id=0, status="Incomplete")
    wal = runtime_of(client).wal
    assert wal is not None
    before, done = wal.write_end, fetched(client)
    assert send(client, shop["id"]).json()["status"] == "queued"
    wait_for(lambda: fetched(client) > done)
    assert wal.write_end == before  # fetched, and nothing stored
    assert not any(p.endswith("/products") for p in api.requests[-1:])  # lines not even asked
    add_order(api, status_id=11, status="Awaiting Fulfillment")
    send(client, shop["id"], scope="store/order/statusUpdated")
    wait_for(lambda: copies(client, shop["id"]) == [("Purchase", "purchase:250", "webhook")])


def test_a_declined_payment_stores_nothing(
    client: TestClient, api: BigCommerceApi, shop: dict[str, Any]
) -> None:
    add_order(api, status_id=6, status="Declined")
    wal = runtime_of(client).wal
    assert wal is not None
    before, done = wal.write_end, fetched(client)
    send(client, shop["id"])
    wait_for(lambda: fetched(client) > done)
    assert wal.write_end == before


def test_a_refund_is_a_refund_event_with_a_negative_value(
    client: TestClient, api: BigCommerceApi, shop: dict[str, Any]
) -> None:
    add_order(api)
    send(client, shop["id"])
    wait_for(lambda: len(copies(client, shop["id"])) == 1)
    refunds = fixture("bigcommerce_order_250_refunds.json")
    refunds[0]["created"] = ago(5).isoformat()
    add_order(api, refunds, status_id=14,
              status="Partially Refunded", refunded_amount="10.7500")  # fmt: skip
    send(client, shop["id"], scope="store/order/refund/created")
    rows = wait_merged(client, shop["id"], lambda rows: len(rows) == 2)
    assert {r["event_id"]: (float(r["value"]), r["currency"]) for r in rows} == {
        "purchase:250": (21.5, "USD"),
        "refund:250:12": (-10.75, "USD"),
    }


def test_a_cancelled_order_nets_out(
    client: TestClient, api: BigCommerceApi, shop: dict[str, Any]
) -> None:
    add_order(api, status_id=7, status="Awaiting Payment")
    send(client, shop["id"])
    wait_for(lambda: len(copies(client, shop["id"])) == 1)
    add_order(api, status_id=5, status="Cancelled")
    send(client, shop["id"], scope="store/order/statusUpdated")
    rows = wait_merged(client, shop["id"], lambda rows: len(rows) == 2)
    assert sum(float(r["value"]) for r in rows) == pytest.approx(0)
    assert {r["event_id"] for r in rows} == {"purchase:250", "refund:250"}


def test_a_fetch_that_keeps_failing_is_parked_visibly_not_lost(
    client: TestClient,
    api: BigCommerceApi,
    shop: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_order(api)
    api.fail_always(503)
    parked = fetched(client, "parked")
    failed_file = runtime_of(client).settings.data_dir / "webhooks" / "failed.jsonl"
    with caplog.at_level(logging.WARNING, logger="pixel_server.webhooks"):
        assert send(client, shop["id"]).json()["status"] == "queued"
        wait_for(lambda: fetched(client, "parked") > parked)
    attempts = runtime_of(client).webhook_policy.max_attempts
    assert api.order_requests(ORDER_ID) == attempts
    assert metric(client, "pixel_webhook_jobs_failed") >= 1
    lines = [json.loads(line) for line in failed_file.read_text().splitlines()]
    mine = [x for x in lines if x["job"]["pixel_id"] == shop["id"]]
    assert len(mine) == 1
    assert (mine[0]["job"]["order_id"], mine[0]["reason"]) == (ORDER_ID, "http_error")
    assert "503" in mine[0]["error"]
    gave_up = [
        r for r in caplog.records if r.getMessage().startswith("webhook order fetch gave up")
    ]
    assert gave_up and gave_up[0].levelno == logging.ERROR
    assert getattr(gave_up[0], "order_id", None) == ORDER_ID
    retried = [r for r in caplog.records if "will retry" in r.getMessage()]
    assert len(retried) == attempts - 1
    assert copies(client, shop["id"]) == []


def test_a_refused_token_is_retried_then_parked(
    client: TestClient, api: BigCommerceApi, shop: dict[str, Any]
) -> None:
    add_order(api)
    runtime_of(client).management.run(
        "pixel.update", {"id": shop["id"], "store_api_token": "wrong-token"}
    )
    before = metric(client, "pixel_webhook_fetch_errors_total", platform="bigcommerce",
                    reason="unauthorized")  # fmt: skip
    parked = fetched(client, "parked")
    send(client, shop["id"])
    wait_for(lambda: fetched(client, "parked") > parked)
    after = metric(client, "pixel_webhook_fetch_errors_total", platform="bigcommerce",
                   reason="unauthorized")  # fmt: skip
    assert after - before == runtime_of(client).webhook_policy.max_attempts
