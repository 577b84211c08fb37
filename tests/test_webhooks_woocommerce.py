"""WooCommerce order webhooks end to end: the signed REST v3 order becomes
``purchase:<id>`` when it counts as placed; the saving ping is answered and
ignored; pending orders store nothing; refunds net out once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.ingest_helpers import shared_settings
from tests.webhook_helpers import add_shop as _add_shop
from tests.webhook_helpers import (
    ago,
    copies,
    encode,
    iso_gmt,
    log_ends,
    merged,
    metric,
    post_browser_purchase,
    post_webhook,
    wait_merged,
    webhook_app,
    woo_headers,
    woo_order,
)

ORDER_ID = "10045"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[TestClient]:
    with webhook_app(shared_settings(tmp_path_factory, engine_dir)) as c:
        yield c


@pytest.fixture
def shop(client: TestClient) -> dict[str, Any]:
    return _add_shop(client, "woocommerce")


def send(client: TestClient, pixel_id: str, order: dict[str, Any], **headers: Any) -> Any:
    raw = encode(order)
    return post_webhook(client, "woocommerce", pixel_id, raw, woo_headers(raw, **headers))


@pytest.mark.parametrize("webhook_first", [True, False], ids=["webhook-first", "browser-first"])
def test_order_and_browser_copy_count_once(
    client: TestClient, shop: dict[str, Any], webhook_first: bool
) -> None:
    steps = [
        lambda: send(client, shop["id"], woo_order()),
        lambda: post_browser_purchase(client, shop["id"], ORDER_ID),
    ]
    answers = [step() for step in (steps if webhook_first else steps[::-1])]
    assert sorted(a.status_code for a in answers) == [200, 202]
    (row,) = wait_merged(client, shop["id"], lambda rows: len(rows) == 1)
    assert row["event_id"] == f"purchase:{ORDER_ID}" and row["sources"] == ["browser", "webhook"]
    assert (float(row["value"]), row["currency"], row["order_id"]) == (50.5, "EUR", ORDER_ID)
    # SKU, else the variation id, else the product id; the group is the product
    assert row["contents.content_id"] == ["woo-hoodie-blue-l", "15"]
    assert row["contents.item_group_id"] == ["37", "15"]
    assert row["contents.name"] == ["Hoodie - Blue, L", "Beanie"]
    assert row["contents.quantity"] == [1, 2]
    assert [float(p) for p in row["contents.price"]] == [33.61, 3.57]
    assert (row["anonymous_id"], row["ttclid"]) == ("anon-42", "E.C.P.tt-click-1")
    assert len(row["email_sha256"]) == 1 and len(row["phone_sha256"]) == 1


def test_the_ping_sent_when_a_webhook_is_saved_is_answered_and_stores_nothing(
    client: TestClient, shop: dict[str, Any]
) -> None:
    before = log_ends(client)
    answer = client.post(
        f"/webhooks/woocommerce/{shop['id']}",
        content=b"webhook_id=7",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200 and answer.json() == {"status": "ping"}
    assert log_ends(client) == before
    assert metric(client, "pixel_webhook_deliveries_total", platform="woocommerce",
                  outcome="ping") >= 1  # fmt: skip


def test_only_the_exact_ping_body_passes_unsigned(client: TestClient, shop: dict[str, Any]) -> None:
    raw = encode(woo_order())
    forged = post_webhook(client, "woocommerce", shop["id"], b"webhook_id=7&" + raw, {})
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "missing_signature"


def test_a_pending_order_stores_nothing_until_it_is_paid(
    client: TestClient, shop: dict[str, Any]
) -> None:
    placed = ago(20)
    before = log_ends(client)
    pending = woo_order(created=placed, status="pending", date_paid=None, date_paid_gmt=None)
    answer = send(client, shop["id"], pending)
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    assert "pending" in answer.json()["note"]
    assert log_ends(client) == before
    paid = send(client, shop["id"], woo_order(created=placed), topic="order.updated")
    assert paid.json()["accepted"] == 1
    assert copies(client, shop["id"]) == [("Purchase", f"purchase:{ORDER_ID}", "webhook")]


@pytest.mark.parametrize("status", ["failed", "checkout-draft"])
def test_failed_and_draft_orders_store_nothing(
    client: TestClient, shop: dict[str, Any], status: str
) -> None:
    before = log_ends(client)
    assert send(client, shop["id"], woo_order(status=status)).json()["status"] == "ignored"
    assert log_ends(client) == before


def test_on_hold_counts_as_placed(client: TestClient, shop: dict[str, Any]) -> None:
    order = woo_order(status="on-hold", date_paid=None, date_paid_gmt=None)
    assert send(client, shop["id"], order).json()["accepted"] == 1


def test_a_refund_nets_out_once_however_often_the_order_is_updated(
    client: TestClient, shop: dict[str, Any]
) -> None:
    placed = ago(120)
    send(client, shop["id"], woo_order(created=placed))
    refunds = [{"id": 10052, "reason": "Beanie returned", "total": "-7.14"}]
    refunded = woo_order(created=placed, refunds=refunds,
                         date_modified_gmt=iso_gmt(placed + timedelta(minutes=30)))  # fmt: skip
    assert send(client, shop["id"], refunded, topic="order.updated").status_code == 200
    # days later the order is completed: same refund, a newer modification date
    later = woo_order(created=placed, status="completed", refunds=refunds,
                      date_modified_gmt=iso_gmt(placed + timedelta(days=3)))  # fmt: skip
    assert send(client, shop["id"], later, topic="order.updated").status_code == 200
    rows = merged(client, shop["id"])
    assert [(r["event_id"], float(r["value"])) for r in rows] == [
        (f"purchase:{ORDER_ID}", 50.5),
        (f"refund:{ORDER_ID}:10052", -7.14),
    ]
    assert copies(client, shop["id"]).count(("Refund", f"refund:{ORDER_ID}:10052", "webhook")) == 1


def test_a_cancelled_paid_order_nets_what_the_refunds_do_not_cover(
    client: TestClient, shop: dict[str, Any]
) -> None:
    placed = ago(60)
    send(client, shop["id"], woo_order(created=placed))
    cancelled = woo_order(created=placed, status="cancelled",
                          date_modified_gmt=iso_gmt(placed + timedelta(minutes=5)))  # fmt: skip
    send(client, shop["id"], cancelled, topic="order.updated")
    rows = {r["event_id"]: float(r["value"]) for r in merged(client, shop["id"])}
    assert rows == {f"purchase:{ORDER_ID}": 50.5, f"refund:{ORDER_ID}": -50.5}


def test_an_unpaid_order_cancelled_by_the_stock_timeout_stores_nothing(
    client: TestClient, shop: dict[str, Any]
) -> None:
    before = log_ends(client)
    order = woo_order(status="cancelled", date_paid=None, date_paid_gmt=None)
    assert send(client, shop["id"], order, topic="order.updated").json()["status"] == "ignored"
    assert log_ends(client) == before
