"""TikTok Events API 1.0 bodies (``pixel/track/``, ``pixel/batch/``) as 2.0 events.

TikTok's own SDK (``EventCallbackApi``), RudderStack's TikTok destination and
many hand-written integrations still send the 1.0 shape::

    {"pixel_code": "C4...", "event": "Purchase", "event_id": "o-1",
     "timestamp": "2026-01-01T10:00:00Z", "test_event_code": "TEST1",
     "context": {"ad": {"callback": "<ttclid>"},
                 "page": {"url": "...", "referrer": "..."},
                 "user": {"email": "<sha256>", "phone_number": "<sha256>",
                          "external_id": "<sha256>", "ttp": "<_ttp>"},
                 "ip": "...", "user_agent": "..."},
     "properties": {"contents": [...], "value": 16, "currency": "USD"}}

and ``pixel/batch/`` is ``{"pixel_code", "batch": [{"type": "track", ...}]}``.

Each 1.0 event is rewritten as the 2.0 event it means and then goes through
:func:`~pixel_server.events.schema.decode_event` like every other server
event: one validation, one set of limits. The rewrite moves fields only;
values are carried over byte for byte (``msgspec.Raw``), so a wrong type is
reported by the 2.0 decoder, and :func:`v1_field` turns its field path back
into the 1.0 one the client sent (``data[0].user.ttclid`` ->
``context.ad.callback``).

What the rewrite does besides moving fields:

* ``timestamp`` is ISO 8601 (``Z`` or an offset; without one it is UTC, as
  TikTok reads it) or Unix time as a number or a string of digits, in seconds
  or, when it is that large, milliseconds (Stape's server-side GTM tag sends
  a string of milliseconds);
* properties in the older flat form (``content_id``, ``content_name``,
  ``content_category``, ``brand``, ``price``, ``quantity`` next to ``value``)
  become the one line of ``contents``, as TikTok reads them;
* ``content_type``, which 1.0 puts on each line of ``contents``, is lifted to
  the properties when they have none;
* a batch item's ``type`` must be ``track`` (the only 1.0 type).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta

from pixel_server.events.schema import EventError, Text64, decode_envelope, decode_json

__all__ = ["V1Request", "decode_v1_batch", "decode_v1_track", "v1_field"]

MAX_BATCH: Final = 1000
PixelCode = Annotated[str, Meta(min_length=1, max_length=64)]


# An absent key (msgspec.Raw cannot be in a union with None; JSON null is b"null").
_ABSENT: Final = msgspec.Raw()


class _Ad(msgspec.Struct, gc=False):
    callback: msgspec.Raw = _ABSENT


class _User(msgspec.Struct, gc=False):
    email: msgspec.Raw = _ABSENT
    phone_number: msgspec.Raw = _ABSENT
    external_id: msgspec.Raw = _ABSENT
    ttp: msgspec.Raw = _ABSENT
    locale: msgspec.Raw = _ABSENT


class _Context(msgspec.Struct, gc=False):
    ad: _Ad | None = None
    page: msgspec.Raw = _ABSENT
    user: _User | None = None
    ip: msgspec.Raw = _ABSENT
    user_agent: msgspec.Raw = _ABSENT
    locale: msgspec.Raw = _ABSENT


class _Event(msgspec.Struct, gc=False):
    event: msgspec.Raw = _ABSENT  # required: the 2.0 decoder says so
    event_id: msgspec.Raw = _ABSENT
    timestamp: msgspec.Raw = _ABSENT
    context: _Context | None = None
    properties: msgspec.Raw = _ABSENT
    limited_data_use: msgspec.Raw = _ABSENT
    type: str | None = None


class _TrackBody(_Event, kw_only=True):
    pixel_code: PixelCode
    test_event_code: Text64 | None = None
    partner_name: Text64 | None = None


class _BatchBody(msgspec.Struct, gc=False):
    pixel_code: PixelCode
    batch: Annotated[list[msgspec.Raw], Meta(min_length=1)]
    test_event_code: Text64 | None = None
    partner_name: Text64 | None = None


_TRACK: Final = msgspec.json.Decoder(_TrackBody)
_BATCH: Final = msgspec.json.Decoder(_BatchBody)
_EVENT: Final = msgspec.json.Decoder(_Event)
_ANY: Final = msgspec.json.Decoder()
_ENCODER: Final = msgspec.json.Encoder()


@dataclass(slots=True)
class V1Request:
    """A 1.0 body as 2.0 events: ``events[k]`` came from item ``positions[k]``."""

    pixel_code: str
    test_event_code: str
    events: list[bytes] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    failed: list[tuple[int, EventError]] = field(default_factory=list)  # (item, why)


def decode_v1_track(body: bytes) -> V1Request:
    """``pixel/track/``: one event at the top level of the body."""
    sent = decode_envelope(_TRACK, body)
    out = V1Request(sent.pixel_code, sent.test_event_code or "")
    _add(out, 0, sent, "")
    return out


def decode_v1_batch(body: bytes, *, max_events: int = MAX_BATCH) -> V1Request:
    """``pixel/batch/``: ``batch`` holds 1..max_events events, each judged alone."""
    sent = decode_envelope(_BATCH, body)
    if len(sent.batch) > max_events:
        raise EventError(
            "too_many_events", f"{len(sent.batch)} events in one body; at most {max_events}",
            "batch",
        )  # fmt: skip
    out = V1Request(sent.pixel_code, sent.test_event_code or "")
    for index, raw in enumerate(sent.batch):
        prefix = f"batch[{index}]"
        try:
            event = decode_json(_EVENT, raw, prefix)
        except EventError as exc:
            out.failed.append((index, exc))
            continue
        _add(out, index, event, prefix)
    return out


def _add(out: V1Request, index: int, event: _Event, prefix: str) -> None:
    try:
        out.events.append(_ENCODER.encode(_as_v2(event, prefix)))
    except EventError as exc:
        out.failed.append((index, exc))
        return
    out.positions.append(index)


def _as_v2(sent: _Event, prefix: str) -> dict[str, Any]:
    if sent.type is not None and sent.type != "track":
        raise EventError("invalid_field", "must be 'track'", _join(prefix, "type"))
    ctx = sent.context or _Context()
    user = ctx.user or _User()
    v2_user = {
        "email": user.email,
        "phone": user.phone_number,
        "external_id": user.external_id,
        "ttp": user.ttp,
        "ttclid": ctx.ad.callback if ctx.ad is not None else _ABSENT,
        "ip": ctx.ip,
        "user_agent": ctx.user_agent,
        "locale": user.locale if len(user.locale) else ctx.locale,
    }
    event: dict[str, Any] = {
        "event": sent.event,
        "event_id": sent.event_id,
        "event_time": _event_time(sent.timestamp),
        "user": {k: v for k, v in v2_user.items() if len(v)},
        "properties": _properties(sent.properties),
        "page": ctx.page,
        "limited_data_use": sent.limited_data_use,
    }
    return {k: v for k, v in event.items() if not isinstance(v, msgspec.Raw) or len(v)}


_NUMBER: Final = re.compile(rb'"?(\d{1,16}(?:\.\d+)?)"?')
_MILLISECONDS: Final = 1e11  # a Unix time this large is in milliseconds (until year 5138)


def _event_time(raw: msgspec.Raw) -> msgspec.Raw:
    """ISO 8601 with a zone (UTC if it has none) or Unix time, as a number or a
    string of digits, in seconds or milliseconds (server-side GTM tags send
    milliseconds); anything else is passed on for the 2.0 decoder to refuse."""
    text = bytes(raw)
    number = _NUMBER.fullmatch(text)
    if number:
        seconds = float(number.group(1))
        if seconds >= _MILLISECONDS:
            seconds /= 1000
        return msgspec.Raw(_ENCODER.encode(int(seconds) if seconds.is_integer() else seconds))
    if not text.startswith(b'"'):
        return raw
    try:
        when = datetime.fromisoformat(_ANY.decode(text))
    except (ValueError, TypeError, msgspec.DecodeError):
        return raw
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return msgspec.Raw(_ENCODER.encode(when.isoformat()))


# Older 1.0 integrations send one product flat in the properties.
_FLAT_CONTENT: Final = ("content_id", "content_name", "content_category", "brand", "price",
                        "quantity")  # fmt: skip


def _properties(raw: msgspec.Raw) -> msgspec.Raw:
    if not bytes(raw).lstrip().startswith(b"{"):
        return raw  # absent, null, or not an object: the 2.0 decoder judges it
    try:
        props = _ANY.decode(raw)
    except msgspec.DecodeError:
        return raw
    changed = False
    if "contents" not in props and any(k in props for k in _FLAT_CONTENT):
        props["contents"] = [{k: props.pop(k) for k in _FLAT_CONTENT if k in props}]
        changed = True
    contents = props.get("contents")
    if "content_type" not in props and isinstance(contents, list):
        kinds = [c["content_type"] for c in contents if isinstance(c, dict) and "content_type" in c]
        if kinds:
            props["content_type"] = kinds[0]
            changed = True
    return msgspec.Raw(_ENCODER.encode(props)) if changed else raw


# --------------------------------------------------------------- field paths

# A 2.0 field path (after ``data[k]``) and the 1.0 one it came from; longest first.
_V1_PATHS: Final = (
    (".user.phone", ".context.user.phone_number"),
    (".user.ttclid", ".context.ad.callback"),
    (".user.user_agent", ".context.user_agent"),
    (".user.ip", ".context.ip"),
    (".user", ".context.user"),
    (".page", ".context.page"),
    (".event_time", ".timestamp"),
)
_V2_HEAD: Final = re.compile(r"data\[\d+\]")


def v1_field(field: str, prefix: str) -> str:
    """The 1.0 path of ``field``, a 2.0 path under ``data[k]``, for the event
    sent at ``prefix`` (``""`` for pixel/track, ``batch[3]`` for pixel/batch)."""
    head = _V2_HEAD.match(field)
    tail = field[head.end() :] if head else field
    for v2, v1 in _V1_PATHS:
        if tail == v2 or tail.startswith(v2 + ".") or tail.startswith(v2 + "["):
            tail = v1 + tail[len(v2) :]
            break
    return _join(prefix, tail.removeprefix("."))


def _join(prefix: str, tail: str) -> str:
    if not prefix:
        return tail
    return f"{prefix}.{tail}" if tail else prefix
