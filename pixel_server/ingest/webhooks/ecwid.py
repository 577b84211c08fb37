"""Ecwid order webhooks: verification, the order fetch, and mapping.

Authentication: ``X-Ecwid-Webhook-Signature`` is
base64(HMAC-SHA256(app client secret, "{eventCreated}.{eventId}")). The two
signed values are inside the body, so the body is parsed for those two fields
only, the signature checked, and only then is anything else read. The
signature does not cover the rest of the body: we take nothing from it but the
store and order ids, and fetch the order itself with the store's token, so a
replayed signature cannot inject order data. Idempotency: ``eventId``.

Events (the app's webhook settings): ``order.created`` and ``order.updated``
queue a fetch of the order; other event types are acknowledged and ignored.

The order (``GET {base}/api/v3/{storeId}/orders/{orderId}`` with
``Authorization: Bearer <token>``; ``base`` is ``https://app.ecwid.com``) has
no currency: it is the store's, from ``GET {base}/api/v3/{storeId}/profile``
(``formatsAndUnits.currency``), cached for an hour. Rules:

* Order id: ``vendorOrderNumber`` (the order number shoppers see, with the
  store's prefix/suffix), else ``id``, else ``orderNumber`` — the same value as
  the storefront's ``Ecwid.OnOrderPlaced`` ``order.vendorNumber``, which the
  snippet sends, so the Purchase is ``purchase:<vendorOrderNumber>``.
* Counts as placed when ``paymentStatus`` is ``PAID`` or ``AWAITING_PAYMENT``
  (offline payment: the order is placed and the storefront fired
  OnOrderPlaced), and also ``PARTIALLY_REFUNDED``, ``REFUNDED`` and
  ``CANCELLED`` (their refunds net it out). ``INCOMPLETE`` (payment not
  finished at the gateway) does not count.
* Value: ``total``. Lines: content_id = ``sku`` else ``productId``;
  item_group_id = ``productId``; ``name``, ``price``, ``quantity``. Buyer:
  ``email``, billing (else shipping) phone, ``customerId``, ``ipAddress``.
  Time: ``createTimestamp`` (else ``createDate``).
* ``refunds[]`` (``{date, amount, ...}``, no ids) give ``refund:<id>:<n>``
  (1-based position in the list, which only grows); a ``REFUNDED`` or
  ``CANCELLED`` order gives ``refund:<id>`` for what they do not cover, at
  ``updateTimestamp``, stored once. Ecwid's refunds name no lines (only an
  amount; the order's ``refundedAmount`` is their sum): their money is spread
  over the order's lines (the rule in :mod:`.common`), never beyond what is
  left of them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

import httpx
import msgspec

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
    Unauthorized,
    check_secret,
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

NAME: Final = "ecwid"
SIGNATURE_HEADER: Final = "X-Ecwid-Webhook-Signature"
ORDER_EVENTS: Final = frozenset({"order.created", "order.updated"})
PLACED: Final = frozenset(
    {"PAID", "AWAITING_PAYMENT", "PARTIALLY_REFUNDED", "REFUNDED", "CANCELLED"}
)
ENDED: Final = frozenset({"REFUNDED", "CANCELLED"})
PROFILE_TTL: Final = 3600.0


class _Signed(msgspec.Struct, rename="camel"):
    """The only fields read before the signature is checked."""

    event_id: str
    event_created: int | str


_SIGNED: Final = msgspec.json.Decoder(_Signed)


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    check_secret(secret)
    presented = header(headers, SIGNATURE_HEADER)
    if not presented:
        raise Unauthorized("missing_signature", f"the {SIGNATURE_HEADER} header is missing")
    try:
        signed = _SIGNED.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidBody("invalid_body", f"not an Ecwid webhook: {exc}", status=400) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidBody("invalid_json", f"body is not valid JSON: {exc}", status=400) from None
    message = f"{signed.event_created}.{signed.event_id}".encode()
    check_signature(presented, secret, message, SIGNATURE_HEADER)


def parse(headers: Mapping[str, str], body: bytes) -> Delivery:
    data = parse_json_object(body)
    event_type = text(data.get("eventType"), 64)
    delivery = Delivery(delivery_id=text(data.get("eventId"), 256), topic=event_type)
    if event_type not in ORDER_EVENTS:
        delivery.note = f"event type {event_type or '(none)'} is not handled"
        return delivery
    details = obj(data.get("data"))
    now = time.time()
    delivery.job = FetchJob(
        platform=NAME,
        pixel_id="",  # filled in by the endpoint
        store=safe_id(data.get("storeId"), "storeId"),
        order_id=safe_id(details.get("orderId") or data.get("entityId"), "data.orderId"),
        delivery_id=delivery.delivery_id,
        topic=event_type,
        due=now,
        queued_at=now,
    )
    return delivery


async def fetch(
    http: httpx.AsyncClient, pixel: Pixel, job: FetchJob, cache: MutableMapping[str, Any]
) -> Mapped:
    base, token = store_api(pixel.store_api_base, pixel.store_api_token)
    auth = {"authorization": f"Bearer {token}"}
    order = await get_json(http, f"{base}/api/v3/{job.store}/orders/{job.order_id}", auth)
    if not isinstance(order, dict):
        raise FetchError("bad_response", "the Ecwid order is not a JSON object")
    state = order_state(order, "")
    if not state.placed:
        return Mapped()
    state.currency = await _store_currency(http, base, job.store, auth, cache)
    return order_events(state)


async def _store_currency(
    http: httpx.AsyncClient,
    base: str,
    store: str,
    auth: dict[str, str],
    cache: MutableMapping[str, Any],
) -> str:
    key = f"{base}|{store}"
    cached = cache.get(key)
    if cached is not None and cached[1] > time.monotonic():
        return str(cached[0])
    profile = await get_json(http, f"{base}/api/v3/{store}/profile", auth)
    currency = text(obj(obj(profile).get("formatsAndUnits")).get("currency"), 8)
    cache[key] = (currency, time.monotonic() + PROFILE_TTL)
    return currency


def order_state(order: dict[str, Any], currency: str) -> OrderState:
    order_id = (
        text(order.get("vendorOrderNumber"), 64)
        or text(order.get("id"), 64)
        or text(order.get("orderNumber"), 64)
    )
    if not order_id:
        raise InvalidBody("invalid_order", "the Ecwid order has no id", "id")
    created = unix_time(order.get("createTimestamp")) or unix_time(order.get("createDate"))
    if created is None:
        raise InvalidBody("invalid_order", "the Ecwid order has no creation time", "createDate")
    status = text(order.get("paymentStatus"), 64).upper()
    updated = unix_time(order.get("updateTimestamp")) or unix_time(order.get("updateDate"))
    return OrderState(
        order_id=order_id,
        placed=status in PLACED,
        created=created,
        value=money(order.get("total")),
        currency=currency,
        lines=[_line(i) for i in items(order.get("items"))],
        buyer=_buyer(order),
        refunds=[e for n, r in enumerate(items(order.get("refunds")), 1) if (e := _refund(n, r))],
        cancelled_at=(updated or created) if status in ENDED else None,
        cancel_learnt=True,
    )


def _refund(position: int, refund: dict[str, Any]) -> RefundEntry | None:
    amount = money(refund.get("amount"))
    when = unix_time(refund.get("date"))
    if amount is None or amount == 0 or when is None:
        return None
    return RefundEntry(str(position), abs(amount), when)


def _line(item: dict[str, Any]) -> Line:
    product = text(item.get("productId"), 64)
    quantity = item.get("quantity")
    return Line(
        content_id=text(item.get("sku"), 256) or product or text(item.get("id"), 64),
        item_group_id=product,
        name=text(item.get("name")),
        price=money(item.get("price")),
        quantity=quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 1,
    )


def _buyer(order: dict[str, Any]) -> Buyer:
    billing = obj(order.get("billingPerson"))
    shipping = obj(order.get("shippingPerson"))
    person = billing if billing.get("phone") else shipping
    return Buyer(
        email=text(order.get("email"), 320),
        phone=text(person.get("phone"), 64),
        country=text(person.get("countryCode"), 2),
        external_id=text(order.get("customerId"), 64),
        ip=text(order.get("ipAddress"), 64),
    )
