"""The stored form of one event copy: what the log holds and ClickHouse gets.

A :class:`Record` is flat and already safe to keep: personal data is hashed,
identifiers are stripped when consent was denied. Field names are the column
names of the ``events`` table. In the log a record is MessagePack in array
form (field order, not names), which is compact and fast to decode; the
order is part of the on-disk format, so add fields only at the end, with a
default.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

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


def encode(record: Record) -> bytes:
    return _ENCODER.encode(record)


def decode(payload: bytes) -> Record:
    return _DECODER.decode(payload)


# Every record of the current layout starts with the same array header (its
# field count); ClickHouse's MessagePack input wants the fields without it.
_HEADER: Final = encode(Record("", "", "", "", "", 0.0, 0.0))[:3]
assert _HEADER[0] == 0xDC, "a record is an array of 16 or more fields"


def msgpack_rows(payloads: Iterable[bytes]) -> bytes:
    """The records as one MessagePack row stream, fields in log order.

    A record written before fields were added (a shorter array) is decoded
    and re-encoded, which fills the new fields with their defaults."""
    return b"".join(p[3:] if p[:3] == _HEADER else encode(decode(p))[3:] for p in payloads)


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
