"""Shopify order webhooks end to end: a signed ``orders/create`` becomes the
webhook copy of ``purchase:<order id>`` and merges with the browser's copy;
refunds and cancellations become Refund events with negative values."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.ingest_helpers import shared_settings
from tests.webhook_helpers import (
    SECRET,
    ago,
    copies,
    encode,
    fixture,
    iso_local,
    log_ends,
    merged,
    post_browser_purchase,
    post_webhook,
    shopify_headers,
    shopify_order,
    wait_merged,
    webhook_app,
)
from tests.webhook_helpers import add_shop as _add_shop

ORDER_ID = "5396439498987"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[TestClient]:
    with webhook_app(shared_settings(tmp_path_factory, engine_dir)) as c:
        yield c


@pytest.fixture
def shop(client: TestClient) -> dict[str, Any]:
    return _add_shop(client, "shopify")


def send(client: TestClient, pixel_id: str, body: dict[str, Any], **headers: Any) -> Any:
    raw = encode(body)
    return post_webhook(client, "shopify", pixel_id, raw, shopify_headers(raw, **headers))


@pytest.mark.parametrize("webhook_first", [True, False], ids=["webhook-first", "browser-first"])
def test_order_and_browser_copy_count_once(
    client: TestClient, shop: dict[str, Any], webhook_first: bool
) -> None:
    steps = [
        lambda: send(client, shop["id"], shopify_order()),
        lambda: post_browser_purchase(client, shop["id"], ORDER_ID),
    ]
    answers = [step() for step in (steps if webhook_first else steps[::-1])]
    assert sorted(a.status_code for a in answers) == [200, 202]
    (row,) = wait_merged(client, shop["id"], lambda rows: len(rows) == 1 and row_done(rows[0]))
    assert row["event"] == "Purchase" and row["event_id"] == f"purchase:{ORDER_ID}"
    assert row["sources"] == ["browser", "webhook"]
    # order data from the webhook...
    assert (float(row["value"]), row["currency"], row["order_id"]) == (64.9, "USD", ORDER_ID)
    assert row["contents.content_id"] == ["LS-M-SAND", "44301291634923"]  # SKU, else variant
    assert row["contents.item_group_id"] == ["8092309471467", "8092309504235"]
    assert row["contents.name"] == ["Linen Shirt", "Canvas Tote"]
    assert [float(p) for p in row["contents.price"]] == [24.5, 10.0]
    assert row["contents.quantity"] == [2, 1]
    # ...identity from the browser
    assert (row["anonymous_id"], row["ttclid"]) == ("anon-42", "E.C.P.tt-click-1")
    # the buyer's e-mail and phone arrive hashed, never raw
    assert len(row["email_sha256"]) == 1 and len(row["email_sha256"][0]) == 64
    assert len(row["phone_sha256"]) == 1


def row_done(row: dict[str, Any]) -> bool:
    return sorted(row["sources"]) == ["browser", "webhook"]


def test_the_webhook_copy_alone_carries_the_order_time_and_no_raw_pii(
    client: TestClient, shop: dict[str, Any]
) -> None:
    placed = ago(90)
    assert send(client, shop["id"], shopify_order(created=placed)).json()["accepted"] == 1
    (row,) = merged(client, shop["id"])
    assert abs(row["event_time"].timestamp() - placed.timestamp()) < 1
    ch = client.app.state.runtime.database.client()  # type: ignore[attr-defined]
    dump = str(ch.query(f"SELECT * FROM events WHERE pixel_id = '{shop['id']}'").result_rows)
    assert "Jon.Doe@Example.com".lower() not in dump.lower() and "555-0142" not in dump


def test_repeated_topics_for_one_order_store_one_copy(
    client: TestClient, shop: dict[str, Any]
) -> None:
    order = shopify_order()
    assert send(client, shop["id"], order).status_code == 200
    again = send(client, shop["id"], order, topic="orders/updated")  # another delivery id
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    assert copies(client, shop["id"]) == [("Purchase", f"purchase:{ORDER_ID}", "webhook")]


def test_a_graphql_order_id_is_cut_to_its_number(client: TestClient, shop: dict[str, Any]) -> None:
    order = shopify_order(id=f"gid://shopify/Order/{ORDER_ID}")
    assert send(client, shop["id"], order).status_code == 200
    assert copies(client, shop["id"]) == [("Purchase", f"purchase:{ORDER_ID}", "webhook")]


def test_a_refund_is_a_refund_event_with_a_negative_value(
    client: TestClient, shop: dict[str, Any]
) -> None:
    send(client, shop["id"], shopify_order())
    refund = fixture("shopify_refunds_create.json")
    refund["created_at"] = iso_local(ago(5))
    answer = send(client, shop["id"], refund, topic="refunds/create")
    assert answer.status_code == 200 and answer.json()["accepted"] == 1
    rows = {r["event"]: r for r in merged(client, shop["id"])}
    refunded = rows["Refund"]
    assert refunded["event_id"] == f"refund:{ORDER_ID}:929361462123"
    assert (float(refunded["value"]), refunded["currency"]) == (-11.0, "USD")
    assert refunded["order_id"] == ORDER_ID
    net = sum(float(r["value"]) for r in rows.values())
    assert net == pytest.approx(64.9 - 11.0)


def test_the_same_refund_inside_an_order_update_is_not_counted_twice(
    client: TestClient, shop: dict[str, Any]
) -> None:
    refund = fixture("shopify_refunds_create.json")
    refund["created_at"] = iso_local(ago(5))
    send(client, shop["id"], refund, topic="refunds/create")
    order = shopify_order(financial_status="partially_refunded", refunds=[refund])
    assert send(client, shop["id"], order, topic="orders/updated").json()["duplicates"] == 1
    assert copies(client, shop["id"]) == [
        ("Purchase", f"purchase:{ORDER_ID}", "webhook"),
        ("Refund", f"refund:{ORDER_ID}:929361462123", "webhook"),
    ]


def test_a_cancelled_authorisation_nets_the_order_out(
    client: TestClient, shop: dict[str, Any]
) -> None:
    placed = ago(60)
    send(client, shop["id"], shopify_order(created=placed, financial_status="authorized"))
    cancelled = shopify_order(
        created=placed,
        financial_status="voided",
        cancelled_at=iso_local(placed + timedelta(minutes=20)),
        cancel_reason="customer",
    )
    assert send(client, shop["id"], cancelled, topic="orders/cancelled").status_code == 200
    rows = {r["event_id"]: r for r in merged(client, shop["id"])}
    assert float(rows[f"refund:{ORDER_ID}"]["value"]) == -64.9
    assert sum(float(r["value"]) for r in rows.values()) == pytest.approx(0)


def test_an_order_whose_payment_expired_stores_nothing(
    client: TestClient, shop: dict[str, Any]
) -> None:
    before = log_ends(client)
    answer = send(client, shop["id"], shopify_order(financial_status="expired"))
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored" and "expired" in answer.json()["note"]
    assert log_ends(client) == before


def test_other_topics_are_acknowledged_and_ignored(
    client: TestClient, shop: dict[str, Any]
) -> None:
    before = log_ends(client)
    answer = send(client, shop["id"], {"id": 1, "title": "Hat"}, topic="products/update")
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    assert log_ends(client) == before


def test_the_secret_is_the_pixels_own(client: TestClient, shop: dict[str, Any]) -> None:
    other = _add_shop(client, "shopify", webhook_secret="another-shops-secret")
    raw = encode(shopify_order())
    # signed with the first shop's secret, sent to the second shop's URL
    answer = post_webhook(client, "shopify", other["id"], raw, shopify_headers(raw, secret=SECRET))
    assert answer.status_code == 401


def test_an_order_older_than_the_horizon_is_acknowledged_with_its_rejection(
    client: TestClient, shop: dict[str, Any]
) -> None:
    """Retrying cannot help, so the platform gets a 200 that names the rejection."""
    before = log_ends(client)
    answer = send(client, shop["id"], shopify_order(created=ago(10 * 24 * 60)))
    assert answer.status_code == 200
    assert [r["code"] for r in answer.json()["rejected"]] == ["event_too_old"]
    assert log_ends(client) == before
