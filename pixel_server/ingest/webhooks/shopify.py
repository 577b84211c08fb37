"""Shopify order webhooks: verification and mapping (the body carries the order).

Authentication: ``X-Shopify-Hmac-SHA256`` is base64(HMAC-SHA256(app client
secret, raw body)). Idempotency: ``X-Shopify-Webhook-Id`` (the same on every
retry of one delivery). Topic: ``X-Shopify-Topic``.

Topics and rules (subscribe to ``orders/create``, ``orders/updated``,
``orders/cancelled`` and ``refunds/create``; ``orders/paid`` works too):

* ``orders/*``: the body is the order. Order id: ``id`` (a GID such as
  ``gid://shopify/Order/123`` is cut to ``123``, like the snippet does with the
  checkout's order id), so the Purchase is ``purchase:123``.
  It counts as placed when ``financial_status`` is ``pending`` (manual payment
  methods, cash on delivery), ``authorized``, ``partially_paid``, ``paid``,
  ``partially_refunded`` or ``refunded``, or when it is ``voided`` on a
  cancelled order (an authorisation released by the cancellation: the order
  had been placed). ``voided``/``expired`` on a live order do not count.
  Value and currency: ``total_price`` in ``currency`` (the shop's currency, the
  one revenue reports add up). Lines: content_id = ``sku`` else ``variant_id``,
  item_group_id = ``product_id``, content_name = ``title``, price, quantity,
  brand = ``vendor``. Buyer: ``email``, ``phone`` (else the customer's or the
  billing address's), external_id = customer id, ``browser_ip``,
  ``client_details.user_agent``, ``customer_locale``. Time: ``created_at``.
  Refunds listed in ``refunds[]`` give ``refund:<order>:<refund id>``; a
  cancelled order (``cancelled_at``) gives ``refund:<order>`` for what the
  listed refunds do not cover (e.g. a voided authorisation).
* ``refunds/create``: the body is a refund; its successful ``refund``
  transactions give ``refund:<order_id>:<id>`` (the same id as in the order's
  ``refunds[]``, so both copies collapse). A refund whose money its lines and
  shipping do not account for needs the order's lines to spread the rest: it
  is mapped from the ``orders/updated`` delivery that follows (acknowledged
  here with a note).
* Refund lines (both topics): each ``refund_line_items[]`` entry names its
  ``line_item`` (content_id derived as for the purchase line), ``quantity``
  (units returned, whatever the ``restock_type``) and ``subtotal`` (money for
  the line, after its discounts, before tax). At order level: the lines'
  ``total_tax``, shipping (``refund_shipping_lines[]`` subtotal and tax, else
  ``order_adjustments[]`` of kind ``shipping_refund``) and refunded duties.
* Other topics are acknowledged and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pixel_server.ingest.webhooks.common import (
    Buyer,
    Delivery,
    InvalidBody,
    Line,
    Mapped,
    OrderState,
    RefundEntry,
    RefundLine,
    body_hash,
    check_signature,
    header,
    items,
    money,
    obj,
    order_events,
    parse_json_object,
    refund_contents,
    refund_event,
    refund_id,
    text,
    unix_time,
)

NAME: Final = "shopify"
SIGNATURE_HEADER: Final = "X-Shopify-Hmac-SHA256"
PLACED: Final = frozenset(
    {"pending", "authorized", "partially_paid", "paid", "partially_refunded", "refunded"}
)
ORDER_TOPICS: Final = frozenset(
    {"orders/create", "orders/updated", "orders/paid", "orders/cancelled", "orders/fulfilled",
     "orders/partially_fulfilled"}
)  # fmt: skip
REFUND_TOPIC: Final = "refunds/create"


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    check_signature(header(headers, SIGNATURE_HEADER), secret, body, SIGNATURE_HEADER)


def numeric_id(value: Any) -> str:
    """``123``, ``"123"`` or ``"gid://shopify/Order/123"`` → ``"123"``."""
    raw = text(value, 256)
    if raw.startswith("gid://"):
        raw = raw.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return raw


def parse(headers: Mapping[str, str], body: bytes) -> Delivery:
    topic = (header(headers, "X-Shopify-Topic") or "").strip()
    delivery_id = (header(headers, "X-Shopify-Webhook-Id") or "").strip() or body_hash(body)
    data = parse_json_object(body)
    delivery = Delivery(delivery_id=delivery_id, topic=topic)
    if topic in ORDER_TOPICS:
        order = order_state(data)
        delivery.mapped = order_events(order)
        if not delivery.mapped.events:
            status = text(data.get("financial_status"), 64) or "none"
            delivery.note = f"order {order.order_id} not placed (financial_status {status})"
    elif topic == REFUND_TOPIC:
        delivery.mapped, delivery.note = refund_events(data)
    else:
        delivery.note = f"topic {topic or '(none)'} is not handled"
    return delivery


def order_state(order: dict[str, Any]) -> OrderState:
    order_id = numeric_id(order.get("id")) or numeric_id(order.get("admin_graphql_api_id"))
    if not order_id:
        raise InvalidBody("invalid_order", "the order has no id", "id")
    created = unix_time(order.get("created_at"))
    if created is None:
        raise InvalidBody("invalid_order", "the order has no valid created_at", "created_at")
    status = text(order.get("financial_status"), 64)
    cancelled_at = unix_time(order.get("cancelled_at"))
    currency = text(order.get("currency"), 8)
    return OrderState(
        order_id=order_id,
        placed=status in PLACED or (cancelled_at is not None and status == "voided"),
        created=created,
        value=money(order.get("total_price")),
        currency=currency,
        lines=[_line(li) for li in items(order.get("line_items")) if _quantity(li) > 0],
        buyer=_buyer(order),
        refunds=[e for r in items(order.get("refunds")) if (e := _refund_entry(r)) is not None],
        cancelled_at=cancelled_at,
    )


def refund_events(refund: dict[str, Any]) -> tuple[Mapped, str]:
    """A ``refunds/create`` body: its Refund, or why none (and a note)."""
    order_id = numeric_id(refund.get("order_id"))
    if not order_id:
        raise InvalidBody("invalid_order", "the refund has no order_id", "order_id")
    entry = _refund_entry(refund)
    mapped = Mapped()
    if entry is None:
        return mapped, "refund without money returned"
    named = sum(r.amount for r in entry.lines if r.content_id)
    unassigned = entry.amount - entry.order_level - named
    if unassigned > 0.005:
        # Spreading it needs the order's lines: orders/updated follows every refund.
        return mapped, (
            f"refund {entry.refund_id} returns {unassigned:.2f} not on named lines: "
            "mapped from the order's orders/updated delivery"
        )
    currency = next(
        (text(t.get("currency"), 8) for t in items(refund.get("transactions"))
         if t.get("currency")), "",
    )  # fmt: skip
    contents = refund_contents(entry, [])
    event = refund_event(
        order_id, entry.refund_id, entry.time, entry.amount, currency, Buyer(), contents
    )
    mapped.events.append(event)
    mapped.covered[event["event_id"]] = refund_id(order_id)
    return mapped, ""


def _refund_entry(refund: dict[str, Any]) -> RefundEntry | None:
    refund_id = numeric_id(refund.get("id"))
    time = unix_time(refund.get("created_at")) or unix_time(refund.get("processed_at"))
    amount = sum(
        money(t.get("amount")) or 0.0
        for t in items(refund.get("transactions"))
        if t.get("kind") == "refund" and t.get("status") == "success"
    )
    if not refund_id or time is None or amount <= 0:
        return None  # a restock-only refund returns no money
    lines = []
    order_level = 0.0
    for r in items(refund.get("refund_line_items")):
        item = obj(r.get("line_item"))
        quantity = _quantity(r)
        line = _line({**item, "quantity": quantity}) if item else Line("")
        subtotal = money(r.get("subtotal"))
        if subtotal is None:
            subtotal = (line.price or 0.0) * quantity
        ref = numeric_id(r.get("line_item_id")) or line.ref
        lines.append(RefundLine(line.content_id, subtotal, quantity, line.item_group_id,
                                line.name, line.price, ref, line.brand))  # fmt: skip
        order_level += money(r.get("total_tax")) or 0.0
    shipping = items(refund.get("refund_shipping_lines"))
    for s in shipping:
        order_level += _shop_money(s.get("subtotal_amount_set")) + _shop_money(
            s.get("tax_amount_set")
        )
    if not shipping:
        for a in items(refund.get("order_adjustments")):
            if a.get("kind") == "shipping_refund":  # negative: money back
                order_level -= (money(a.get("amount")) or 0.0) + (money(a.get("tax_amount")) or 0.0)
    order_level += _shop_money(refund.get("total_duties_set"))
    return RefundEntry(refund_id, round(amount, 4), time, lines=lines,
                       order_level=round(order_level, 4))  # fmt: skip


def _shop_money(value: Any) -> float:
    """The shop-currency amount of a Shopify MoneyBag (``{shop_money: {amount}}``)."""
    return money(obj(obj(value).get("shop_money")).get("amount")) or 0.0


def _quantity(line: dict[str, Any]) -> int:
    q = line.get("quantity")
    return q if isinstance(q, int) and not isinstance(q, bool) else 0


def _line(line: dict[str, Any]) -> Line:
    variant = numeric_id(line.get("variant_id"))
    return Line(
        content_id=text(line.get("sku"), 256) or variant or numeric_id(line.get("id")),
        item_group_id=numeric_id(line.get("product_id")),
        name=text(line.get("title")) or text(line.get("name")),
        price=money(line.get("price")),
        quantity=_quantity(line),
        brand=text(line.get("vendor"), 256),
        ref=numeric_id(line.get("id")),
    )


def _buyer(order: dict[str, Any]) -> Buyer:
    customer = obj(order.get("customer"))
    billing = obj(order.get("billing_address"))
    return Buyer(
        email=text(order.get("email"), 320) or text(customer.get("email"), 320),
        phone=text(order.get("phone"), 64)
        or text(customer.get("phone"), 64)
        or text(billing.get("phone"), 64),
        country=text(billing.get("country_code"), 2),
        external_id=numeric_id(customer.get("id")),
        ip=text(order.get("browser_ip"), 64),
        user_agent=text(obj(order.get("client_details")).get("user_agent"), 1024),
        locale=text(order.get("customer_locale"), 35),
    )
