"""BigCommerce order webhooks: verification, the order fetch, and mapping.

Authentication: BigCommerce does not sign callbacks; a hook created with
``POST /v3/hooks`` carries custom ``headers`` that BigCommerce echoes on every
callback. Create the hook with ``"headers": {"X-Pixel-Webhook-Secret":
"<the pixel's webhook secret>"}``; the header is compared in constant time.
Idempotency: the body's ``hash`` (the same on every retry).

Scopes: ``store/order/created``, ``store/order/updated``,
``store/order/statusUpdated`` and ``store/order/refund/created`` queue a fetch of
the order (``data.id``) from the store named by ``producer``
(``stores/<store hash>``); other scopes are acknowledged and ignored. The body
has ids only. Fetches (``base`` is ``https://api.bigcommerce.com``, header
``X-Auth-Token: <token>``):

* ``GET {base}/stores/{store_hash}/v2/orders/{id}``: the order;
* ``GET {base}/stores/{store_hash}/v2/orders/{id}/products``: its lines (only
  for an order that counts);
* ``GET {base}/stores/{store_hash}/v3/orders/{id}/payment_actions/refunds``:
  its refunds (only when ``refunded_amount`` is not zero).

Rules:

* Order id: the integer ``id`` (BODL's ``order_id``, which the snippet sends):
  the Purchase is ``purchase:<id>``.
* ``store/order/created`` fires for incomplete and declined orders too, so the
  order counts only for ``status_id`` 2 Shipped, 3 Partially Shipped,
  4 Refunded, 5 Cancelled, 7 Awaiting Payment, 8 Awaiting Pickup, 9 Awaiting
  Shipment, 10 Completed, 11 Awaiting Fulfillment, 12 Manual Verification
  Required, 13 Disputed, 14 Partially Refunded. Not for 0 Incomplete,
  1 Pending (checkout not completed) or 6 Declined (payment declined); those
  arrive again through ``statusUpdated`` once paid.
* Value and currency: ``total_inc_tax`` in ``currency_code``. Lines:
  content_id = ``sku`` else ``variant_id``; item_group_id = ``product_id``;
  ``name``, ``price_inc_tax``, ``quantity``. Buyer: billing email and phone,
  ``customer_id`` (0 = guest: none), ``ip_address``. Time: ``date_created``.
* Refunds give ``refund:<id>:<refund id>`` (``total_amount``, at ``created``);
  4 Refunded and 5 Cancelled give ``refund:<id>`` for what they do not cover,
  at ``date_modified``, stored once.
* Refund lines: ``items[]`` of ``item_type`` ``PRODUCT`` name the order line
  by ``item_id`` (the ``id`` of its row in ``/products``), with ``quantity``
  and ``requested_amount`` (else the line's ``price_inc_tax`` × quantity: the
  same basis as the purchase line). ``SHIPPING``, ``HANDLING``, ``TAX`` and
  ``GIFT_WRAPPING`` stay at order level; ``ORDER`` (an amount against the
  whole order) is money without lines.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

import httpx

from pixel_server.ingest.webhooks.common import (
    Buyer,
    Delivery,
    FetchError,
    FetchJob,
    InvalidBody,
    Line,
    Mapped,
    OrderState,
    RefundEntry,
    RefundLine,
    check_shared_secret,
    get_json,
    header,
    items,
    money,
    obj,
    order_events,
    parse_json_object,
    safe_id,
    store_api,
    text,
    unix_time,
)
from pixel_server.pixel import Pixel

NAME: Final = "bigcommerce"
SECRET_HEADER: Final = "X-Pixel-Webhook-Secret"
ORDER_SCOPES: Final = frozenset(
    {"store/order/created", "store/order/updated", "store/order/statusUpdated",
     "store/order/refund/created"}
)  # fmt: skip
PLACED: Final = frozenset({2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14})
ENDED: Final = frozenset({4, 5})


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    check_shared_secret(header(headers, SECRET_HEADER), secret, SECRET_HEADER)


def parse(headers: Mapping[str, str], body: bytes) -> Delivery:
    data = parse_json_object(body)
    scope = text(data.get("scope"), 128)
    delivery_id = text(data.get("hash"), 256)
    if not delivery_id:
        raise InvalidBody("invalid_body", "the callback has no hash", "hash", status=400)
    delivery = Delivery(delivery_id=delivery_id, topic=scope)
    if scope not in ORDER_SCOPES:
        delivery.note = f"scope {scope or '(none)'} is not handled"
        return delivery
    producer = text(data.get("producer"), 128)
    if not producer.startswith("stores/"):
        raise InvalidBody("invalid_order", "producer must be stores/<store hash>", "producer")
    now = time.time()
    delivery.job = FetchJob(
        platform=NAME,
        pixel_id="",  # filled in by the endpoint
        store=safe_id(producer.removeprefix("stores/"), "producer"),
        order_id=safe_id(obj(data.get("data")).get("id"), "data.id"),
        delivery_id=delivery_id,
        topic=scope,
        due=now,
        queued_at=now,
    )
    return delivery


async def fetch(
    http: httpx.AsyncClient, pixel: Pixel, job: FetchJob, cache: MutableMapping[str, Any]
) -> Mapped:
    base, token = store_api(pixel.store_api_base, pixel.store_api_token)
    auth = {"x-auth-token": token}
    root = f"{base}/stores/{job.store}"
    order = await get_json(http, f"{root}/v2/orders/{job.order_id}", auth)
    if not isinstance(order, dict):
        raise FetchError("bad_response", "the BigCommerce order is not a JSON object")
    state = order_state(order)
    if not state.placed:
        return Mapped()
    products = await get_json(http, f"{root}/v2/orders/{job.order_id}/products", auth)
    state.lines = [_line(p) for p in items(products)]
    if (money(order.get("refunded_amount")) or 0.0) > 0:
        refunds = await get_json(
            http, f"{root}/v3/orders/{job.order_id}/payment_actions/refunds", auth
        )
        data = items(obj(refunds).get("data"))
        state.refunds = [e for r in data if (e := _refund(r, state.lines))]
    return order_events(state)


def order_state(order: dict[str, Any]) -> OrderState:
    order_id = text(order.get("id"), 64)
    if not order_id:
        raise InvalidBody("invalid_order", "the BigCommerce order has no id", "id")
    created = unix_time(order.get("date_created"))
    if created is None:
        raise InvalidBody("invalid_order", "the order has no valid date_created", "date_created")
    status = order.get("status_id")
    modified = unix_time(order.get("date_modified")) or created
    billing = obj(order.get("billing_address"))
    customer = text(order.get("customer_id"), 64)
    return OrderState(
        order_id=order_id,
        placed=status in PLACED,
        created=created,
        value=money(order.get("total_inc_tax")),
        currency=text(order.get("currency_code"), 8),
        buyer=Buyer(
            email=text(billing.get("email"), 320),
            phone=text(billing.get("phone"), 64),
            country=text(billing.get("country_iso2"), 2),
            external_id="" if customer in ("", "0") else customer,
            ip=text(order.get("ip_address"), 64),
        ),
        cancelled_at=modified if status in ENDED else None,
        cancel_learnt=True,
    )


ORDER_LEVEL: Final = frozenset({"SHIPPING", "HANDLING", "TAX", "GIFT_WRAPPING"})


def _refund(refund: dict[str, Any], lines: list[Line]) -> RefundEntry | None:
    refund_id = text(refund.get("id"), 64)
    amount = money(refund.get("total_amount"))
    when = unix_time(refund.get("created"))
    if not refund_id or amount is None or amount == 0 or when is None:
        return None
    by_ref = {line.ref: line for line in lines}
    entry = RefundEntry(refund_id, abs(amount), when)
    for item in items(refund.get("items")):
        kind = text(item.get("item_type"), 32).upper()
        requested = money(item.get("requested_amount"))
        quantity = item.get("quantity")
        units = quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 0
        if kind in ORDER_LEVEL:
            entry.order_level += abs(requested or 0.0)
        elif kind == "PRODUCT":
            line = by_ref.get(text(item.get("item_id"), 64))
            if line is None:
                continue  # an unknown line: its money is spread with the rest
            if requested is None:
                requested = (line.price or 0.0) * units
            entry.lines.append(RefundLine(line.content_id, abs(requested), max(units, 0),
                                          ref=line.ref))  # fmt: skip
    return entry


def _line(product: dict[str, Any]) -> Line:
    variant = text(product.get("variant_id"), 64)
    quantity = product.get("quantity")
    return Line(
        content_id=text(product.get("sku"), 256) or variant or text(product.get("id"), 64),
        item_group_id=text(product.get("product_id"), 64),
        name=text(product.get("name")),
        price=money(product.get("price_inc_tax")),
        quantity=quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 1,
        ref=text(product.get("id"), 64),
    )
