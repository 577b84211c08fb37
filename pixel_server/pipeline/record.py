"""The stored form of one event copy: what the log holds and ClickHouse gets.

A :class:`Record` is flat and already safe to keep: personal data is hashed,
identifiers are stripped when consent was denied. Field names are the column
names of the ``events`` table. In the log a record is MessagePack in array
form (field order, not names), which is compact and fast to decode; the
order is part of the on-disk format, so add fields only at the end, with a
default.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

# (content_id, item_group_id, name, category, brand, quantity, price)
ContentRow = tuple[str, str, str, str, str, int, float | None]
# Per content row of a Refund: (refunded, refunded_share) — money returned for
# the line as the store assigned it, and its share of money returned without
# lines. A separate field (at the end) keeps older log records readable.
RefundRow = tuple[float, float]


class Record(msgspec.Struct, array_like=True, gc=False):
    pixel_id: str
    event: str
    received_event: str
    event_id: str
    source: str  # browser | server | webhook
    event_time: float  # Unix seconds
    received_at: float
    event_id_assigned: bool = False
    anonymous_id: str = ""
    ip: str = ""
    user_agent: str = ""
    ttclid: str = ""
    ttp: str = ""
    locale: str = ""
    email_sha256: list[str] = []
    phone_sha256: list[str] = []
    external_id_sha256: list[str] = []
    page_url: str = ""
    page_referrer: str = ""
    referrer_host: str = ""
    channel: str = "direct"
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    utm_content: str = ""
    utm_term: str = ""
    value: float | None = None
    currency: str = ""
    order_id: str = ""
    search_query: str = ""
    content_type: str = ""
    description: str = ""
    contents: list[ContentRow] = []
    properties: str = ""  # custom property keys as JSON
    consent: str = "unknown"  # unknown | granted | denied
    limited_data_use: bool = False
    test_event_code: str = ""
    content_refunds: list[RefundRow] = []  # empty, or one per ``contents`` row


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(Record)

SCALAR_COLUMNS: Final[tuple[str, ...]] = tuple(
    f for f in Record.__struct_fields__ if f not in ("contents", "content_refunds")
)
CONTENT_COLUMNS: Final[tuple[str, ...]] = (
    "contents.content_id",
    "contents.item_group_id",
    "contents.name",
    "contents.category",
    "contents.brand",
    "contents.quantity",
    "contents.price",
    "contents.refunded",
    "contents.refunded_share",
)
COLUMNS: Final[tuple[str, ...]] = SCALAR_COLUMNS + CONTENT_COLUMNS
_TIME_COLUMNS: Final = frozenset({"event_time", "received_at"})


def encode(record: Record) -> bytes:
    return _ENCODER.encode(record)


def decode(payload: bytes) -> Record:
    return _DECODER.decode(payload)


_FIELDS: Final = Record.__struct_fields__
_SCALAR_AT: Final = tuple(_FIELDS.index(n) for n in SCALAR_COLUMNS)
_TIME_AT: Final = frozenset(_FIELDS.index(n) for n in _TIME_COLUMNS)
_CONTENTS_AT: Final = _FIELDS.index("contents")
_REFUNDS_AT: Final = _FIELDS.index("content_refunds")


def to_columns(records: list[Record]) -> list[list[Any]]:
    """Columnar data for ``client.insert(..., column_oriented=True)``, in COLUMNS order.

    One C-level transpose (``astuple`` + ``zip``) instead of an attribute
    lookup per field and record: the loader's Python cost per row."""
    if not records:
        return [[] for _ in COLUMNS]
    fields = list(zip(*map(msgspec.structs.astuple, records), strict=True))
    columns: list[list[Any]] = []
    for at in _SCALAR_AT:
        # DateTime64(3) takes integer milliseconds (no datetime objects made).
        columns.append(
            [round(v * 1000) for v in fields[at]] if at in _TIME_AT else list(fields[at])
        )
    contents = fields[_CONTENTS_AT]
    for index in range(len(CONTENT_COLUMNS) - 2):
        columns.append([[c[index] for c in rows] for rows in contents])
    pairs = list(zip(fields[_REFUNDS_AT], contents, strict=True))
    for index in range(2):
        columns.append([[r[index] for r in rf] if rf else [0.0] * len(c) for rf, c in pairs])
    return columns


class RecordKey(msgspec.Struct, array_like=True, gc=False):
    """The leading fields of a :class:`Record` that name the copy: what dedup,
    the forwarder's routing and its ledger rows need. Decoding stops there (a
    tenth of a whole record's cost), and it holds no lists, so the cyclic GC
    never looks at it."""

    pixel_id: str
    event: str
    received_event: str
    event_id: str
    source: str
    event_time: float
    received_at: float
    event_id_assigned: bool = False


_KEY_DECODER: Final = msgspec.msgpack.Decoder(RecordKey)


def decode_key(payload: bytes) -> RecordKey:
    return _KEY_DECODER.decode(payload)
