"""WooCommerce order webhooks: verification and mapping (the body carries the order).

Authentication: ``X-WC-Webhook-Signature`` is base64(HMAC-SHA256(webhook
secret, raw body)). Saving a webhook in WooCommerce sends an unsigned ping whose
form-encoded body is exactly ``webhook_id=<n>``: it is answered 200 and nothing
is stored (any other unsigned request is refused). Idempotency:
``X-WC-Webhook-Delivery-ID``. Topic: ``X-WC-Webhook-Topic``.

Topics (create one webhook for ``order.created`` and one for ``order.updated``,
API version v3): the body is the REST v3 order. Rules:

* Order id: ``id`` (what the snippet's order-received page sends), so the
  Purchase is ``purchase:<id>``.
* Counts as placed when ``status`` is ``processing``, ``completed`` or
  ``on-hold`` (awaiting a bank transfer or cheque: the order exists), and also
  ``refunded`` (its refunds net it out); ``cancelled`` counts only when the
  order had been paid (``date_paid_gmt`` set), because WooCommerce cancels
  unpaid ``pending`` orders by itself when their stock hold expires. ``pending``,
  ``failed``, ``checkout-draft`` and ``trash`` do not count.
* Value and currency: ``total`` in ``currency``. Lines: content_id = ``sku``
  else ``variation_id`` else ``product_id``; item_group_id = ``product_id``;
  ``name``, ``price``, ``quantity``. Buyer: billing email and phone,
  ``customer_id`` (0 = guest: none), ``customer_ip_address``,
  ``customer_user_agent``. Time: ``date_created_gmt`` (UTC without a zone).
* ``refunds[]`` (``{id, total: "-5.00"}``) give ``refund:<id>:<refund id>``;
  a cancelled or refunded order gives ``refund:<id>`` for what they do not cover.
  Their time is ``date_modified_gmt`` of the first delivery that shows them
  (WooCommerce gives refunds no date in the order), and they are stored once.
* Refund lines: the order's refund summaries have none. For a pixel with a
  store API (base URL = the site, token = ``<consumer key>:<consumer
  secret>``, sent as HTTP Basic auth), an order that lists refunds is fetched
  in the background instead: ``GET {base}/wp-json/wc/v3/orders/{id}`` and
  ``GET {base}/wp-json/wc/v3/orders/{id}/refunds``, whose refunds carry their
  date (``date_created_gmt``, so they are no longer "learnt"), ``amount`` and
  ``line_items[]`` (negative ``quantity`` and ``total``, the order line's id
  in the ``_refunded_item_id`` meta); line tax, ``shipping_lines`` and
  ``fee_lines`` stay at order level. Without a store API the summaries'
  money is spread over the order's lines (the rule in :mod:`.common`). Keep
  to one of the two for a shop: their refunds' times differ.
"""

from __future__ import annotations

import base64
import re
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
    body_hash,
    check_signature,
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

NAME: Final = "woocommerce"
SIGNATURE_HEADER: Final = "X-WC-Webhook-Signature"
PLACED: Final = frozenset({"processing", "completed", "on-hold", "refunded"})
ENDED: Final = frozenset({"cancelled", "refunded"})
_PING: Final = re.compile(rb"webhook_id=\d{1,20}")


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """WooCommerce's unsigned test delivery, sent when a webhook is saved."""
    return header(headers, SIGNATURE_HEADER) is None and _PING.fullmatch(body.strip()) is not None


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    check_signature(header(headers, SIGNATURE_HEADER), secret, body, SIGNATURE_HEADER)


def parse(headers: Mapping[str, str], body: bytes) -> Delivery:
    topic = (header(headers, "X-WC-Webhook-Topic") or "").strip()
    delivery_id = (header(headers, "X-WC-Webhook-Delivery-ID") or "").strip() or body_hash(body)
    data = parse_json_object(body)
    delivery = Delivery(delivery_id=delivery_id, topic=topic)
    if topic not in ("order.created", "order.updated"):
        delivery.note = f"topic {topic or '(none)'} is not handled"
        return delivery
    order = order_state(data)
    delivery.mapped = order_events(order)
    if not delivery.mapped.events:
        status = text(data.get("status"), 64) or "none"
        delivery.note = f"order {order.order_id} not placed (status {status})"
    elif order.refunds:
        now = time.time()
        delivery.job_with_api = FetchJob(
            platform=NAME, pixel_id="", store="site", order_id=safe_id(order.order_id, "id"),
            delivery_id=delivery_id, topic=topic, due=now, queued_at=now,
        )  # fmt: skip
    return delivery


async def fetch(
    http: httpx.AsyncClient, pixel: Pixel, job: FetchJob, cache: MutableMapping[str, Any]
) -> Mapped:
    """The order and its refund resources (with lines) from the REST API."""
    base, token = store_api(pixel.store_api_base, pixel.store_api_token)
    auth = {"authorization": "Basic " + base64.b64encode(token.encode()).decode()}
    root = f"{base}/wp-json/wc/v3/orders/{job.order_id}"
    order = await get_json(http, root, auth)
    if not isinstance(order, dict):
        raise FetchError("bad_response", "the WooCommerce order is not a JSON object")
    state = order_state(order)
    if state.refunds:
        refunds = await get_json(http, f"{root}/refunds", auth)
        modified = unix_time(order.get("date_modified_gmt")) or state.created
        state.refunds = [e for r in items(refunds) if (e := _refund(r, modified))]
    return order_events(state)


def order_state(order: dict[str, Any]) -> OrderState:
    order_id = text(order.get("id"), 64)
    if not order_id:
        raise InvalidBody("invalid_order", "the order has no id", "id")
    created = unix_time(order.get("date_created_gmt"))
    if created is None:
        raise InvalidBody(
            "invalid_order", "the order has no valid date_created_gmt", "date_created_gmt"
        )
    status = text(order.get("status"), 64)
    paid = unix_time(order.get("date_paid_gmt")) is not None
    modified = unix_time(order.get("date_modified_gmt")) or created
    return OrderState(
        order_id=order_id,
        placed=status in PLACED or (status == "cancelled" and paid),
        created=created,
        value=money(order.get("total")),
        currency=text(order.get("currency"), 8),
        lines=[_line(li) for li in items(order.get("line_items"))],
        buyer=_buyer(order),
        refunds=[e for r in items(order.get("refunds")) if (e := _refund(r, modified))],
        cancelled_at=modified if status in ENDED else None,
        cancel_learnt=True,
    )


def _refund(refund: dict[str, Any], modified: float) -> RefundEntry | None:
    """An order's refund summary (``total``), or a refund resource (``amount``)."""
    refund_id = text(refund.get("id"), 64)
    amount = money(refund.get("amount")) if "amount" in refund else money(refund.get("total"))
    if not refund_id or amount is None or amount == 0:
        return None
    # The order's refund summary carries no date: the order's last change is
    # when we learnt of it, so the Refund is stored only the first time.
    dated = unix_time(refund.get("date_created_gmt"))
    entry = RefundEntry(refund_id, abs(amount), dated or modified, learnt=dated is None)
    for item in items(refund.get("line_items")):
        ref = next((text(m.get("value"), 64) for m in items(item.get("meta_data"))
                    if m.get("key") == "_refunded_item_id"), "")  # fmt: skip
        line = _line(item)
        entry.lines.append(RefundLine(line.content_id, abs(money(item.get("total")) or 0.0),
                                      abs(line.quantity), ref=ref))  # fmt: skip
        entry.order_level += abs(money(item.get("total_tax")) or 0.0)
    for extra in items(refund.get("shipping_lines")) + items(refund.get("fee_lines")):
        entry.order_level += abs(money(extra.get("total")) or 0.0)
        entry.order_level += abs(money(extra.get("total_tax")) or 0.0)
    return entry


def _id(value: Any) -> str:
    """WooCommerce uses 0 for "none" (no variation, guest customer)."""
    raw = text(value, 64)
    return "" if raw in ("", "0") else raw


def _line(line: dict[str, Any]) -> Line:
    product = _id(line.get("product_id"))
    quantity = line.get("quantity")
    return Line(
        content_id=text(line.get("sku"), 256) or _id(line.get("variation_id")) or product,
        item_group_id=product,
        name=text(line.get("name")),
        price=money(line.get("price")),
        quantity=quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 1,
        ref=text(line.get("id"), 64),
    )


def _buyer(order: dict[str, Any]) -> Buyer:
    billing = obj(order.get("billing"))
    return Buyer(
        email=text(billing.get("email"), 320),
        phone=text(billing.get("phone"), 64),
        country=text(billing.get("country"), 2),
        external_id=_id(order.get("customer_id")),
        ip=text(order.get("customer_ip_address"), 64),
        user_agent=text(order.get("customer_user_agent"), 1024),
    )
