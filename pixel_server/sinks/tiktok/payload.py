"""What TikTok receives: a log record as one Events API 2.0 event, and the
request body for a batch (field by field, as TikTok names them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
import orjson

from pixel_server.pipeline import record as records
from pixel_server.pipeline.record import Record
from pixel_server.pixel import Pixel

# The event TikTok gets, as msgspec structs: building structs and encoding them
# costs about half of building dicts and encoding those, and omit_defaults
# leaves out every empty field. Field names are the Events API 2.0 names.


class TikTokUser(msgspec.Struct, omit_defaults=True, gc=False):
    email: str | list[str] | None = None  # SHA-256 hex: one as a string, several as an array
    phone: str | list[str] | None = None
    external_id: str | list[str] | None = None
    ttclid: str = ""
    ttp: str = ""
    ip: str = ""
    user_agent: str = ""
    locale: str = ""


class TikTokContent(msgspec.Struct, omit_defaults=True, kw_only=True, gc=False):
    content_id: str = ""
    content_name: str = ""
    content_category: str = ""
    brand: str = ""
    price: float | None = None
    quantity: int  # always sent, 1 included


class TikTokProperties(msgspec.Struct, omit_defaults=True, gc=False):
    contents: list[TikTokContent] | None = None
    content_type: str = ""
    currency: str = ""
    value: float | None = None  # 0.0 is sent: only None is left out
    order_id: str = ""
    query: str = ""


class TikTokPage(msgspec.Struct, omit_defaults=True, gc=False):
    url: str = ""
    referrer: str = ""


class TikTokEvent(msgspec.Struct, omit_defaults=True, kw_only=True, gc=False):
    event: str
    event_time: int
    event_id: str
    user: TikTokUser | None = None
    properties: TikTokProperties | None = None
    page: TikTokPage | None = None
    limited_data_use: bool


RAW: Final = msgspec.Raw()


class Stored(msgspec.Struct, array_like=True, gc=False):
    """A stored Record as the forwarder reads it: fields TikTok does not get stay
    undecoded (``Raw``: no objects made). Same order as Record, which only
    grows at the end (trailing fields are ignored)."""

    pixel_id: str
    event: str
    received_event: msgspec.Raw
    event_id: str
    source: str
    event_time: float
    received_at: float
    # Defaults as in Record: a record written before a field existed is shorter.
    event_id_assigned: msgspec.Raw = RAW
    anonymous_id: msgspec.Raw = RAW
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
    referrer_host: msgspec.Raw = RAW
    channel: msgspec.Raw = RAW
    utm_source: msgspec.Raw = RAW
    utm_medium: msgspec.Raw = RAW
    utm_campaign: msgspec.Raw = RAW
    utm_content: msgspec.Raw = RAW
    utm_term: msgspec.Raw = RAW
    value: float | None = None
    currency: str = ""
    order_id: str = ""
    search_query: str = ""
    content_type: str = ""
    description: msgspec.Raw = RAW
    contents: list[records.ContentRow] = []
    properties: msgspec.Raw = RAW
    consent: str = "unknown"
    limited_data_use: bool = False
    test_event_code: str = ""
    content_refunds: list[records.RefundRow] = []


STORED: Final = msgspec.msgpack.Decoder(Stored)
JSON_ENCODER: Final = msgspec.json.Encoder()


def hashed_field(values: list[str]) -> str | list[str] | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else list(values)


def event_struct(r: Record | Stored) -> TikTokEvent:
    """The mapping, per the Events API 2.0 reference.

    Empty fields are left out rather than sent empty. The record's event name is
    already canonical (``Purchase``, ``Lead``); names that are not TikTok
    standard events (``ViewCategory``, ``PageView``, ``Refund``, custom) go as
    they are: TikTok takes them as custom events. ``event_time`` is whole
    seconds. Refunds are stored with a negative value so that revenue nets out
    in our reports; to TikTok a value is an amount, and the name says refund.
    """
    user = None
    if (r.email_sha256 or r.phone_sha256 or r.external_id_sha256 or r.ttclid or r.ttp
            or r.ip or r.user_agent or r.locale):  # fmt: skip
        user = TikTokUser(
            hashed_field(r.email_sha256), hashed_field(r.phone_sha256),
            hashed_field(r.external_id_sha256),
            r.ttclid, r.ttp, r.ip, r.user_agent, r.locale,
        )  # fmt: skip
    # ContentRow: (content_id, item_group_id, name, category, brand, quantity, price)
    contents = [
        TikTokContent(content_id=c[0], content_name=c[2], content_category=c[3], brand=c[4],
                       price=None if c[6] is None else float(c[6]), quantity=int(c[5]))
        for c in r.contents
    ] or None  # fmt: skip
    if contents and r.content_refunds:
        # A refund's line: the money it returned for the line, per unit returned
        # (an amount-only line counts as one unit: TikTok wants quantity >= 1).
        for content, (by_line, share) in zip(contents, r.content_refunds, strict=False):
            content.quantity = max(content.quantity, 1)
            content.price = round((by_line + share) / content.quantity, 2)
    content_type = r.content_type or ("product" if contents else "")
    value = None if r.value is None else abs(float(r.value))
    properties = None
    if (
        contents
        or content_type
        or r.currency
        or value is not None
        or r.order_id
        or (r.search_query)
    ):
        properties = TikTokProperties(
            contents, content_type, r.currency, value, r.order_id, r.search_query
        )
    page = TikTokPage(r.page_url, r.page_referrer) if r.page_url or r.page_referrer else None
    return TikTokEvent(
        event=r.event, event_time=int(r.event_time), event_id=r.event_id, user=user,
        properties=properties, page=page, limited_data_use=r.limited_data_use,
    )  # fmt: skip


def tiktok_event(record: Record) -> dict[str, Any]:
    """One element of the request's ``data``, as plain JSON values."""
    out: dict[str, Any] = msgspec.to_builtins(event_struct(record))
    return out


def encode_event(record: Record | Stored) -> bytes:
    """``tiktok_event`` as JSON, built as soon as an event is read: the
    queued event then holds only bytes (see ``Item``)."""
    return JSON_ENCODER.encode(event_struct(record))


def encode_body(pixel_code: str, events: Sequence[bytes], test_event_code: str = "") -> bytes:
    """The request body around already encoded events: ``event_source``,
    ``event_source_id`` (the TikTok pixel code), ``test_event_code`` when set,
    and ``data``."""
    head = b'{"event_source":"web","event_source_id":' + orjson.dumps(pixel_code)
    if test_event_code:
        head += b',"test_event_code":' + orjson.dumps(test_event_code)
    return head + b',"data":[' + b",".join(events) + b"]}"


def test_code_of(pixel: Pixel, sent: str) -> str:
    """The pixel's setting wins; otherwise the code the back end sent with the event."""
    return pixel.tiktok_test_event_code or sent
