"""What the platform modules share.

* The result of reading one delivery (:class:`Delivery`): events to ingest now,
  or an order to fetch later (:class:`FetchJob`), or a note saying why nothing
  is stored.
* Errors with closed reason lists, so every refusal is a metric label:
  :class:`Unauthorized` (401), :class:`InvalidBody` (400/422),
  :class:`FetchError` (a store API call that failed; retried).
* Signature checks (base64 HMAC-SHA256, constant-time comparison).
* One model of an order's state (:class:`OrderState`) and the single place that
  turns it into events (:func:`order_events`), so all four platforms follow the
  same rules:

  - an order that counts as placed gives ``Purchase`` with event id
    ``purchase:<order id>`` (the id the storefront snippet uses), time = the
    order's creation time;
  - every refund the order lists gives ``Refund`` ``refund:<order id>:<refund
    id>`` with the refunded amount as a **negative** value, time = the refund's;
  - a cancelled (or fully refunded) order gives ``Refund`` ``refund:<order id>``
    for the part of its value no listed refund covers;
  - a Refund's ``contents`` are the order lines it returns money for, each with
    the content_id (and item_group_id, name, unit price) of the purchase line,
    the units returned (0: money only) and two amounts: ``refunded``, what the
    platform assigned to the line, and ``refunded_share``, the line's part of
    money returned *without* lines (an amount-only refund, or lines that do not
    add up to the money). That unassigned remainder is the refund's money less
    its lines and the parts the platform books at order level (shipping, tax,
    fees), spread over the order's lines in proportion to what is left of
    their value (price × quantity less earlier refunds), in cents, the last
    cent to the largest fractions, and never more than is left of them.
    Shipping, tax and order-level discounts thus never land on a product.
    Without the order's lines, the remainder stays at order level;
  - a cancellation returns what is left of every line (units and value);
    refunds the order shows after its cancellation has been stored are the
    same money and are dropped (:attr:`Mapped.covered`).

  The events are derived from the order's *current state*, not from the
  transition a webhook reports, so deliveries that arrive late, twice or out of
  order converge on the same events; repeats collapse in the dedup index
  (same source, same event id, same event time).

  Where a platform gives no time for a refund or a cancellation (WooCommerce's
  refund summaries, BigCommerce's and Ecwid's last-modified dates), the time is
  when we learnt of it, which changes with every later update of the order; such
  event ids are listed in :attr:`Mapped.once` and stored only the first time
  (the delivery ledger remembers them), or a later update would add a copy
  outside the 48-hour window and net the refund twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal

import httpx
import msgspec

from pixel_server.events.names import REFUND
from pixel_server.events.normalise import normalise_phone
from pixel_server.events.schema import MAX_CONTENTS, MAX_QUANTITY

PLATFORMS: Final = ("ecwid", "bigcommerce", "shopify", "woocommerce")

RejectReason = Literal["missing_signature", "bad_signature", "no_secret"]
FetchReason = Literal[
    "not_configured", "timeout", "network", "unauthorized", "not_found", "http_error",
    "bad_response",
]  # fmt: skip

# Store and order ids end up in store API URLs: only plain tokens pass.
_SAFE_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CENT: Final = 0.005  # amounts closer than half a cent are equal


class Unauthorized(Exception):
    """The delivery's authentication failed; nothing of the body was used."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason: RejectReason = reason
        self.message = message


class InvalidBody(Exception):
    """An authenticated delivery we cannot use (malformed JSON, missing ids)."""

    def __init__(self, code: str, message: str, field: str = "", status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status


class FetchError(Exception):
    """A store API call that failed; the job is retried with backoff."""

    def __init__(self, reason: FetchReason, message: str) -> None:
        super().__init__(message)
        self.reason: FetchReason = reason
        self.message = message


class FetchJob(msgspec.Struct, frozen=True, kw_only=True):
    """An order to fetch from a store API; one record of the durable job log."""

    platform: str
    pixel_id: str
    store: str  # Ecwid storeId, BigCommerce store hash
    order_id: str
    delivery_id: str
    topic: str = ""
    attempt: int = 0  # failed attempts so far
    due: float = 0.0  # Unix seconds; not before
    queued_at: float = 0.0
    last_error: str = ""


@dataclass(slots=True)
class Mapped:
    """Events made from an order; ``once`` lists those stored only the first time;
    ``covered`` maps a refund's event id to its order's cancellation: once that
    is stored, the refund is the same money and is dropped."""

    events: list[dict[str, Any]] = field(default_factory=list)
    once: set[str] = field(default_factory=set)
    covered: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Delivery:
    """What one authenticated delivery asks for."""

    delivery_id: str  # the platform's id of this delivery, for idempotency
    topic: str
    mapped: Mapped = field(default_factory=Mapped)
    job: FetchJob | None = None
    # Instead of ``mapped``, when the pixel has a store API (base URL and token):
    # a fetch that knows more than the body (WooCommerce's refund lines).
    job_with_api: FetchJob | None = None
    note: str = ""  # why nothing is stored, when nothing is


# ---------------------------------------------------------------- signatures


def hmac_b64(secret: str, message: bytes) -> str:
    """base64(HMAC-SHA256(secret, message)): how Shopify, WooCommerce and Ecwid sign."""
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check_secret(secret: str) -> None:
    if not secret:
        raise Unauthorized(
            "no_secret",
            "this pixel has no webhook secret: set it with "
            "`pixel-server pixel update <id> --webhook-secret ...`",
        )


def check_signature(presented: str | None, secret: str, message: bytes, header: str) -> None:
    """Raise Unauthorized unless ``presented`` is the signature of ``message``."""
    check_secret(secret)
    if not presented or not presented.strip():
        raise Unauthorized("missing_signature", f"the {header} header is missing")
    expected = hmac_b64(secret, message)
    if not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise Unauthorized("bad_signature", f"the {header} signature does not match")


def check_shared_secret(presented: str | None, secret: str, header: str) -> None:
    """A secret sent as is in a header (BigCommerce's custom hook headers)."""
    check_secret(secret)
    if not presented:
        raise Unauthorized("missing_signature", f"the {header} header is missing")
    if not hmac.compare_digest(presented.strip().encode(), secret.encode()):
        raise Unauthorized("bad_signature", f"the {header} header does not match")


def body_hash(body: bytes) -> str:
    """Delivery id of last resort: identical bodies are the same delivery."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def header(headers: Mapping[str, str], name: str) -> str | None:
    return headers.get(name) or headers.get(name.lower())


# ------------------------------------------------------------- body reading


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidBody("invalid_json", f"body is not valid JSON: {exc}", status=400) from None
    if not isinstance(data, dict):
        raise InvalidBody("invalid_body", "the body must be a JSON object", status=400)
    return data


def obj(value: Any) -> dict[str, Any]:
    """A JSON object, or {} for anything else (null, missing)."""
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON array, or [] for anything else."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def text(value: Any, limit: int = 512) -> str:
    """A string or number as text, trimmed and cut to ``limit``; "" otherwise."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float | str):
        return str(value).strip()[:limit]
    return ""


def safe_id(value: Any, what: str) -> str:
    """An id that may go into a store API URL path."""
    if isinstance(value, bool):
        value = None
    out = str(value).strip() if isinstance(value, int | str) else ""
    if not _SAFE_ID.fullmatch(out):
        raise InvalidBody("invalid_order", f"{what} must be a plain id, got {value!r}", what)
    return out


def money(value: Any) -> float | None:
    """A price as the platforms send it ("59.90", 59.9, 5990 is not cents)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return None
    return round(amount, 4) if math.isfinite(amount) else None


def unix_time(value: Any, naive_is_utc: bool = True) -> float | None:
    """Seconds since the epoch from the shapes the platforms use: Unix seconds,
    ISO 8601 (Shopify; WooCommerce's ``*_gmt`` fields, which carry no zone),
    RFC 2822 (BigCommerce v2) and ``2024-05-01 10:00:00 +0000`` (Ecwid)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) and value > 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip()
    parsed: datetime | None = None
    for attempt in (raw, raw.replace(" +", "+").replace(" -", "-")):
        try:
            parsed = datetime.fromisoformat(attempt.replace("Z", "+00:00"))
            break
        except ValueError:
            continue
    if parsed is None:
        try:
            parsed = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            return None
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# ---------------------------------------------------------------- store APIs


def store_api(base: str, token: str) -> tuple[str, str]:
    """The pixel's store API base URL and token, or a FetchError naming the setting."""
    if not base or not token:
        raise FetchError(
            "not_configured",
            "the pixel has no store API base URL or token: set them with `pixel-server pixel "
            "update <id> --store-api-base ... --store-api-token ...`",
        )
    return base.rstrip("/"), token


async def get_json(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Any:
    """GET a store API resource; every failure is a FetchError with a closed reason.
    204 No Content (BigCommerce's empty lists) is None."""
    where = f"GET {url}"  # URLs hold ids only; tokens travel in headers
    try:
        response = await http.get(url, headers={"accept": "application/json", **headers})
    except httpx.TimeoutException:
        raise FetchError("timeout", f"{where}: timed out") from None
    except httpx.HTTPError as exc:
        raise FetchError("network", f"{where}: {type(exc).__name__}: {exc}") from None
    status = response.status_code
    if status in (401, 403):
        raise FetchError("unauthorized", f"{where}: {status}: the store API refused the token")
    if status == 404:
        raise FetchError("not_found", f"{where}: 404 (not visible yet, or deleted)")
    if status == 204:
        return None
    if status != 200:
        raise FetchError("http_error", f"{where}: answered {status}")
    try:
        return response.json()
    except ValueError:
        raise FetchError("bad_response", f"{where}: the answer is not JSON") from None


# ------------------------------------------------------------ order model


@dataclass(slots=True)
class Line:
    """One order line, as event ``contents``: content_id is the variant SKU
    (else the variant id), item_group_id the product id — what the snippet sends."""

    content_id: str
    item_group_id: str = ""
    name: str = ""
    price: float | None = None
    quantity: int = 1
    brand: str = ""
    ref: str = ""  # the platform's id of the order line, which refunds name


@dataclass(slots=True)
class Buyer:
    """The shopper, raw: the ingest pipeline hashes email, phone and external id."""

    email: str = ""
    phone: str = ""
    country: str = ""  # ISO 3166 alpha-2 of the billing address: the phone's region
    external_id: str = ""
    ip: str = ""
    user_agent: str = ""
    locale: str = ""


@dataclass(slots=True)
class RefundLine:
    """Money a refund returns for one order line (positive), as the platform
    assigned it; ``content_id`` is derived the way the purchase line's is."""

    content_id: str
    amount: float
    quantity: int = 0  # units returned
    item_group_id: str = ""
    name: str = ""
    price: float | None = None
    ref: str = ""  # the order line's id, when the refund names it that way
    brand: str = ""


@dataclass(slots=True)
class RefundEntry:
    refund_id: str
    amount: float  # positive: money given back
    time: float
    learnt: bool = False  # ``time`` is when we learnt of it, not the platform's date
    lines: list[RefundLine] = field(default_factory=list)
    order_level: float = 0.0  # shipping, tax, fees: never a product's


@dataclass(slots=True)
class _Left:
    """What is left of one order line: units and value, in cents."""

    line: Line
    units: int
    cents: int


@dataclass(slots=True)
class OrderState:
    order_id: str
    placed: bool  # counts as a Purchase (the platform module's rule)
    created: float
    value: float | None
    currency: str
    lines: list[Line] = field(default_factory=list)
    buyer: Buyer = field(default_factory=Buyer)
    refunds: list[RefundEntry] = field(default_factory=list)
    cancelled_at: float | None = None  # cancelled or fully refunded: net what is left
    cancel_learnt: bool = False  # ``cancelled_at`` is a last-modified date


def purchase_id(order_id: str) -> str:
    return f"purchase:{order_id}"


def refund_id(order_id: str, refund: str = "") -> str:
    return f"refund:{order_id}:{refund}" if refund else f"refund:{order_id}"


def order_events(order: OrderState) -> Mapped:
    """The events an order's current state stands for (rules in the module docstring)."""
    mapped = Mapped()
    if not order.placed:
        return mapped
    user = _user(order.buyer)
    events = mapped.events = [
        _event(
            "Purchase",
            purchase_id(order.order_id),
            order.created,
            user,
            {
                "value": order.value,
                "currency": order.currency,
                "order_id": order.order_id,
                "content_type": "product" if order.lines else None,
                "contents": [_content(line) for line in order.lines[:MAX_CONTENTS]] or None,
            },
        )
    ]
    left = [_Left(line, line.quantity, _cents((line.price or 0.0) * line.quantity))
            for line in order.lines[:MAX_CONTENTS]]  # fmt: skip
    refunded = 0.0
    cancel = refund_id(order.order_id)
    for entry in order.refunds:
        if entry.amount > _CENT:
            refunded += entry.amount
            contents = refund_contents(entry, left)
            events.append(
                refund_event(
                    order.order_id,
                    entry.refund_id,
                    entry.time,
                    entry.amount,
                    order.currency,
                    order.buyer,
                    contents,
                )
            )
            if entry.learnt:
                mapped.once.add(events[-1]["event_id"])
            mapped.covered[events[-1]["event_id"]] = cancel
    if order.cancelled_at is not None and order.value is not None:
        rest = round(order.value - refunded, 4)
        if rest > _CENT:
            contents = [
                _refund_content(x.line, x.units, x.cents, 0) for x in left if x.units or x.cents
            ]
            events.append(
                refund_event(
                    order.order_id,
                    "",
                    order.cancelled_at,
                    rest,
                    order.currency,
                    order.buyer,
                    contents,
                )
            )
            mapped.once.add(cancel)  # its amount depends on the refunds listed so far
    return mapped


def refund_contents(entry: RefundEntry, left: list[_Left]) -> list[dict[str, Any]]:
    """The refund's lines (rules in the module docstring); updates ``left``."""
    by_id = {x.line.content_id: x for x in left}
    by_ref = {x.line.ref: x for x in left if x.line.ref}
    assigned: dict[str, list[int]] = {}  # content_id -> [units, cents by line, cents shared]
    extra: list[RefundLine] = []  # lines the order (as known here) does not list
    budget = max(_cents(entry.amount - entry.order_level), 0)
    line_cents = [max(_cents(r.amount), 0) for r in entry.lines]
    if sum(line_cents) > budget:  # the lines exceed the money: scale them to it
        line_cents = _spread(budget, line_cents) if budget else [0] * len(line_cents)
    used = 0
    for refund_line, cents in zip(entry.lines, line_cents, strict=True):
        target = by_ref.get(refund_line.ref) or by_id.get(refund_line.content_id)
        if target is None and not refund_line.content_id:
            continue  # a line we cannot name: its money is spread with the rest
        if target is None:
            extra.append(RefundLine(**{**_fields(refund_line), "amount": cents / 100}))
            used += cents
            continue
        units, cents = min(refund_line.quantity, target.units), min(cents, target.cents)
        target.units -= units
        target.cents -= cents
        used += cents
        row = assigned.setdefault(target.line.content_id, [0, 0, 0])
        row[0] += units
        row[1] += cents
    remainder = budget - used
    weights = [max(x.cents, 0) for x in left]
    if remainder > 0 and sum(weights) > 0:
        # Never more than is left of the lines: the rest stays at order level.
        spread = _spread(min(remainder, sum(weights)), weights)
        for x, share in zip(left, spread, strict=True):
            if share:
                x.cents = max(x.cents - share, 0)
                assigned.setdefault(x.line.content_id, [0, 0, 0])[2] += share
    contents = [
        _refund_content(x.line, *assigned[x.line.content_id])
        for x in left
        if x.line.content_id in assigned
    ]
    for r in extra:
        line = Line(r.content_id, r.item_group_id, r.name, r.price, r.quantity, r.brand)
        contents.append(_refund_content(line, r.quantity, _cents(r.amount), 0))
    return contents[:MAX_CONTENTS]


def _fields(line: RefundLine) -> dict[str, Any]:
    return {name: getattr(line, name) for name in RefundLine.__dataclass_fields__}


def _cents(amount: float) -> int:
    return round(amount * 100)


def _spread(total: int, weights: list[int]) -> list[int]:
    """``total`` cents in proportion to ``weights``; the cents rounding leaves
    go to the largest fractions (earlier lines first on ties)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    shares = [math.floor(e) for e in exact]
    by_fraction = sorted(range(len(weights)), key=lambda i: (shares[i] - exact[i], i))
    for i in by_fraction[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _refund_content(line: Line, units: int, by_line: int, shared: int) -> dict[str, Any]:
    content = _content(line)
    content["quantity"] = min(max(units, 0), MAX_QUANTITY)
    content["refunded"] = by_line / 100
    content["refunded_share"] = shared / 100
    return content


def refund_event(
    order_id: str,
    refund: str,
    time: float,
    amount: float,
    currency: str,
    buyer: Buyer,
    contents: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Refund: the amount given back as a negative value, so that summing
    ``value`` over Purchase and Refund events nets revenue; ``contents``, the
    lines it returns money for (:func:`refund_contents`)."""
    return _event(
        REFUND,
        refund_id(order_id, refund),
        time,
        _user(buyer),
        {
            "value": -abs(amount),
            "currency": currency,
            "order_id": order_id,
            "content_type": "product" if contents else None,
            "contents": contents or None,
        },
    )


def _event(
    name: str, event_id: str, time: float, user: dict[str, str], props: dict[str, Any]
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event": name,
        "event_id": event_id,
        "event_time": time,
        "properties": {k: v for k, v in props.items() if v not in (None, "")},
    }
    if user:
        event["user"] = user
    return event


def _content(line: Line) -> dict[str, Any]:
    content: dict[str, Any] = {
        "content_id": line.content_id[:256],
        "quantity": min(max(line.quantity, 1), MAX_QUANTITY),
    }
    if line.item_group_id:
        content["item_group_id"] = line.item_group_id[:256]
    if line.name:
        content["content_name"] = line.name[:512]
    if line.brand:
        content["brand"] = line.brand[:256]
    if line.price is not None and line.price >= 0:
        content["price"] = line.price
    return content


# Longer values would fail the event schema and lose the whole event: drop them.
_USER_LIMITS: Final = {"email": 320, "phone": 64, "external_id": 256, "ip": 64,
                       "user_agent": 1024, "locale": 35}  # fmt: skip


def _user(buyer: Buyer) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, limit in _USER_LIMITS.items():
        value: str = getattr(buyer, name)
        if value and len(value) <= limit:
            out[name] = value
    if out.get("phone") and len(buyer.country) == 2:
        # A number written the local way ("0221 1234567") is read in the buyer's
        # country, not the pixel's default region; E.164 then passes as is.
        out["phone"] = normalise_phone(out["phone"], buyer.country.upper()) or out["phone"]
    return out
