"""A local stand-in for TikTok's Events API 2.0 (``/open_api/v1.3/event/track/``).

It is a real HTTP server on 127.0.0.1 (``ThreadingHTTPServer`` on a free port,
one thread per request, so a request told to hang never blocks another) that
checks every request as strictly as TikTok's Events API 2.0 does (payload
shape, limits, hashing rules, event names) and answers the way TikTok does:

* HTTP 200 with ``{"code": 0, "message": "OK", "request_id": ..., "data": {}}``;
* errors as HTTP 200 with a non-zero code: 40001 (token not allowed for the
  pixel), 40002 (invalid parameter, the message names the field as
  ``data.3.properties.contents.0.content_id: Not a valid string``), 40100 (rate
  limited), 40105 (access token missing or invalid);
* HTTP 404/405 for a wrong path or method.

The checks are deliberately independent of the server's own code (their own
event-name list, currency list and hash pattern), so a mapping mistake in the
forwarder cannot be hidden by sharing a bug with it. They are strict: unknown
keys are rejected, so a misspelt field fails loudly instead of being dropped
silently the way TikTok would.

Only accepted requests (code 0) are *recorded* as received events, per pixel
code, in arrival order. Every request is logged as an :class:`Exchange`.

Faults are injected with :meth:`TikTokStandIn.inject` (see :class:`Fault`):
rate limiting (40100 and HTTP 429), HTTP 5xx, hanging past the client's
timeout, slow answers, 40002 for chosen event ids; a bad token is simply one
not in :meth:`TikTokStandIn.allow`'s list (40105).

Run it alone for benchmarks::

    python -m tests.standins.tiktok_api --port 0 --token TOKEN=PIXELCODE --record ids

It prints ``READY <base url>`` and serves ``GET /_standin/received`` (event ids
with arrival times), ``GET /_standin/count`` and ``POST /_standin/reset``
besides the API.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import math
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Literal

import msgspec
import orjson
from msgspec import UNSET, UnsetType

from tests.standins.tiktok_catalog import CatalogEndpoints

API_PATH = "/open_api/v1.3/event/track/"
MAX_EVENTS = 1000
MAX_AGE_S = 7 * 86_400  # older events are refused as implausible
MAX_SKEW_S = 300  # events from the future: a clock off by more is a bug

STANDARD_EVENTS = frozenset({
    "AddPaymentInfo", "AddToCart", "AddToWishlist", "ApplicationApproval",
    "CompleteRegistration", "Contact", "CustomizeProduct", "Download", "FindLocation",
    "InitiateCheckout", "Lead", "Purchase", "Schedule", "Search", "StartTrial",
    "SubmitApplication", "Subscribe", "ViewContent",
})  # fmt: skip
CUSTOM_EVENT = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,49}")
HEX64 = re.compile(r"[0-9a-f]{64}")
HTTP_URL = re.compile(r"https?://[^\s/?#]+\S*", re.IGNORECASE)
# ISO 4217 active codes (an independent copy; the server keeps its own).
CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL
    BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK
    DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS
    INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD
    MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR
    PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS
    SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW
    UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA
    YER ZAR ZMW ZWG ZWL""".split()  # noqa: SIM905 - reads like the standard's table
)

TOP_LEVEL = frozenset({"event_source", "event_source_id", "test_event_code", "data",
                       "partner_name"})  # fmt: skip
EVENT_KEYS = frozenset({"event", "event_time", "event_id", "user", "properties", "page",
                        "limited_data_use"})  # fmt: skip
USER_KEYS = frozenset({"email", "phone", "external_id", "ttclid", "ttp", "ip", "user_agent",
                       "locale"})  # fmt: skip
PROPERTY_KEYS = frozenset({"contents", "content_type", "currency", "value", "order_id", "query",
                           "description"})  # fmt: skip
CONTENT_KEYS = frozenset({"content_id", "content_name", "content_category", "brand", "price",
                          "quantity"})  # fmt: skip
PAGE_KEYS = frozenset({"url", "referrer"})


class Invalid(Exception):
    """A request TikTok answers with a non-zero code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _bad(path: str, problem: str) -> Invalid:
    return Invalid(40002, f"{path}: {problem}")


# ------------------------------------------------------------------ validation


def _string(value: Any, path: str, *, required: bool = False) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value):
        raise _bad(path, "Not a valid string")


def _hashed(value: Any, path: str) -> None:
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        raise _bad(path, "Shorter than minimum length 1")
    for i, v in enumerate(values):
        where = f"{path}.{i}" if isinstance(value, list) else path
        if not isinstance(v, str):
            raise _bad(where, "Not a valid string")
        if not HEX64.fullmatch(v):
            raise _bad(where, "Not a valid SHA-256 hash (64 lowercase hexadecimal characters)")


def _number(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(path, "Not a valid number")
    if value < 0:
        raise _bad(path, "Must be greater than or equal to 0")


def _unknown(obj: dict[str, Any], allowed: frozenset[str], path: str) -> None:
    for key in obj:
        if key not in allowed:
            raise _bad(f"{path}.{key}" if path else key, "Unknown field")


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(path, "Not a valid mapping type")
    return value


def validate_event(event: Any, path: str, now: float) -> None:
    """Check one element of ``data``; raise :class:`Invalid` naming the field."""
    e = _object(event, path)
    _unknown(e, EVENT_KEYS, path)
    name = e.get("event")
    if name is None:
        raise _bad(f"{path}.event", "Missing data for required field")
    _string(name, f"{path}.event", required=True)
    if name not in STANDARD_EVENTS and not CUSTOM_EVENT.fullmatch(name):
        raise _bad(f"{path}.event", f"Invalid event name {name!r}")
    t = e.get("event_time")
    if t is None:
        raise _bad(f"{path}.event_time", "Missing data for required field")
    if isinstance(t, bool) or not isinstance(t, int):
        raise _bad(f"{path}.event_time", "Not a valid integer")
    if not now - MAX_AGE_S <= t <= now + MAX_SKEW_S:
        raise _bad(f"{path}.event_time", "Not a plausible Unix time in seconds")
    _string(e.get("event_id"), f"{path}.event_id")
    if "limited_data_use" in e and not isinstance(e["limited_data_use"], bool):
        raise _bad(f"{path}.limited_data_use", "Not a valid boolean")
    if "user" in e:
        user = _object(e["user"], f"{path}.user")
        _unknown(user, USER_KEYS, f"{path}.user")
        for key in ("email", "phone", "external_id"):
            if key in user:
                _hashed(user[key], f"{path}.user.{key}")
        for key in ("ttclid", "ttp", "user_agent", "locale"):
            _string(user.get(key), f"{path}.user.{key}")
        if "ip" in user:
            _string(user["ip"], f"{path}.user.ip", required=True)
            try:
                ipaddress.ip_address(user["ip"])
            except ValueError:
                raise _bad(f"{path}.user.ip", "Not a valid IP address") from None
    if "properties" in e:
        _properties(_object(e["properties"], f"{path}.properties"), f"{path}.properties")
    if "page" in e:
        page = _object(e["page"], f"{path}.page")
        _unknown(page, PAGE_KEYS, f"{path}.page")
        for key in ("url", "referrer"):
            if key in page:
                _string(page[key], f"{path}.page.{key}", required=True)
                if not HTTP_URL.fullmatch(page[key]):
                    raise _bad(f"{path}.page.{key}", "Not a valid URL")


def _properties(props: dict[str, Any], path: str) -> None:
    _unknown(props, PROPERTY_KEYS, path)
    if "contents" in props:
        contents = props["contents"]
        if not isinstance(contents, list):
            raise _bad(f"{path}.contents", "Not a valid list")
        for i, item in enumerate(contents):
            where = f"{path}.contents.{i}"
            c = _object(item, where)
            _unknown(c, CONTENT_KEYS, where)
            for key in ("content_id", "content_name", "content_category", "brand"):
                if key in c:
                    _string(c[key], f"{where}.{key}", required=True)
            if "price" in c:
                _number(c["price"], f"{where}.price")
            if "quantity" in c:
                q = c["quantity"]
                if isinstance(q, bool) or not isinstance(q, int):
                    raise _bad(f"{where}.quantity", "Not a valid integer")
                if q < 1:
                    raise _bad(f"{where}.quantity", "Must be greater than or equal to 1")
    if "content_type" in props and props["content_type"] not in ("product", "product_group"):
        raise _bad(f"{path}.content_type", "Must be one of: product, product_group")
    if "currency" in props:
        _string(props["currency"], f"{path}.currency", required=True)
        if props["currency"] not in CURRENCIES:
            raise _bad(f"{path}.currency", "Not a valid ISO 4217 currency code")
    if "value" in props:
        _number(props["value"], f"{path}.value")
    for key in ("order_id", "query", "description"):
        _string(props.get(key), f"{path}.{key}")


def validate_body(body: dict[str, Any], now: float) -> None:
    """Check the top level of a request (not the token); raise :class:`Invalid`."""
    _unknown(body, TOP_LEVEL, "")
    if body.get("event_source") != "web":
        raise _bad("event_source", "Must be one of: web")
    _string(body.get("event_source_id"), "event_source_id", required=True)
    _string(body.get("test_event_code"), "test_event_code")
    data = body.get("data")
    if data is None:
        raise _bad("data", "Missing data for required field")
    if not isinstance(data, list):
        raise _bad("data", "Not a valid list")
    if not data:
        raise _bad("data", "Shorter than minimum length 1")
    if len(data) > MAX_EVENTS:
        raise _bad("data", f"Longer than maximum length {MAX_EVENTS}")
    for i, event in enumerate(data):
        validate_event(event, f"data.{i}", now)


# -------------------------------------------------------------- fast path
# The rules above as strict msgspec types, so a valid request (the common case,
# and every request of a benchmark) is checked in one pass in C. These types are
# *stricter* (no nulls anywhere): anything they refuse goes to validate_body,
# which decides and names the field the way TikTok does.


class _Content(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    content_id: str | UnsetType = UNSET
    content_name: str | UnsetType = UNSET
    content_category: str | UnsetType = UNSET
    brand: str | UnsetType = UNSET
    price: float | UnsetType = UNSET
    quantity: int | UnsetType = UNSET


class _Properties(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    contents: list[_Content] | UnsetType = UNSET
    content_type: Literal["product", "product_group"] | UnsetType = UNSET
    currency: str | UnsetType = UNSET
    value: float | UnsetType = UNSET
    order_id: str | UnsetType = UNSET
    query: str | UnsetType = UNSET
    description: str | UnsetType = UNSET


class _User(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    email: str | list[str] | UnsetType = UNSET
    phone: str | list[str] | UnsetType = UNSET
    external_id: str | list[str] | UnsetType = UNSET
    ttclid: str | UnsetType = UNSET
    ttp: str | UnsetType = UNSET
    ip: str | UnsetType = UNSET
    user_agent: str | UnsetType = UNSET
    locale: str | UnsetType = UNSET


class _Page(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    url: str | UnsetType = UNSET
    referrer: str | UnsetType = UNSET


class _Event(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    event: str
    event_time: int
    event_id: str | UnsetType = UNSET
    user: _User | UnsetType = UNSET
    properties: _Properties | UnsetType = UNSET
    page: _Page | UnsetType = UNSET
    limited_data_use: bool | UnsetType = UNSET


class _Body(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    event_source: Literal["web"]
    event_source_id: str
    data: list[_Event]
    test_event_code: str | UnsetType = UNSET
    partner_name: str | UnsetType = UNSET


_FAST: Final = msgspec.json.Decoder(_Body)


def _ok_number(value: float | UnsetType) -> bool:
    return value is UNSET or (math.isfinite(value) and value >= 0)  # type: ignore[arg-type]


def _ok_hashes(value: str | list[str] | UnsetType) -> bool:
    if value is UNSET:
        return True
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(HEX64.fullmatch(v) for v in values)  # type: ignore[union-attr]


def _ok_event(e: _Event, now: float) -> bool:
    if not e.event or (e.event not in STANDARD_EVENTS and not CUSTOM_EVENT.fullmatch(e.event)):
        return False
    if not now - MAX_AGE_S <= e.event_time <= now + MAX_SKEW_S:
        return False
    u = e.user
    if u is not UNSET and not (
        _ok_hashes(u.email) and _ok_hashes(u.phone) and _ok_hashes(u.external_id)
        and (u.ip is UNSET or _is_ip(u.ip))
    ):  # fmt: skip
        return False
    page = e.page
    if page is not UNSET and not all(
        v is UNSET or HTTP_URL.fullmatch(v) for v in (page.url, page.referrer)
    ):
        return False
    p = e.properties
    if p is UNSET:
        return True
    if not (_ok_number(p.value) and (p.currency is UNSET or p.currency in CURRENCIES)):
        return False
    for c in p.contents if p.contents is not UNSET else ():
        if "" in (c.content_id, c.content_name, c.content_category, c.brand):
            return False
        if not _ok_number(c.price) or (c.quantity is not UNSET and c.quantity < 1):
            return False
    return True


def _is_ip(value: str) -> bool:
    # inet_pton is C and 10x quicker than ipaddress; it is stricter (no IPv6
    # zone ids), which only sends such an address to the slow path.
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, value)
            return True
        except OSError:
            continue
    return False


def fast_decode(raw: bytes) -> _Body | None:
    try:
        return _FAST.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def _fast_ok(body: _Body, now: float) -> bool:
    if not body.event_source_id or not 1 <= len(body.data) <= MAX_EVENTS:
        return False
    return all(_ok_event(e, now) for e in body.data)


def fast_valid(raw: bytes, now: float) -> bool:
    """True only for requests validate_body would accept (never the reverse)."""
    body = fast_decode(raw)
    return body is not None and _fast_ok(body, now)


# ----------------------------------------------------------------------- faults

FaultKind = Literal["rate_limit", "http_429", "http_5xx", "hang", "slow", "reject_event"]


@dataclass
class Fault:
    """One injected misbehaviour.

    * ``rate_limit``: HTTP 200 with code 40100; ``http_429``: HTTP 429 with
      ``Retry-After: retry_after``; ``http_5xx``: HTTP ``status``.
    * ``hang``: wait ``delay`` seconds (or until :meth:`TikTokStandIn.release`
      when ``delay`` is None) before answering; with ``process`` the events are
      accepted and recorded first (the client cannot know: an unknown outcome).
    * ``slow``: wait ``delay`` seconds, then answer normally.
    * ``reject_event``: 40002 for any request carrying ``event_id``, naming its
      index in ``data`` (TikTok rejects the whole batch).

    ``times`` is how many requests it hits (None: until cleared); ``pixel_code``
    limits it to one pixel.
    """

    kind: FaultKind
    times: int | None = 1
    pixel_code: str | None = None
    status: int = 503
    delay: float | None = 5.0
    retry_after: int = 1
    event_id: str | None = None
    process: bool = False
    hits: int = 0


@dataclass(frozen=True)
class Exchange:
    """One request as the stand-in saw it, with its answer."""

    at: float
    pixel_code: str
    token: str
    http_status: int
    code: int
    message: str
    event_ids: tuple[str, ...]
    test_event_code: str | None


@dataclass
class _State:
    tokens: dict[str, frozenset[str] | None] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    arrivals: list[tuple[str, float]] = field(default_factory=list)  # (event_id, time)
    exchanges: list[Exchange] = field(default_factory=list)
    test_codes: dict[str, list[str | None]] = field(default_factory=dict)


class TikTokStandIn:
    """The server. Use as a context manager, or ``start()`` / ``stop()``.

    ``record="full"`` keeps every accepted event as sent (tests);
    ``record="ids"`` keeps only event ids and arrival times (benchmarks).
    """

    def __init__(
        self,
        tokens: dict[str, set[str] | None] | None = None,
        *,
        port: int = 0,
        record: Literal["full", "ids"] = "full",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._state = _State()
        self._released = threading.Event()
        self._record = record
        self._clock = clock
        for token, codes in (tokens or {}).items():
            self.allow(token, *(codes or ()))
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self._server.standin = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None
        self.catalog = CatalogEndpoints(self.token_allowed)  # the Catalog API

    # --------------------------------------------------------------- control

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> TikTokStandIn:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="tiktok-standin", daemon=True,
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # let hanging requests finish
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> TikTokStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def allow(self, token: str, *pixel_codes: str) -> None:
        """Accept ``token`` for these pixel codes (all pixels when none are given)."""
        with self._lock:
            self._state.tokens[token] = frozenset(pixel_codes) if pixel_codes else None

    def token_allowed(self, token: str) -> bool:
        with self._lock:
            return token in self._state.tokens

    def revoke(self, token: str) -> None:
        """From now on ``token`` is answered with 40105."""
        with self._lock:
            self._state.tokens.pop(token, None)

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self._state.faults.append(fault)
        if fault.kind in ("hang", "slow"):
            self._released.clear()
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._state.faults.clear()
        self.release()

    def release(self) -> None:
        """Let every hanging request answer now (and later ones not hang)."""
        self._released.set()

    def reset(self) -> None:
        """Forget what was received (tokens stay)."""
        with self._lock:
            tokens = self._state.tokens
            self._state = _State(tokens=tokens)
        self._released.clear()

    # ---------------------------------------------------------------- records

    def events(self, pixel_code: str | None = None) -> list[dict[str, Any]]:
        """Accepted events in arrival order (of one pixel, or all)."""
        with self._lock:
            if pixel_code is not None:
                return list(self._state.received.get(pixel_code, []))
            return [e for events in self._state.received.values() for e in events]

    def event_ids(self, pixel_code: str | None = None) -> list[str]:
        return [str(e.get("event_id")) for e in self.events(pixel_code)]

    def test_event_codes(self, pixel_code: str) -> list[str | None]:
        """The top-level ``test_event_code`` of each accepted event of a pixel."""
        with self._lock:
            return list(self._state.test_codes.get(pixel_code, []))

    def arrival_count(self) -> int:
        with self._lock:
            return len(self._state.arrivals)

    def arrivals(self) -> list[tuple[str, float]]:
        with self._lock:
            return list(self._state.arrivals)

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._state.exchanges)

    def wait_for(self, predicate: Callable[[TikTokStandIn], bool], timeout: float = 20.0) -> bool:
        """Poll until ``predicate(self)``; returns whether it became true (tests assert)."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    # --------------------------------------------------------------- handling

    def _take_fault(self, pixel_code: str, event_ids: list[str]) -> Fault | None:
        with self._lock:
            for fault in self._state.faults:
                if fault.pixel_code is not None and fault.pixel_code != pixel_code:
                    continue
                if fault.kind == "reject_event" and fault.event_id not in event_ids:
                    continue
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                fault.hits += 1
                return fault
        return None

    def handle(
        self, token: str | None, content_type: str, raw: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one request to the API path: (HTTP status, JSON body, extra headers)."""
        request_id = time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)
        pixel_code, event_ids, test_code, body = "", [], None, None
        fast = fast_decode(raw) if raw else None  # one parse for a well-formed request
        if fast is not None:
            pixel_code = fast.event_source_id
            test_code = fast.test_event_code if fast.test_event_code is not UNSET else None
            event_ids = [str(e.event_id) if e.event_id is not UNSET else "None" for e in fast.data]
        else:
            body = _loads(raw)
            if isinstance(body, dict):
                pixel_code = str(body.get("event_source_id") or "")
                test_code = body.get("test_event_code")
                data = body.get("data")
                if isinstance(data, list):
                    event_ids = [str(e.get("event_id")) for e in data if isinstance(e, dict)]
        fault = self._take_fault(pixel_code, event_ids)
        status, code, message, headers = 200, 0, "OK", {}
        try:
            if fault is not None and fault.kind == "hang":
                if fault.process:  # taken, but the answer comes too late: unknown outcome
                    self._check(token, content_type, raw, fast, pixel_code, event_ids, None)
                    self._accept(pixel_code, raw, body, event_ids, test_code)
                    self._sleep(fault)
                    raise Invalid(0, "OK")
                self._sleep(fault)
                status = 504  # never processed: what a gateway says after giving up
                raise Invalid(50400, "Gateway timeout")
            if fault is not None and fault.kind == "slow":
                self._sleep(fault)
            if fault is not None and fault.kind == "rate_limit":
                raise Invalid(40100, "Too many requests. Please retry in some time.")
            if fault is not None and fault.kind in ("http_429", "http_5xx"):
                status = 429 if fault.kind == "http_429" else fault.status
                if fault.kind == "http_429":
                    headers["Retry-After"] = str(fault.retry_after)
                raise Invalid(40100 if status == 429 else 50000, "Injected fault")
            self._check(token, content_type, raw, fast, pixel_code, event_ids, fault)
            self._accept(pixel_code, raw, body, event_ids, test_code)
        except Invalid as exc:
            code, message = exc.code, exc.message
        with self._lock:
            self._state.exchanges.append(
                Exchange(self._clock(), pixel_code, token or "", status, code, message,
                         tuple(event_ids), test_code)
            )  # fmt: skip
        answer = {"code": code, "message": message, "request_id": request_id, "data": {}}
        return status, answer, headers

    def _sleep(self, fault: Fault) -> None:
        # release() cuts every wait short, so stopping never waits for a hang.
        self._released.wait(fault.delay)

    def _check(
        self,
        token: str | None,
        content_type: str,
        raw: bytes,
        fast: _Body | None,
        pixel_code: str,
        event_ids: list[str],
        fault: Fault | None,
    ) -> None:
        if not token:
            raise Invalid(40105, "Access token is missing: send it in the Access-Token header")
        with self._lock:
            known = token in self._state.tokens
            pixels = self._state.tokens.get(token)
        if not known:
            raise Invalid(40105, "The access token is invalid or has expired")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise Invalid(40002, "Content-Type must be application/json")
        now = self._clock()
        if fast is None or not _fast_ok(fast, now):
            body = _loads(raw)
            if not isinstance(body, dict):
                raise Invalid(40002, "Request body is not a valid JSON object")
            validate_body(body, now)  # raises, naming the field (or accepts a null)
        if pixels is not None and pixel_code not in pixels:
            raise Invalid(40001, f"No permission to operate pixel {pixel_code} with this token")
        if fault is not None and fault.kind == "reject_event":
            index = event_ids.index(str(fault.event_id))
            raise _bad(f"data.{index}.properties.contents.0.content_id", "Not a valid string")

    def _accept(
        self, pixel_code: str, raw: bytes, body: Any, event_ids: list[str], test_code: str | None
    ) -> None:
        now = self._clock()
        data = (body if body is not None else _loads(raw))["data"] if self._record == "full" else []
        with self._lock:
            self._state.arrivals.extend((event_id, now) for event_id in event_ids)
            if self._record == "full":
                self._state.received.setdefault(pixel_code, []).extend(data)
                self._state.test_codes.setdefault(pixel_code, []).extend([test_code] * len(data))


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as TikTok's front ends do

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    @property
    def standin(self) -> TikTokStandIn:
        return self.server.standin  # type: ignore[attr-defined,no-any-return]

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:  # fmt: skip
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:
        raw = self._read_body()
        if self.path == "/_standin/reset":
            self.standin.reset()
            self._send(200, b"{}")
            return
        if self.standin.catalog.handles(self.path):
            status, body = self.standin.catalog.handle(
                self.path, self.headers.get("Access-Token"), self.headers.get("Content-Type", ""),
                raw,
            )  # fmt: skip
            self._send(status, json.dumps(body).encode())
            return
        if self.path != API_PATH:
            self._send(404, b'{"code": 40400, "message": "Not Found"}')
            return
        status, answer, headers = self.standin.handle(
            self.headers.get("Access-Token"), self.headers.get("Content-Type", ""), raw
        )
        self._send(status, json.dumps(answer).encode(), headers)

    def do_GET(self) -> None:
        if self.path == "/_standin/received":
            body = json.dumps(self.standin.arrivals()).encode()
            self._send(200, body)
        elif self.path == "/_standin/count":
            self._send(200, json.dumps({"events": self.standin.arrival_count()}).encode())
        elif self.path == API_PATH:
            self._send(405, b'{"code": 40500, "message": "Method Not Allowed"}')
        else:
            self._send(404, b'{"code": 40400, "message": "Not Found"}')


def iter_duplicates(event_ids: list[str]) -> Iterator[str]:
    """Event ids that occur more than once (what "sent twice" looks like)."""
    seen: set[str] = set()
    for event_id in event_ids:
        if event_id in seen:
            yield event_id
        seen.add(event_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local stand-in for TikTok's Events API")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", action="append", default=[],
                        help="TOKEN or TOKEN=CODE1,CODE2 (repeatable)")  # fmt: skip
    parser.add_argument("--record", choices=("full", "ids"), default="ids")
    ns = parser.parse_args(argv)
    tokens: dict[str, set[str] | None] = {}
    for spec in ns.token:
        token, _, codes = spec.partition("=")
        tokens[token] = set(codes.split(",")) if codes else None
    standin = TikTokStandIn(tokens, port=ns.port, record=ns.record)
    print(f"READY {standin.base_url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        standin._server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
