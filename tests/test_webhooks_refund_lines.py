"""Refunds per product and variant, end to end on every platform: signed (or
authenticated) webhook deliveries, orders and refunds in each platform's own
shape (fetched from the stand-in store APIs where the webhook has ids only),
and the products report's gross, refunded and net revenue to the cent.

One order everywhere: 2 × SW-RED-M at 25.00 and 1 × MUG-1 at 10.00, shipping
5.00, total 65.00 (WooCommerce's refund lines come from its REST API, the
order's own refund summaries having none). Five cases: a partial refund of one line (one sweater), a
full refund, an amount-only refund of 12.00, a refund of the mug with its
shipping, and a cancellation after a partial refund (followed by a refund of
the same money, which must not count again). Ecwid refunds (and WooCommerce's
order refund summaries, for a shop without a store API) carry an amount
only: their money is spread over what is left of the lines (25.00 over 50:10
is 20.83 and 4.17; shipping cannot be told apart and is spread too, never
beyond the lines' value)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pixel_server.reports import ReportParams, run
from tests.ingest_helpers import shared_settings
from tests.standins.bigcommerce_api import BigCommerceApi
from tests.standins.bigcommerce_api import running as bigcommerce_running
from tests.standins.ecwid_api import EcwidApi
from tests.standins.ecwid_api import running as ecwid_running
from tests.standins.woocommerce_orders_api import WooCommerceApi
from tests.standins.woocommerce_orders_api import running as woocommerce_running
from tests.webhook_helpers import (
    STORE_TOKEN,
    ago,
    bigcommerce_callback,
    bigcommerce_headers,
    bigcommerce_order,
    ecwid_event,
    ecwid_headers,
    ecwid_order,
    encode,
    fixture,
    iso_gmt,
    iso_local,
    merged,
    post_webhook,
    rfc2822,
    runtime_of,
    shopify_headers,
    shopify_order,
    wait_for,
    webhook_app,
    woo_headers,
    woo_order,
)
from tests.webhook_helpers import add_shop as _add_shop

SW, MUG = "SW-RED-M", "MUG-1"
WOO_KEYS = "ck_3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6d7e8f901:cs_0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3"
CASES = ("partial_line", "full", "amount_only", "with_shipping", "cancel_after_partial")
# variant -> (gross, refunded by line, refunded without lines, net, units refunded)
Expected = dict[str, tuple[str, str, str, str, int]]
LINES: dict[str, Expected] = {
    "partial_line": {SW: ("50", "25", "0", "25", 1), MUG: ("10", "0", "0", "10", 0)},
    "full": {SW: ("50", "50", "0", "0", 2), MUG: ("10", "10", "0", "0", 1)},
    "amount_only": {SW: ("50", "0", "10", "40", 0), MUG: ("10", "0", "2", "8", 0)},
    "with_shipping": {SW: ("50", "0", "0", "50", 0), MUG: ("10", "10", "0", "0", 1)},
    "cancel_after_partial": {SW: ("50", "50", "0", "0", 2), MUG: ("10", "10", "0", "0", 1)},
}
AMOUNT_ONLY: dict[str, Expected] = {
    "partial_line": {SW: ("50", "0", "20.83", "29.17", 0), MUG: ("10", "0", "4.17", "5.83", 0)},
    "full": {SW: ("50", "0", "50", "0", 0), MUG: ("10", "0", "10", "0", 0)},
    "amount_only": {SW: ("50", "0", "10", "40", 0), MUG: ("10", "0", "2", "8", 0)},
    "with_shipping": {SW: ("50", "0", "12.50", "37.50", 0), MUG: ("10", "0", "2.50", "7.50", 0)},
    "cancel_after_partial": {
        SW: ("50", "29.17", "20.83", "0", 2),
        MUG: ("10", "5.83", "4.17", "0", 1),
    },
}
# What the order nets to in the purchases report.
ORDER_NET = {"partial_line": "40", "full": "0", "amount_only": "53", "with_shipping": "50",
             "cancel_after_partial": "0"}  # fmt: skip


@pytest.fixture(scope="module")
def bigcommerce() -> Iterator[BigCommerceApi]:
    with bigcommerce_running(STORE_TOKEN, store_hash="abc123xyz") as a:
        yield a


@pytest.fixture(scope="module")
def ecwid() -> Iterator[EcwidApi]:
    with ecwid_running(STORE_TOKEN, store_id="1003", currency="USD") as a:
        yield a


@pytest.fixture(scope="module")
def woocommerce() -> Iterator[WooCommerceApi]:
    with woocommerce_running(WOO_KEYS) as a:
        yield a


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[TestClient]:
    with webhook_app(shared_settings(tmp_path_factory, engine_dir)) as c:
        yield c


def settle(client: TestClient) -> None:
    """Every queued order fetch done (one step of a case at a time, as in a shop)."""
    fetcher = runtime_of(client).webhooks.fetcher
    wait_for(lambda: fetcher.backlog_bytes() == 0 and fetcher.waiting() == 0)


# ------------------------------------------------------------------ Shopify


class Shopify:
    """Bodies as Shopify sends them; every delivery signed with the app secret."""

    ORDER = 5400000000001

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.shop = _add_shop(client, "shopify")
        self.order = shopify_order(
            created=ago(90), id=self.ORDER, total_price="65.00", subtotal_price="60.00",
            total_tax="0.00", tax_lines=[],
        )  # fmt: skip
        template = self.order["line_items"][0]
        self.order["line_items"] = [
            self._line(template, 7001, 9001, 8001, SW, "Sweater - Red / M", "25.00", 2),
            self._line(template, 7002, 9002, 8002, MUG, "Mug", "10.00", 1),
        ]
        self.order["shipping_lines"][0]["price"] = "5.00"
        self.refunds: list[dict[str, Any]] = []
        self.sent: dict[int, bytes] = {}

    @staticmethod
    def _line(template: dict[str, Any], line_id: int, variant: int, product: int, sku: str,
              title: str, price: str, qty: int) -> dict[str, Any]:  # fmt: skip
        line = copy.deepcopy(template)
        line.update(id=line_id, variant_id=variant, product_id=product, sku=sku, title=title,
                    name=title, price=price, quantity=qty, fulfillable_quantity=qty,
                    tax_lines=[], discount_allocations=[])  # fmt: skip
        return line

    def send(self, body: dict[str, Any], topic: str) -> Any:
        raw = encode(body)
        return post_webhook(self.client, "shopify", self.shop["id"], raw,
                            shopify_headers(raw, topic=topic))  # fmt: skip

    def place(self) -> None:
        assert self.send(self.order, "orders/create").status_code == 200

    def refund(self, rid: int, minutes: float, lines: list[tuple[int, int]], shipping: str = "0",
               amount: str | None = None) -> None:  # fmt: skip
        """Return ``(line id, units)``, and shipping; ``amount`` overrides the sum."""
        by_id = {li["id"]: li for li in self.order["line_items"]}
        body = copy.deepcopy(fixture("shopify_refunds_create.json"))
        at = iso_local(ago(minutes))
        items = []
        for n, (line_id, qty) in enumerate(lines):
            item = by_id[line_id]
            subtotal = Decimal(item["price"]) * qty
            items.append({"id": rid * 10 + n, "line_item_id": line_id, "location_id": 70432571627,
                          "quantity": qty, "restock_type": "return", "subtotal": float(subtotal),
                          "total_tax": 0.0, "line_item": copy.deepcopy(item)})  # fmt: skip
        total = sum((Decimal(i["line_item"]["price"]) * i["quantity"] for i in items), Decimal(0))
        money = Decimal(amount) if amount is not None else total + Decimal(shipping)
        adjustments = []
        if Decimal(shipping):
            adjustments.append({
                "id": rid * 10 + 7, "order_id": self.ORDER, "refund_id": rid,
                "amount": f"-{shipping}", "tax_amount": "0.00", "kind": "shipping_refund",
                "reason": "Shipping refund",
            })  # fmt: skip
        if money - total - Decimal(shipping):
            adjustments.append({"id": rid * 10 + 8, "order_id": self.ORDER, "refund_id": rid,
                                "amount": f"{-(money - total - Decimal(shipping)):.2f}",
                                "tax_amount": "0.00", "kind": "refund_discrepancy",
                                "reason": "Refund discrepancy"})  # fmt: skip
        body.update(id=rid, order_id=self.ORDER, created_at=at, processed_at=at,
                    refund_line_items=items, order_adjustments=adjustments)  # fmt: skip
        body["transactions"][0].update(amount=f"{money:.2f}", order_id=self.ORDER,
                                       created_at=at, processed_at=at, id=rid + 1)  # fmt: skip
        self.refunds.append(body)
        self.sent[rid] = encode(body)
        answer = self.send(body, "refunds/create").json()
        if money > total + Decimal(shipping):  # money without lines: the order's update maps it
            assert answer["status"] == "ignored" and "orders/updated" in answer["note"]
        status = "refunded" if money + self._refunded(exclude=rid) >= 65 else "partially_refunded"
        self.update(financial_status=status)

    def _refunded(self, exclude: int) -> Decimal:
        return sum((Decimal(r["transactions"][0]["amount"]) for r in self.refunds
                    if r["id"] != exclude), Decimal(0))  # fmt: skip

    def update(self, topic: str = "orders/updated", **changes: Any) -> None:
        self.order.update(refunds=copy.deepcopy(self.refunds), **changes)
        assert self.send(self.order, topic).status_code == 200

    def redeliver(self, rid: int) -> None:
        raw = self.sent[rid]  # the same body, a new delivery id (a retry after a timeout)
        headers = shopify_headers(raw, topic="refunds/create")
        assert (
            post_webhook(self.client, "shopify", self.shop["id"], raw, headers).status_code == 200
        )

    def case(self, name: str) -> int:
        """Play the case; returns how many Refund events it stores."""
        self.place()
        if name == "partial_line":
            self.refund(801, 60, [(7001, 1)])
            self.redeliver(801)
        elif name == "full":
            self.refund(801, 60, [(7001, 2), (7002, 1)], shipping="5.00")
        elif name == "amount_only":
            self.refund(801, 60, [], amount="12.00")
        elif name == "with_shipping":
            self.refund(801, 60, [(7002, 1)], shipping="5.00")
        else:
            self.refund(801, 60, [(7001, 1)])
            self.update("orders/cancelled", cancelled_at=iso_local(ago(45)),
                        cancel_reason="customer")  # fmt: skip
            # the rest of the money, refunded after the cancellation: the same money
            self.refund(802, 30, [(7001, 1), (7002, 1)], shipping="5.00")
            return 2
        return 1


# -------------------------------------------------------------- BigCommerce


class BigCommerce:
    """Ids-only callbacks; the order, its products and its refunds from the API."""

    ORDER = 260

    def __init__(self, client: TestClient, api: BigCommerceApi) -> None:
        api.reset()
        self.client, self.api = client, api
        self.shop = _add_shop(client, "bigcommerce", store_api_base=api.base_url,
                              store_api_token=STORE_TOKEN)  # fmt: skip
        self.order = bigcommerce_order(created=ago(90), id=self.ORDER, subtotal_ex_tax="60.0000",
                                       subtotal_inc_tax="60.0000", subtotal_tax="0.0000",
                                       total_ex_tax="65.0000", total_inc_tax="65.0000",
                                       total_tax="0.0000", base_shipping_cost="5.0000",
                                       shipping_cost_ex_tax="5.0000",
                                       shipping_cost_inc_tax="5.0000", items_total=3)  # fmt: skip
        template = fixture("bigcommerce_order_250_products.json")[0]
        self.products = [
            self._product(template, 181, 77, 1, SW, "Sweater - Red / M", "25.0000", 2),
            self._product(template, 182, 78, 2, MUG, "Mug", "10.0000", 1),
        ]
        self.refunds: list[dict[str, Any]] = []

    def _product(self, template: dict[str, Any], row: int, product: int, variant: int, sku: str,
                 name: str, price: str, qty: int) -> dict[str, Any]:  # fmt: skip
        p = copy.deepcopy(template)
        total = f"{Decimal(price) * qty:.4f}"
        p.update(id=row, order_id=self.ORDER, product_id=product, variant_id=variant, sku=sku,
                 name=name, base_price=price, price_ex_tax=price, price_inc_tax=price,
                 price_tax="0.0000", base_total=total, total_ex_tax=total, total_inc_tax=total,
                 total_tax="0.0000", quantity=qty, product_options=[])  # fmt: skip
        return p

    def publish(self, scope: str, **changes: Any) -> None:
        self.order.update(changes)
        refunded = sum((Decimal(str(r["total_amount"])) for r in self.refunds), Decimal(0))
        self.order["refunded_amount"] = f"{refunded:.4f}"
        self.api.add_order(copy.deepcopy(self.order), self.products, copy.deepcopy(self.refunds))
        body = encode(bigcommerce_callback(self.ORDER, scope=scope))
        answer = post_webhook(self.client, "bigcommerce", self.shop["id"], body,
                              bigcommerce_headers())  # fmt: skip
        assert answer.status_code == 200 and answer.json()["status"] == "queued"
        settle(self.client)

    def refund(self, rid: int, minutes: float, items: list[tuple[str, int, int, str]]) -> None:
        """``(item_type, item_id, quantity, requested_amount)`` per item."""
        total = sum((Decimal(a) for _, _, _, a in items), Decimal(0))
        self.refunds.append({
            "id": rid, "order_id": self.ORDER, "user_id": 0, "reason": "Customer request",
            "created": ago(minutes).replace(microsecond=0).isoformat(),
            "total_amount": float(total), "total_tax": 0.0,
            "uses_merchant_override_values": False,
            "payments": [{"id": rid + 100, "provider_id": "braintree", "amount": float(total),
                          "offline": False, "is_declined": False, "declined_message": ""}],
            "items": [{"item_type": t, "item_id": i, "quantity": q,
                       "requested_amount": float(a), "reason": "Customer request"}
                      for t, i, q, a in items],
        })  # fmt: skip
        refunded = sum(r["total_amount"] for r in self.refunds)
        status = {"status_id": 4, "status": "Refunded"} if refunded >= 65 else {
            "status_id": 14, "status": "Partially Refunded"}  # fmt: skip
        if self.order["status_id"] == 5:
            status = {}
        self.publish("store/order/refund/created", **status)

    def case(self, name: str) -> int:
        self.publish("store/order/created")
        if name == "partial_line":
            self.refund(31, 60, [("PRODUCT", 181, 1, "25.00")])
            self.publish("store/order/refund/created")  # the same callback delivered again
        elif name == "full":
            self.refund(31, 60, [("PRODUCT", 181, 2, "50.00"), ("PRODUCT", 182, 1, "10.00"),
                                 ("SHIPPING", 151, 0, "5.00")])  # fmt: skip
        elif name == "amount_only":
            self.refund(31, 60, [("ORDER", self.ORDER, 0, "12.00")])
        elif name == "with_shipping":
            self.refund(31, 60, [("PRODUCT", 182, 1, "10.00"), ("SHIPPING", 151, 0, "5.00")])
        else:
            self.refund(31, 60, [("PRODUCT", 181, 1, "25.00")])
            self.publish("store/order/statusUpdated", status_id=5, status="Cancelled",
                         date_modified=rfc2822(ago(45)))  # fmt: skip
            self.refund(32, 30, [("PRODUCT", 181, 1, "25.00"), ("PRODUCT", 182, 1, "10.00"),
                                 ("SHIPPING", 151, 0, "5.00")])  # fmt: skip
            return 2
        return 1


# -------------------------------------------------------------------- Ecwid


class Ecwid:
    """Signed event notifications; the order (with its refunds) from the API."""

    ORDER = "RF26A"

    def __init__(self, client: TestClient, api: EcwidApi) -> None:
        api.reset()
        self.client, self.api = client, api
        self.shop = _add_shop(client, "ecwid", store_api_base=api.base_url,
                              store_api_token=STORE_TOKEN)  # fmt: skip
        self.order = ecwid_order(created=ago(90), id=self.ORDER, vendorOrderNumber=self.ORDER,
                                 subtotal=60, subtotalWithoutTax=60, total=65,
                                 totalWithoutTax=65, usdTotal=65,
                                 totalBeforeGiftCardRedemption=65)  # fmt: skip
        template = self.order["items"][0]
        self.order["items"] = [
            self._item(template, 178923411, 561238129, SW, "Sweater - Red / M", 25, 2),
            self._item(template, 178923412, 561238130, MUG, "Mug", 10, 1),
        ]
        self.order["shippingOption"] = {"shippingMethodName": "Standard", "shippingRate": 5}
        self.order["refunds"] = []
        self.order["refundedAmount"] = 0

    @staticmethod
    def _item(template: dict[str, Any], item_id: int, product: int, sku: str, name: str,
              price: int, qty: int) -> dict[str, Any]:  # fmt: skip
        item = copy.deepcopy(template)
        item.update(id=item_id, productId=product, sku=sku, name=name, price=price,
                    productPrice=price, quantity=qty)  # fmt: skip
        return item

    def publish(self, minutes: float = 85, **changes: Any) -> None:
        self.order.update(changes)
        stamp = int(ago(minutes).timestamp())
        self.order.update(updateTimestamp=stamp,
                          updateDate=datetime.fromtimestamp(stamp, UTC).strftime(
                              "%Y-%m-%d %H:%M:%S +0000"))  # fmt: skip
        self.api.add_order(copy.deepcopy(self.order))
        event = ecwid_event(self.ORDER, "order.updated")
        answer = post_webhook(self.client, "ecwid", self.shop["id"], encode(event),
                              ecwid_headers(event))  # fmt: skip
        assert answer.status_code == 200 and answer.json()["status"] == "queued"
        settle(self.client)
        self.last = event

    def refund(self, minutes: float, amount: float) -> None:
        at = ago(minutes).strftime("%Y-%m-%d %H:%M:%S +0000")
        self.order["refunds"].append({"date": at, "source": "CP", "reason": "Customer request",
                                      "amount": amount})  # fmt: skip
        refunded = sum(r["amount"] for r in self.order["refunds"])
        status = self.order["paymentStatus"]
        if status != "CANCELLED":
            status = "REFUNDED" if refunded >= 65 else "PARTIALLY_REFUNDED"
        self.publish(minutes, refundedAmount=refunded, paymentStatus=status)

    def case(self, name: str) -> int:
        self.publish(paymentStatus="PAID")
        if name == "partial_line":
            self.refund(60, 25)
            resent = self.last  # the same notification again: Ecwid retries until a 200
            post_webhook(self.client, "ecwid", self.shop["id"], encode(resent),
                         ecwid_headers(resent))  # fmt: skip
        elif name == "full":
            self.refund(60, 65)
        elif name == "amount_only":
            self.refund(60, 12)
        elif name == "with_shipping":
            self.refund(60, 15)
        else:
            self.refund(60, 25)
            self.publish(45, paymentStatus="CANCELLED", fulfillmentStatus="WILL_NOT_DELIVER")
            self.refund(30, 40)
            return 2
        return 1


# -------------------------------------------------------------- WooCommerce


class WooCommerce:
    """Signed order bodies; the refunds, with their lines, from the REST API."""

    ORDER = 10061

    def __init__(self, client: TestClient, api: WooCommerceApi, with_api: bool = True) -> None:
        api.reset()
        self.client, self.api, self.with_api = client, api, with_api
        store = {"store_api_base": api.base_url, "store_api_token": WOO_KEYS} if with_api else {}
        self.shop = _add_shop(client, "woocommerce", **store)
        self.order = woo_order(created=ago(90), id=self.ORDER, number=str(self.ORDER),
                               currency="USD", prices_include_tax=False, shipping_total="5.00",
                               cart_tax="0.00", total_tax="0.00", total="65.00")  # fmt: skip
        template = self.order["line_items"][1]
        self.order["line_items"] = [
            self._line(template, 21, 101, SW, "Sweater - Red / M", 25, 2),
            self._line(template, 22, 102, MUG, "Mug", 10, 1),
        ]
        self.order["shipping_lines"] = [
            {
                "id": 23,
                "method_title": "Flat rate",
                "method_id": "flat_rate",
                "total": "5.00",
                "total_tax": "0.00",
                "taxes": [],
                "meta_data": [],
            }
        ]
        self.order["refunds"] = []
        self.refunds: list[dict[str, Any]] = []

    @staticmethod
    def _line(template: dict[str, Any], line_id: int, product: int, sku: str, name: str,
              price: int, qty: int) -> dict[str, Any]:  # fmt: skip
        line = copy.deepcopy(template)
        total = f"{price * qty:.2f}"
        line.update(id=line_id, name=name, product_id=product, variation_id=0, quantity=qty,
                    subtotal=total, subtotal_tax="0.00", total=total, total_tax="0.00",
                    taxes=[], meta_data=[], sku=sku, price=price, parent_name=None)  # fmt: skip
        return line

    def publish(self, minutes: float, topic: str = "order.updated", **changes: Any) -> None:
        self.order.update(changes, date_modified_gmt=iso_gmt(ago(minutes)))
        self.order["refunds"] = [{"id": r["id"], "reason": r["reason"], "total": f"-{r['amount']}"}
                                 for r in self.refunds]  # fmt: skip
        self.api.add_order(copy.deepcopy(self.order), copy.deepcopy(self.refunds))
        raw = encode(self.order)
        answer = post_webhook(self.client, "woocommerce", self.shop["id"], raw,
                              woo_headers(raw, topic=topic))  # fmt: skip
        assert answer.status_code == 200
        assert answer.json()["status"] == ("queued" if self.refunds and self.with_api else "stored")
        settle(self.client)
        self.last = (raw, topic)

    def refund(self, rid: int, minutes: float, lines: list[tuple[int, int]], shipping: str = "0",
               amount: str | None = None) -> None:  # fmt: skip
        by_id = {li["id"]: li for li in self.order["line_items"]}
        items = []
        for line_id, qty in lines:
            li = by_id[line_id]
            total = f"-{li['price'] * qty:.2f}"
            items.append({"id": rid * 10 + line_id, "name": li["name"],
                          "product_id": li["product_id"], "variation_id": 0, "quantity": -qty,
                          "tax_class": "", "subtotal": total, "subtotal_tax": "0.00",
                          "total": total, "total_tax": "0.00", "taxes": [],
                          "meta_data": [{"id": rid * 100 + line_id, "key": "_refunded_item_id",
                                         "value": str(line_id), "display_key": "_refunded_item_id",
                                         "display_value": str(line_id)}],
                          "sku": li["sku"], "price": -li["price"]})  # fmt: skip
        shipping_lines = []
        if Decimal(shipping):
            shipping_lines.append(
                {
                    "id": rid * 10 + 9,
                    "method_title": "Flat rate",
                    "method_id": "flat_rate",
                    "total": f"-{shipping}",
                    "total_tax": "0.00",
                    "taxes": [],
                    "meta_data": [{"key": "_refunded_item_id", "value": "23"}],
                }
            )
        lines_total = sum((Decimal(i["total"]) for i in items), Decimal(0))
        money = Decimal(amount) if amount is not None else -lines_total + Decimal(shipping)
        at = ago(minutes)
        self.refunds.append({
            "id": rid, "date_created": iso_gmt(at), "date_created_gmt": iso_gmt(at),
            "amount": f"{money:.2f}", "reason": "Customer request", "refunded_by": 1,
            "refunded_payment": True, "meta_data": [], "line_items": items,
            "shipping_lines": shipping_lines, "tax_lines": [], "fee_lines": [],
        })  # fmt: skip
        refunded = sum(Decimal(r["amount"]) for r in self.refunds)
        status = self.order["status"]
        if status != "cancelled" and refunded >= 65:
            status = "refunded"
        self.publish(minutes, status=status)

    def case(self, name: str) -> int:
        self.publish(89, topic="order.created")
        if name == "partial_line":
            self.refund(301, 60, [(21, 1)])
            raw, topic = self.last  # delivered again, with a new delivery id
            post_webhook(self.client, "woocommerce", self.shop["id"], raw,
                         woo_headers(raw, topic=topic))  # fmt: skip
        elif name == "full":
            self.refund(301, 60, [(21, 2), (22, 1)], shipping="5.00")
        elif name == "amount_only":
            self.refund(301, 60, [], amount="12.00")
        elif name == "with_shipping":
            self.refund(301, 60, [(22, 1)], shipping="5.00")
        else:
            self.refund(301, 60, [(21, 1)])
            self.publish(45, status="cancelled")
            self.refund(302, 30, [(21, 1), (22, 1)], shipping="5.00")
            return 2
        return 1


# -------------------------------------------------------------------- tests


def products(client: TestClient, pixel_id: str) -> dict[str, dict[str, Any]]:
    now = datetime.now(UTC)
    params = ReportParams(pixel_id, (now - timedelta(days=2)).date(),
                          (now + timedelta(days=1)).date(), "UTC")  # fmt: skip
    report = run(runtime_of(client).database.client(), "products", params)
    return {v["variant"]: v for p in report.data["products"] for v in p["variants"]}


def purchases_net(client: TestClient, pixel_id: str) -> Decimal:
    now = datetime.now(UTC)
    params = ReportParams(pixel_id, (now - timedelta(days=2)).date(),
                          (now + timedelta(days=1)).date(), "UTC")  # fmt: skip
    report = run(runtime_of(client).database.client(), "purchases", params)
    return sum((Decimal(r["revenue"]) for r in report.data["days"]), Decimal(0))


# WooCommerce without a store API: the order's refund summaries, amounts only.
PLATFORMS = ["shopify", "woocommerce", "woocommerce-summaries", "bigcommerce", "ecwid"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_product_revenue_is_net_of_refunds(
    client: TestClient,
    bigcommerce: BigCommerceApi,
    ecwid: EcwidApi,
    woocommerce: WooCommerceApi,
    platform: str,
    case: str,
) -> None:
    store: Shopify | WooCommerce | BigCommerce | Ecwid
    if platform == "shopify":
        store = Shopify(client)
    elif platform.startswith("woocommerce"):
        store = WooCommerce(client, woocommerce, with_api=platform == "woocommerce")
    elif platform == "bigcommerce":
        store = BigCommerce(client, bigcommerce)
    else:
        store = Ecwid(client, ecwid)
    refunds = store.case(case)
    pixel_id = store.shop["id"]
    settle(client)
    # a cancellation is one more Refund; a refund after it is the same money: none
    assert sum(r["event"] == "Refund" for r in merged(client, pixel_id)) == refunds
    amounts_only = platform in ("ecwid", "woocommerce-summaries")
    expected = (AMOUNT_ONLY if amounts_only else LINES)[case]
    got = products(client, pixel_id)
    assert set(got) == set(expected)
    for variant, (gross, by_line, without, net, units) in expected.items():
        row = got[variant]
        assert (row["gross_revenue"], row["refunded_by_line"], row["refunded_without_lines"],
                row["revenue"], row["refunded_units"]) == (
            {"USD": Decimal(gross)}, {"USD": Decimal(by_line)}, {"USD": Decimal(without)},
            {"USD": Decimal(net)}, units,
        ), (variant, case)  # fmt: skip
        assert row["refunded"] == {"USD": Decimal(by_line) + Decimal(without)}
    assert purchases_net(client, pixel_id) == Decimal(ORDER_NET[case])
