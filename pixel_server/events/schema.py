"""The event schema: decode and validate one event, or a request body, in one pass.

Everything here runs per event on the hot path, so it is built on msgspec
Structs decoded straight from bytes by module-level decoders (see
``docs/benchmarks.md`` for the measurement behind that choice).

Three request shapes reach the server:

* ``POST /collect`` (browser): one event object, which may carry ``pixel_id``,
  or ``{"pixel_id": ..., "events": [...]}`` — :func:`decode_collect_body`.
* ``POST /api/v1/events`` (store back end): TikTok's Events API 2.0 body —
  :func:`decode_api_body`.
* each event of either — :func:`decode_event`, which returns an :class:`Event`.

Rules worth knowing:

* Unknown keys are ignored at the event level and inside ``user``, ``page``
  and ``contents[]`` (forward compatibility), but **kept** inside
  ``properties``: they become :attr:`Properties.custom`, a dict of JSON values,
  capped by :class:`Limits` (count of keys, size when re-encoded as JSON).
* ``properties.value`` is never negative, except in a ``Refund`` from the
  ``webhook`` source, which carries the refunded amount as a negative number.
* Identifiers (``event_id``, ``order_id``, ``content_id``, ``item_group_id``)
  may be sent as JSON integers — store platforms number their products and
  orders — and are kept as decimal strings, which is what TikTok requires.
* ``event_time`` is Unix seconds (int or float) or an ISO-8601 string with a
  timezone; absent means "now" (the caller's clock). It must lie within
  ``future_skew_s`` of now and not be older than the horizon for its source.
* Every failure is an :class:`EventError` with a code from :data:`ERROR_CODES`
  and a field path such as ``data[3].properties.contents[0].price``.

PII (email, phone, external_id) is decoded raw here; ``normalise.hash_user``
hashes it before anything is stored or forwarded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec
from msgspec import Meta

from pixel_server.events.names import CUSTOM_EVENT_PATTERN, REFUND, canonical_event_name

__all__ = [
    "ERROR_CODES",
    "ISO_4217_CODES",
    "KNOWN_PROPERTY_KEYS",
    "ApiEnvelope",
    "Content",
    "ErrorCode",
    "Event",
    "EventError",
    "EventInput",
    "Limits",
    "Page",
    "Properties",
    "PropertiesInput",
    "Source",
    "User",
    "decode_api_body",
    "decode_collect_body",
    "decode_envelope",
    "decode_event",
    "decode_json",
    "event_json_schema",
]

# --------------------------------------------------------------------------- errors

ErrorCode = Literal[
    "invalid_json",
    "invalid_body",
    "invalid_field",
    "missing_field",
    "too_many_events",
    "event_too_old",
    "event_in_future",
    "invalid_event_name",
    "properties_too_large",
]
#: The closed set of :attr:`EventError.code` values.
ERROR_CODES: Final[frozenset[str]] = frozenset(ErrorCode.__args__)  # type: ignore[attr-defined]


class EventError(Exception):
    """A request body or an event that cannot be accepted.

    ``code`` is one of :data:`ERROR_CODES` (stable, for metrics and clients),
    ``message`` is for humans, ``field`` is the path of the offending value
    (``""`` for the body as a whole).
    """

    def __init__(self, code: ErrorCode, message: str, field: str = "") -> None:
        super().__init__(f"{code}: {message}" + (f" (at {field})" if field else ""))
        self.code: ErrorCode = code
        self.message: str = message
        self.field: str = field

    def __repr__(self) -> str:
        return f"EventError(code={self.code!r}, message={self.message!r}, field={self.field!r})"


# ----------------------------------------------------------------------- limits

Source = Literal["browser", "server", "webhook"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Time window and size caps applied by :func:`decode_event`; built from config."""

    browser_horizon_s: float = 86_400.0  # browsers send at once: 1 day is generous
    server_horizon_s: float = 7 * 86_400.0  # back ends and webhooks retry for days
    future_skew_s: float = 300.0  # clients' clocks run fast
    max_custom_properties: int = 50
    max_custom_properties_bytes: int = 4096  # custom properties re-encoded as JSON

    def horizon_s(self, source: Source) -> float:
        """How old an event from ``source`` may be, in seconds."""
        return self.browser_horizon_s if source == "browser" else self.server_horizon_s


DEFAULT_LIMITS: Final = Limits()

# ---------------------------------------------------------------- field types

# Bounds on every string and list: a request is bounded by the server's body
# limit, but each value is stored in ClickHouse and sent on to TikTok.
MAX_CONTENTS: Final = 200
MAX_QUANTITY: Final = 100_000
MAX_PII_VALUES: Final = 10
MAX_EVENT_TIME: Final = 1e11  # seconds; larger numbers are milliseconds sent by mistake

#: ISO 4217 list one (active codes): Debian iso-codes 4.15, updated for 2023–2025
#: (HRK withdrawn, ZWG and XCG added), minus XTS (testing) and XXX (no currency),
#: which never price an order.
ISO_4217_CODES: Final[frozenset[str]] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV
    BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE
    CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD
    HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD
    KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV
    MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB
    RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF
    XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL
    """.split()  # noqa: SIM905 - a block of codes reads like the standard's table
)

_HEX64_HINT = "raw, or already SHA-256 hex (64 characters, not hashed again)"

Email = Annotated[str, Meta(max_length=320)]
Phone = Annotated[str, Meta(max_length=64)]
ExternalId = Annotated[str, Meta(max_length=256)]
EmailField = (
    Email
    | Annotated[
        list[Email],
        Meta(max_length=MAX_PII_VALUES, description=f"Email address(es), {_HEX64_HINT}."),
    ]
    | None
)
PhoneField = (
    Phone
    | Annotated[
        list[Phone],
        Meta(max_length=MAX_PII_VALUES, description=f"Phone number(s), {_HEX64_HINT}."),
    ]
    | None
)
ExternalIdField = (
    ExternalId
    | Annotated[
        list[ExternalId],
        Meta(max_length=MAX_PII_VALUES, description=f"Store customer id(s), {_HEX64_HINT}."),
    ]
    | None
)
# An identifier sent as a JSON integer is kept as its decimal string.
Identifier = Annotated[str, Meta(max_length=256)] | int
NonNegativeNumber = Annotated[float, Meta(ge=0.0)]  # JSON has no NaN/Infinity; 1e400 is rejected
# ``value`` is non-negative too, except a Refund from a store webhook (the refunded
# amount as a negative value, so summing Purchase and Refund values nets revenue):
# the sign needs the event name and source, so it is checked in decode_event.
SignedValue = Annotated[float, Meta(extra_json_schema={"minimum": 0.0})]
Quantity = Annotated[int, Meta(ge=1, le=MAX_QUANTITY)]
CurrencyCode = Annotated[
    str,
    Meta(
        min_length=3,
        max_length=3,
        description="ISO 4217 currency code, uppercase (e.g. USD, EUR).",
        # Membership is checked in code; the schema lists the codes for clients.
        extra_json_schema={"pattern": "^[A-Z]{3}$", "enum": sorted(ISO_4217_CODES)},
    ),
]
# Checked in code (_check_page): msgspec's regex costs ~1 µs per event, a third
# of the whole decode; the pattern is for the JSON Schema.
URL_PATTERN: Final = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+"
_URL_HEAD: Final = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]")  # match(): a prefix is enough
HttpUrl = Annotated[
    str,
    Meta(
        max_length=2048,
        description="Absolute http(s) URL.",
        extra_json_schema={"pattern": URL_PATTERN},
    ),
]
EventTime = (
    Annotated[
        float,
        # The bound is checked in code, for a message that says "milliseconds".
        Meta(description="Unix time in seconds.", extra_json_schema={"maximum": MAX_EVENT_TIME}),
    ]
    | Annotated[datetime, Meta(tz=True, description="ISO-8601 date-time with a timezone.")]
)


Text35 = Annotated[str, Meta(max_length=35)]
Text64 = Annotated[str, Meta(max_length=64)]
Text128 = Annotated[str, Meta(max_length=128)]
Text256 = Annotated[str, Meta(max_length=256)]
Text512 = Annotated[str, Meta(max_length=512)]
Text1024 = Annotated[str, Meta(max_length=1024)]
Text2048 = Annotated[str, Meta(max_length=2048)]


# ------------------------------------------------------------- shared Structs


class User(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """Who did it. Email, phone and external_id are hashed before storage."""

    email: EmailField = None
    phone: PhoneField = None
    external_id: ExternalIdField = None
    ttclid: Text512 | None = None
    ttp: Text256 | None = None
    locale: Text35 | None = None
    anonymous_id: Text128 | None = None
    ip: Text64 | None = None
    user_agent: Text1024 | None = None


class Content(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """One product (or variant) line of an event."""

    content_id: Identifier | None = None
    item_group_id: Identifier | None = None
    content_name: Text512 | None = None
    content_category: Text256 | None = None
    brand: Text256 | None = None
    price: NonNegativeNumber | None = None
    quantity: Quantity | None = None


class Page(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """The page the event happened on."""

    url: HttpUrl
    referrer: Text2048 = ""


# ----------------------------------------------------------- input Structs


class PropertiesInput(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """Event properties. Keys not listed here are kept as custom properties."""

    contents: Annotated[list[Content], Meta(max_length=MAX_CONTENTS)] | None = None
    content_type: Literal["product", "product_group"] | None = None
    value: SignedValue | None = None
    currency: CurrencyCode | None = None
    order_id: Identifier | None = None
    query: Text512 | None = None
    description: Text1024 | None = None


#: Property keys with a meaning of their own; every other key is custom.
KNOWN_PROPERTY_KEYS: Final[frozenset[str]] = frozenset(PropertiesInput.__struct_fields__)


# Same fields, but an unknown key fails the decode: the fast path for the common
# case of no custom properties (see _decode_sent).
class _PropertiesStrict(PropertiesInput, forbid_unknown_fields=True):
    pass


class EventInput(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One event as a client sends it (a browser, a store back end, a webhook)."""

    event: Annotated[
        str,
        Meta(
            max_length=256,
            description=(
                "Event name: a TikTok standard event (Purchase, AddToCart, ...), ViewCategory, "
                "PageView, Refund, a legacy name (CompletePayment, SubmitForm, PlaceAnOrder, "
                "ClickButton), or a custom name matching " + CUSTOM_EVENT_PATTERN + ". "
                "Known names match case-insensitively."
            ),
            extra_json_schema={"pattern": CUSTOM_EVENT_PATTERN},
        ),
    ]
    event_id: Annotated[str, Meta(max_length=128)] | int | None = None
    event_time: EventTime | None = None
    user: User | None = None
    properties: PropertiesInput | None = None
    page: Page | None = None
    consent: Literal["granted", "denied"] | None = None
    limited_data_use: bool = False


class _EventFast(EventInput, frozen=True, kw_only=True, gc=False):
    properties: _PropertiesStrict | None = None  # type: ignore[assignment]


class _EventSlow(EventInput, frozen=True, kw_only=True, gc=False):
    properties: dict[str, Any] | None = None  # type: ignore[assignment]


# ----------------------------------------------------------- output Structs


class Properties(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """Validated properties; ``custom`` holds the unknown keys (JSON values) or None."""

    contents: list[Content] | None = None
    content_type: Literal["product", "product_group"] | None = None
    value: float | None = None
    currency: str | None = None
    order_id: str | None = None
    query: str | None = None
    description: str | None = None
    custom: dict[str, Any] | None = None


class Event(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A validated event, the result of :func:`decode_event`."""

    event: str  # canonical name
    received_event: str  # the name as sent, for audit
    event_time: float  # Unix seconds
    event_id: str | None = None
    user: User = User()
    properties: Properties = Properties()
    page: Page | None = None
    consent: Literal["granted", "denied"] | None = None
    limited_data_use: bool = False


class ApiEnvelope(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """TikTok Events API 2.0 request body; ``data`` still holds undecoded events."""

    event_source: Literal["web"]
    event_source_id: Annotated[str, Meta(min_length=1, max_length=64)]
    data: Annotated[list[msgspec.Raw], Meta(min_length=1)]
    test_event_code: Text64 | None = None
    partner_name: Text64 | None = None


class _CollectBody(msgspec.Struct, gc=False):
    pixel_id: Text64 | None = None
    events: list[msgspec.Raw] | None = None
    event: msgspec.Raw = msgspec.Raw()  # only to tell a single event from a batch


# ------------------------------------------------------------------ decoders

_EVENT_FAST: Final = msgspec.json.Decoder(_EventFast)
_EVENT_SLOW: Final = msgspec.json.Decoder(_EventSlow)
_COLLECT: Final = msgspec.json.Decoder(_CollectBody)
_API: Final = msgspec.json.Decoder(ApiEnvelope)
_ENCODER: Final = msgspec.json.Encoder()

_EMPTY_USER: Final = User()
_EMPTY_PROPERTIES: Final = Properties()
_T = TypeVar("_T")

# ------------------------------------------------------------ error mapping

_MISSING_RE: Final = re.compile(r"Object missing required field `([^`]*)`")
_PATH_MARK: Final = " - at `"
_MAX_MESSAGE: Final = 300
# msgspec raises UnicodeDecodeError for invalid UTF-8 inside a string and
# RecursionError for deep nesting; both mean "not JSON we can read".
_MALFORMED: Final = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def _join(prefix: str, path: str) -> str:
    """Join a caller's prefix (``data[3]``) and a msgspec path tail (``.user.ip``)."""
    if not prefix:
        return path.removeprefix(".")
    return prefix + path


def _validation_error(exc: msgspec.ValidationError, prefix: str) -> EventError:
    """Turn msgspec's ``... - at `$.a.b[0]` `` into an EventError with a field path."""
    text, mark, path = str(exc).rpartition(_PATH_MARK)
    if mark:
        tail = path.removesuffix("`").removeprefix("$")
    else:
        text, tail = str(exc), ""
    field = _join(prefix, tail)
    missing = _MISSING_RE.match(text)
    if missing:
        name = missing.group(1)
        return EventError(
            "missing_field", f"missing required field {name!r}", _join(field, "." + name)
        )
    if len(text) > _MAX_MESSAGE:  # messages may quote the offending value
        text = text[: _MAX_MESSAGE - 3] + "..."
    return EventError("invalid_field", text, field)


def _decode(decoder: msgspec.json.Decoder[_T], data: bytes | msgspec.Raw, prefix: str) -> _T:
    """Decode with one decoder, mapping every failure to an EventError."""
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc, prefix) from None
    except _MALFORMED as exc:
        raise _malformed(exc, prefix) from None


def _malformed(exc: BaseException, prefix: str) -> EventError:
    if isinstance(exc, RecursionError):
        return EventError("invalid_json", "JSON nested too deeply", prefix)
    return EventError("invalid_json", f"malformed JSON: {exc}", prefix)


# ----------------------------------------------------------------- envelopes


def decode_collect_body(
    body: bytes, *, max_events: int = 50
) -> tuple[str | None, list[msgspec.Raw]]:
    """Split a browser ``/collect`` body into (pixel_id or None, raw events).

    The body is one event object (optionally with ``pixel_id``) or
    ``{"pixel_id": ..., "events": [...]}`` with 1..max_events events.
    """
    parsed = _decode_envelope(_COLLECT, body)
    if parsed.events is None:
        return parsed.pixel_id, [msgspec.Raw(body)]
    if len(parsed.event):
        raise EventError("invalid_body", "a body has either 'event' or 'events', not both")
    count = len(parsed.events)
    if count == 0:
        raise EventError("invalid_body", "'events' is empty", "events")
    if count > max_events:
        raise EventError(
            "too_many_events", f"{count} events in one body; at most {max_events}", "events"
        )
    return parsed.pixel_id, parsed.events


def decode_api_body(body: bytes, *, max_events: int = 1000) -> ApiEnvelope:
    """Decode a TikTok Events API 2.0 body (``event_source`` "web", 1..max_events events)."""
    envelope = _decode_envelope(_API, body)
    count = len(envelope.data)
    if count > max_events:
        raise EventError(
            "too_many_events", f"{count} events in one body; at most {max_events}", "data"
        )
    return envelope


def decode_envelope(decoder: msgspec.json.Decoder[_T], body: bytes) -> _T:
    """Another module's request body, with this module's error mapping."""
    return _decode_envelope(decoder, body)


def decode_json(decoder: msgspec.json.Decoder[_T], data: bytes | msgspec.Raw, prefix: str) -> _T:
    """Part of a body, failures as EventErrors with field paths under ``prefix``."""
    return _decode(decoder, data, prefix)


def _decode_envelope(decoder: msgspec.json.Decoder[_T], body: bytes) -> _T:
    """Decode a request body; a non-object body is ``invalid_body``."""
    try:
        return _decode(decoder, body, "")
    except EventError as exc:
        if exc.code == "invalid_field" and exc.field == "":
            raise EventError(
                "invalid_body", f"the body must be a JSON object: {exc.message}"
            ) from None
        raise


# --------------------------------------------------------------------- events


def decode_event(
    raw: bytes | msgspec.Raw,
    *,
    source: Source,
    now: float,
    limits: Limits = DEFAULT_LIMITS,
    field_prefix: str = "",
) -> Event:
    """Decode and validate one event; raise EventError with paths under ``field_prefix``."""
    sent, properties = _decode_sent(raw, field_prefix, limits)
    name = _event_name(sent.event, field_prefix)
    _check_value(properties.value, name, source, field_prefix)
    event_time = _event_time(sent.event_time, source, now, limits, field_prefix)
    _check_page(sent.page, field_prefix)
    return Event(
        event=name,
        received_event=sent.event,
        event_time=event_time,
        event_id=_as_str(sent.event_id),
        user=sent.user if sent.user is not None else _EMPTY_USER,
        properties=properties,
        page=sent.page,
        consent=sent.consent,
        limited_data_use=sent.limited_data_use,
    )


def _decode_sent(
    raw: bytes | msgspec.Raw, prefix: str, limits: Limits
) -> tuple[EventInput, Properties]:
    """Decode the event as sent and its properties.

    The fast path decodes properties into a Struct that forbids unknown keys;
    only an event with custom properties pays for a second, slower decode.
    """
    try:
        sent = _EVENT_FAST.decode(raw)
    except msgspec.ValidationError as exc:
        if _is_custom_property_error(exc):
            return _decode_with_custom(raw, prefix, limits)
        raise _validation_error(exc, prefix) from None
    except _MALFORMED as exc:
        raise _malformed(exc, prefix) from None
    return sent, _properties(sent.properties, None, prefix)


def _is_custom_property_error(exc: msgspec.ValidationError) -> bool:
    message = str(exc)
    return message.startswith("Object contains unknown field") and message.endswith(
        "- at `$.properties`"
    )


def _decode_with_custom(
    raw: bytes | msgspec.Raw, prefix: str, limits: Limits
) -> tuple[EventInput, Properties]:
    """Slow path: properties as plain JSON, split into known fields and custom keys."""
    sent = _decode(_EVENT_SLOW, raw, prefix)
    where = prefix + ".properties" if prefix else "properties"
    known: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for key, value in (sent.properties or {}).items():
        (known if key in KNOWN_PROPERTY_KEYS else custom)[key] = value
    try:
        validated = msgspec.convert(known, PropertiesInput)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc, where) from None
    _check_custom_size(custom, limits, where)
    return sent, _properties(validated, custom, prefix)


def _check_custom_size(custom: dict[str, Any], limits: Limits, where: str) -> None:
    if len(custom) > limits.max_custom_properties:
        raise EventError(
            "properties_too_large",
            f"{len(custom)} custom properties; at most {limits.max_custom_properties}",
            where,
        )
    size = len(_ENCODER.encode(custom))
    if size > limits.max_custom_properties_bytes:
        raise EventError(
            "properties_too_large",
            f"custom properties take {size} bytes as JSON; at most "
            f"{limits.max_custom_properties_bytes}",
            where,
        )


def _properties(
    sent: PropertiesInput | None, custom: dict[str, Any] | None, prefix: str
) -> Properties:
    """Build the validated Properties (currency membership, ids as strings)."""
    if sent is None:
        return _EMPTY_PROPERTIES
    currency = sent.currency
    if currency is not None and currency not in ISO_4217_CODES:
        raise EventError(
            "invalid_field",
            f"unknown currency {currency!r}: expected an uppercase ISO 4217 code such as 'USD'",
            _join(prefix, ".properties.currency"),
        )
    return Properties(
        contents=_string_ids(sent.contents) if sent.contents else sent.contents,
        content_type=sent.content_type,
        value=sent.value,
        currency=currency,
        order_id=_as_str(sent.order_id),
        query=sent.query,
        description=sent.description,
        custom=custom or None,
    )


def _string_ids(contents: list[Content]) -> list[Content]:
    """Numeric content ids become strings, so nothing downstream sees an int."""
    for i, content in enumerate(contents):
        if type(content.content_id) is int or type(content.item_group_id) is int:
            contents[i] = msgspec.structs.replace(
                content,
                content_id=_as_str(content.content_id),
                item_group_id=_as_str(content.item_group_id),
            )
    return contents


def _as_str(identifier: str | int | None) -> str | None:
    return str(identifier) if type(identifier) is int else identifier  # type: ignore[return-value]


def _check_value(value: float | None, name: str, source: Source, prefix: str) -> None:
    """``value`` >= 0, except for a Refund from a webhook (see SignedValue)."""
    if value is not None and value < 0 and not (name == REFUND and source == "webhook"):
        raise EventError(
            "invalid_field", "Expected `float` >= 0.0", _join(prefix, ".properties.value")
        )


def _check_page(page: Page | None, prefix: str) -> None:
    """``page.url`` must be an absolute http(s) URL with a host."""
    if page is not None and _URL_HEAD.match(page.url) is None:
        raise EventError(
            "invalid_field", "expected an absolute http(s) URL", _join(prefix, ".page.url")
        )


def _event_name(name: str, prefix: str) -> str:
    try:
        return canonical_event_name(name)
    except ValueError as exc:
        raise EventError("invalid_event_name", str(exc), _join(prefix, ".event")) from None


def _event_time(
    sent: float | datetime | None, source: Source, now: float, limits: Limits, prefix: str
) -> float:
    """Seconds since the epoch, within [now - horizon(source), now + future_skew]."""
    if sent is None:
        return now
    if isinstance(sent, datetime):
        seconds = sent.timestamp()
    elif sent > MAX_EVENT_TIME:
        raise EventError(
            "invalid_field",
            f"event_time {sent:.0f} looks like milliseconds; send Unix seconds",
            _join(prefix, ".event_time"),
        )
    else:
        seconds = sent
    if seconds > now + limits.future_skew_s:
        raise EventError(
            "event_in_future",
            f"event_time {_iso(seconds)} is more than {limits.future_skew_s:.0f} s in the future",
            _join(prefix, ".event_time"),
        )
    horizon = limits.horizon_s(source)
    if seconds < now - horizon:
        raise EventError(
            "event_too_old",
            f"event_time {_iso(seconds)} is older than {horizon / 3600:.0f} h, "
            f"the limit for {source} events",
            _join(prefix, ".event_time"),
        )
    return seconds


def _iso(seconds: float) -> str:
    if not math.isfinite(seconds) or not -6e10 < seconds < 2.5e11:
        return repr(seconds)  # outside datetime's range
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


# ----------------------------------------------------------------- JSON Schema


_FIELD_DOCS: Final[dict[str, dict[str, str]]] = {
    "EventInput": {
        "event": "",  # described on its type
        "event_id": (
            "Deduplication id, the same for every copy of one event (browser, server, "
            "webhook). An integer is kept as its decimal string."
        ),
        "event_time": (
            "When it happened: Unix seconds (not milliseconds) or an ISO-8601 date-time "
            "with a timezone. Absent means now. At most {future_skew_s:.0f} s ahead; at most "
            "{browser_horizon_h:.0f} h old from a browser, {server_horizon_h:.0f} h from a "
            "store back end or webhook."
        ),
        "user": "Who did it.",
        "properties": "What was viewed, added or bought.",
        "page": "Where it happened (browser events).",
        "consent": "The shopper's tracking consent, where the store has a consent banner.",
        "limited_data_use": "Limited Data Use flag, passed on to TikTok.",
    },
    "User": {
        "email": "Email address(es); normalised and SHA-256 hashed before storage.",
        "phone": "Phone number(s); normalised to E.164 and SHA-256 hashed before storage.",
        "external_id": "The store's customer id(s); SHA-256 hashed before storage.",
        "ttclid": "TikTok click id from the landing URL (ttclid parameter).",
        "ttp": "Value of TikTok's _ttp first-party cookie.",
        "locale": "BCP 47 language tag, e.g. en-US.",
        "anonymous_id": "pixel-server's first-party anonymous browser id.",
        "ip": "The shopper's IP address (server events; browsers' comes from the request).",
        "user_agent": "The shopper's User-Agent (server events).",
    },
    "PropertiesInput": {
        "contents": "Products (or variants), at most {max_contents}.",
        "content_type": "product (contents are variants/SKUs) or product_group.",
        "value": "Total value, a non-negative number in `currency`.",
        "currency": "ISO 4217 code of `value` and prices, uppercase.",
        "order_id": "The store's order id. An integer is kept as its decimal string.",
        "query": "Search text (Search events).",
        "description": "Free text.",
    },
    "Content": {
        "content_id": "Product or variant id (SKU) as in the catalogue.",
        "item_group_id": "Parent product id of a variant.",
        "content_name": "Product name.",
        "content_category": "Product category.",
        "brand": "Brand.",
        "price": "Unit price, a non-negative number.",
        "quantity": "Units, 1 to {max_quantity}.",
    },
    "Page": {
        "url": "Page URL, absolute http(s).",
        "referrer": "Referring URL; may be empty.",
    },
}


def event_json_schema(limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one event as clients send it."""
    generated = msgspec.json.schema(EventInput)
    defs: dict[str, Any] = generated["$defs"]
    values = {
        "future_skew_s": limits.future_skew_s,
        "browser_horizon_h": limits.browser_horizon_s / 3600,
        "server_horizon_h": limits.server_horizon_s / 3600,
        "max_contents": MAX_CONTENTS,
        "max_quantity": MAX_QUANTITY,
    }
    for def_name, fields in _FIELD_DOCS.items():
        for field, text in fields.items():
            if text:
                defs[def_name]["properties"][field]["description"] = text.format(**values)
    properties_def = defs["PropertiesInput"]
    properties_def["title"] = "Properties"
    properties_def["description"] = (
        "Event properties. Keys not listed here are custom properties, kept as sent: "
        f"at most {limits.max_custom_properties} keys and "
        f"{limits.max_custom_properties_bytes} bytes re-encoded as JSON."
    )
    properties_def["additionalProperties"] = {"description": "A custom property: any JSON value."}
    event_def = defs.pop("EventInput")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "/schema/event.json",
        **event_def,
        "title": "Event",
        "$defs": defs,
    }
