"""Benchmark: decode + validate one realistic event from bytes, msgspec vs pydantic v2.

Run: ``.venv/bin/python bench/bench_schema.py`` (results go to docs/benchmarks.md).

The event is a ~600-byte Purchase with two contents, user fields and a page,
as the snippet or a store back end sends it. Measured per event:

* ``msgspec decode_event``: the real hot-path call (decode, validate, name
  canonicalisation, time window, currency) — the number that matters;
* ``msgspec decode only``: just the Struct decode, to compare like with like;
* ``msgspec decode_event, custom keys``: the same event with two custom
  property keys, which takes the slower path that keeps them;
* ``msgspec custom-keys path alone``: that slower path run on the plain event,
  i.e. what every event would cost if there were no fast path;
* ``pydantic model_validate_json``: an equivalent pydantic v2 model with the
  same bounds and rules expressed as pydantic constraints and validators.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
import pydantic
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from pixel_server.events import schema
from pixel_server.events.names import canonical_event_name
from pixel_server.events.schema import (
    ISO_4217_CODES,
    EventInput,
    Limits,
    decode_event,
)

NOW = 1_767_225_600.0


def make_event(custom: bool = False) -> bytes:
    """The benchmark event: a Purchase with 2 contents, user fields and a page."""
    properties: dict[str, Any] = {
        "contents": [
            {
                "content_id": "SKU-1077218-RED-M",
                "item_group_id": "1077218",
                "content_name": "Sweatshirt",
                "content_category": "Apparel",
                "brand": "Acme",
                "price": 8.0,
                "quantity": 2,
            },
            {
                "content_id": "SKU-2231-BLK",
                "content_name": "Beanie",
                "price": 12.5,
                "quantity": 1,
            },
        ],
        "content_type": "product",
        "currency": "USD",
        "value": 28.5,
        "order_id": "10045",
    }
    if custom:
        properties["coupon"] = "SPRING10"
        properties["shipping_method"] = "express"
    event = {
        "event": "Purchase",
        "event_id": "purchase:10045",
        "event_time": int(NOW) - 5,
        "user": {
            "email": "alice@example.com",
            "ttclid": "E.C.P.v3Yh7mZ0kQ2Lq9",
            "ttp": "2Xw8Qk3Lr9aB7cD1eF5gH",
            "anonymous_id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
            "locale": "en-US",
        },
        "properties": properties,
        "page": {
            "url": "https://shop.example.com/checkout/thanks?order=10045",
            "referrer": "https://shop.example.com/checkout",
        },
    }
    return msgspec.json.encode(event)


# ------------------------------------------------------------ pydantic model


def _text(n: int) -> Any:
    """A bounded string, as in the msgspec schema."""
    return Annotated[str, StringConstraints(max_length=n)]


class PUser(BaseModel):
    model_config = ConfigDict(frozen=True)
    email: _text(320) | list[_text(320)] | None = None
    phone: _text(64) | list[_text(64)] | None = None
    external_id: _text(256) | list[_text(256)] | None = None
    ttclid: _text(512) | None = None
    ttp: _text(256) | None = None
    locale: _text(35) | None = None
    anonymous_id: _text(128) | None = None
    ip: _text(64) | None = None
    user_agent: _text(1024) | None = None


class PContent(BaseModel):
    model_config = ConfigDict(frozen=True)
    content_id: _text(256) | int | None = None
    item_group_id: _text(256) | int | None = None
    content_name: _text(512) | None = None
    content_category: _text(256) | None = None
    brand: _text(256) | None = None
    price: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    quantity: Annotated[int, Field(ge=1, le=100_000, strict=True)] | None = None


class PProperties(BaseModel):
    model_config = ConfigDict(extra="allow")  # keeps custom keys, like ours
    contents: Annotated[list[PContent], Field(max_length=200)] | None = None
    content_type: Literal["product", "product_group"] | None = None
    value: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    currency: _text(3) | None = None
    order_id: _text(256) | int | None = None
    query: _text(512) | None = None
    description: _text(1024) | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str | None) -> str | None:
        if v is not None and v not in ISO_4217_CODES:
            raise ValueError("unknown currency")
        return v


class PPage(BaseModel):
    url: Annotated[
        str, StringConstraints(max_length=2048, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+")
    ]
    referrer: _text(2048) = ""


class PEvent(BaseModel):
    event: _text(256)
    event_id: _text(128) | int | None = None
    event_time: float | AwareDatetime | None = None
    user: PUser | None = None
    properties: PProperties | None = None
    page: PPage | None = None
    consent: Literal["granted", "denied"] | None = None
    limited_data_use: bool = False

    @field_validator("event")
    @classmethod
    def _name(cls, v: str) -> str:
        return canonical_event_name(v)


# --------------------------------------------------------------------- timing


def calls_per_round(fn: Callable[[], object], min_time: float) -> int:
    """Enough calls for one round to last at least ``min_time`` seconds."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - start >= min_time:
            return number
        number *= 2


def time_cases(
    cases: dict[str, Callable[[], object]], *, rounds: int = 15, min_time: float = 0.05
) -> dict[str, tuple[float, float]]:
    """Per case, (best, median) over rounds of the mean µs per call.

    Rounds go round-robin over the cases, so load from other processes on a
    shared machine hits every case alike; the best round is the least disturbed.
    """
    numbers = {name: calls_per_round(fn, min_time) for name, fn in cases.items()}
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            number = numbers[name]
            start = time.perf_counter()
            for _ in range(number):
                fn()
            results[name].append((time.perf_counter() - start) / number * 1e6)
    return {name: (min(r), statistics.median(r)) for name, r in results.items()}


def main() -> None:
    body = make_event()
    body_custom = make_event(custom=True)
    limits = Limits()
    decoder = msgspec.json.Decoder(EventInput)
    # Same input accepted by both, so the comparison is like for like.
    assert PEvent.model_validate_json(body).properties is not None
    decode_event(body, source="server", now=NOW, limits=limits, field_prefix="data[0]")

    cases: dict[str, Callable[[], object]] = {
        "msgspec decode_event": lambda: decode_event(
            body, source="server", now=NOW, limits=limits, field_prefix="data[0]"
        ),
        "msgspec decode only (Struct)": lambda: decoder.decode(body),
        "msgspec decode_event, 2 custom keys": lambda: decode_event(
            body_custom, source="server", now=NOW, limits=limits, field_prefix="data[0]"
        ),
        "msgspec custom-keys path alone, plain event": lambda: schema._decode_with_custom(
            body, "data[0]", limits
        ),
        "pydantic model_validate_json": lambda: PEvent.model_validate_json(body),
        "pydantic model_validate_json, 2 custom keys": lambda: PEvent.model_validate_json(
            body_custom
        ),
    }
    print(f"event size: {len(body)} bytes (with custom keys: {len(body_custom)})")
    print(
        f"python {platform.python_version()}, msgspec {msgspec.__version__}, "
        f"pydantic {pydantic.VERSION}"
    )
    print(f"{'':45s} {'best':>7s} {'median':>7s}  µs/event")
    for name, (best, median) in time_cases(cases).items():
        print(f"{name:45s} {best:7.2f} {median:7.2f}  ({1e3 / best:,.0f}k events/s at best)")


if __name__ == "__main__":
    main()
