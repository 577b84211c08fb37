"""Enrichment: a named list of small steps between validation and the log.

Each step looks at the validated event and the request, fills fields of the
:class:`Record` being built, or drops the event with a reason from the closed
list :data:`DROP_REASONS` (counted per reason in ``/metrics``). The shape is
Plausible's ingestion pipeline: a reader finds a rule by the step's name.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import parse_qsl, urlsplit

import msgspec

from pixel_server.events.normalise import hash_email, hash_external_id, hash_phone
from pixel_server.events.redact import redact_json, redact_text, redact_url
from pixel_server.events.schema import Event, Source
from pixel_server.pipeline.record import ContentRow, Record, RefundRow
from pixel_server.pixel import Pixel

DropReason = Literal["bot", "duplicate"]
DROP_REASONS: Final[tuple[str, ...]] = DropReason.__args__  # type: ignore[attr-defined]

CHANNELS: Final = ("tiktok_paid", "tiktok_organic", "other_paid", "referral", "direct")

# Crawlers, link previewers and HTTP libraries. HeadlessChrome is deliberately
# absent: real stores see it from legitimate testing tools, and so do our tests.
_BOT_UA: Final = re.compile(
    r"bot\b|crawl|spider|slurp|facebookexternalhit|bingpreview|mediapartners|"
    r"python-requests|python-httpx|curl/|wget/|go-http-client|java/|okhttp|"
    r"headlesschrome/0|phantomjs|lighthouse|pingdom|uptimerobot|ahrefs|semrush",
    re.IGNORECASE,
)
_TIKTOK_HOSTS: Final = ("tiktok.com", "tiktokv.com", "tiktokcdn.com")
_OTHER_CLICK_IDS: Final = ("gclid", "gbraid", "wbraid", "fbclid", "msclkid", "dclid", "twclid",
                           "li_fat_id", "epik", "sccid", "rdt_cid")  # fmt: skip
_PAID_MEDIUMS: Final = frozenset(
    {"cpc", "ppc", "paid", "paidsocial", "paid_social", "paid-social", "cpm", "display", "ads"}
)
_UTM_KEYS: Final = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
_MAX_UTM: Final = 256


@dataclass(slots=True)
class Context:
    """What a step may know about the request an event came in."""

    pixel: Pixel
    source: Source
    now: float
    client_ip: str = ""  # the browser's address (proxies resolved), browser source only
    user_agent: str = ""  # the request's User-Agent header
    cookie_anonymous_id: str = ""  # our first-party cookie, when the browser sent it
    test_event_code: str = ""
    # The dedup index: True when this (pixel, event, event_id, source) was seen
    # within the window. None disables the step (tools that re-import events).
    seen: Callable[[Record], bool] | None = None
    # Told the name of each field the PII scan changed (a metric).
    on_redact: Callable[[str], None] | None = None


@dataclass(slots=True)
class Work:
    """One event on its way through the steps."""

    event: Event
    record: Record
    query: dict[str, str]  # the page URL's query parameters (first value of each)


Step = Callable[[Work, Context], DropReason | None]


def start(event: Event, ctx: Context) -> Work:
    """The record's fields that come straight from the validated event."""
    props = event.properties
    contents: list[ContentRow] = [
        (
            c.content_id or "",
            c.item_group_id or "",
            c.content_name or "",
            c.content_category or "",
            c.brand or "",
            c.quantity if c.quantity is not None else 1,
            c.price,
        )
        for c in props.contents or ()
    ]
    refunds: list[RefundRow] = []
    if any(c.refunded is not None or c.refunded_share is not None for c in props.contents or ()):
        refunds = [(c.refunded or 0.0, c.refunded_share or 0.0) for c in props.contents or ()]
    record = Record(
        pixel_id=ctx.pixel.id,
        event=event.event,
        received_event=event.received_event,
        event_id=event.event_id or "",
        source=ctx.source,
        event_time=event.event_time,
        received_at=ctx.now,
        locale=event.user.locale or "",
        ttp=event.user.ttp or "",
        ttclid=event.user.ttclid or "",
        page_url=event.page.url if event.page else "",
        page_referrer=event.page.referrer if event.page else "",
        value=props.value,
        currency=props.currency or "",
        order_id=props.order_id or "",
        search_query=props.query or "",
        content_type=props.content_type or "",
        description=props.description or "",
        contents=contents,
        # msgspec, not orjson: it encodes whatever msgspec decoded (integers beyond
        # 64 bits, nesting deeper than orjson's 254 levels).
        properties=msgspec.json.encode(props.custom).decode() if props.custom else "",
        consent=event.consent or "unknown",
        limited_data_use=event.limited_data_use,
        test_event_code=ctx.test_event_code,
        content_refunds=refunds,
    )
    return Work(event, record, _query(record.page_url))


# Events of one page share its URL and referrer: parse each string once.
@functools.lru_cache(maxsize=4096)
def _query(url: str) -> dict[str, str]:
    """The URL's query parameters, first value of each (shared: never mutate)."""
    query: dict[str, str] = {}
    if "?" in url:
        try:
            pairs = parse_qsl(urlsplit(url).query)
        except ValueError:  # e.g. a malformed IPv6 literal: no parameters to read
            pairs = []
        for key, value in pairs:
            query.setdefault(key, value)
    return query


# --------------------------------------------------------------------- steps


def put_user_agent(work: Work, ctx: Context) -> None:
    # A browser's own header is the truth; a back end reports the shopper's UA.
    ua = ctx.user_agent if ctx.source == "browser" else ""
    work.record.user_agent = (ua or work.event.user.user_agent or "")[:1024]


def drop_bots(work: Work, ctx: Context) -> DropReason | None:
    if ctx.source != "browser":
        return None  # a server copy carries the shopper's UA, not the caller's
    return "bot" if _is_bot(work.record.user_agent) else None


# Every event of a request shares its User-Agent and address: cache the
# per-string work (the regex alone costs more than the rest of a step list).
@functools.lru_cache(maxsize=4096)
def _is_bot(user_agent: str) -> bool:
    return not user_agent or _BOT_UA.search(user_agent) is not None


def put_client_ip(work: Work, ctx: Context) -> None:
    raw = ctx.client_ip if ctx.source == "browser" else (work.event.user.ip or "")
    work.record.ip = _normalise_ip(raw, ctx.pixel.ip_truncation)


@functools.lru_cache(maxsize=4096)
def _normalise_ip(raw: str, truncate: bool) -> str:
    """The canonical form of an address ('' if it is none); /24 or /48 when truncating."""
    try:
        ip = ipaddress.ip_address(raw.strip())
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack listener's view of an IPv4 client
    if truncate:
        prefix = 24 if ip.version == 4 else 48
        ip = ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address
    return str(ip)


def put_click_and_utm(work: Work, ctx: Context) -> None:
    record = work.record
    if not record.ttclid and work.query.get("ttclid"):
        record.ttclid = work.query["ttclid"][:512]
    for key in _UTM_KEYS:
        setattr(record, key, work.query.get(key, "")[:_MAX_UTM])


def put_referrer_host(work: Work, ctx: Context) -> None:
    work.record.referrer_host = _host(work.record.page_referrer)


def put_channel(work: Work, ctx: Context) -> None:
    """tiktok_paid > tiktok_organic > other_paid > referral > direct."""
    record = work.record
    source = record.utm_source.lower()
    ref = record.referrer_host
    if record.ttclid:
        channel = "tiktok_paid"
    elif "tiktok" in source or any(ref == h or ref.endswith("." + h) for h in _TIKTOK_HOSTS):
        channel = "tiktok_organic"
    elif any(k in work.query for k in _OTHER_CLICK_IDS) or (
        record.utm_medium.lower() in _PAID_MEDIUMS
    ):
        channel = "other_paid"
    elif ref and ref != _host(record.page_url):
        channel = "referral"
    else:
        channel = "direct"
    record.channel = channel


@functools.lru_cache(maxsize=4096)
def _host(url: str) -> str:
    """The URL's host without www. ('' for none)."""
    try:
        host = urlsplit(url).hostname if url else None
    except ValueError:  # e.g. a malformed IPv6 literal in a referrer
        host = None
    return (host or "").removeprefix("www.")


def put_anonymous_id(work: Work, ctx: Context) -> None:
    # Our server-set cookie outlives a script-set one (Safari caps those at 7 days).
    work.record.anonymous_id = ctx.cookie_anonymous_id or work.event.user.anonymous_id or ""


def put_event_id(work: Work, ctx: Context) -> None:
    if not work.record.event_id:
        work.record.event_id = "srv-" + uuid.uuid4().hex
        work.record.event_id_assigned = True


def drop_duplicates(work: Work, ctx: Context) -> DropReason | None:
    """Same-source copies within the window collapse; other sources merge later
    (docs/architecture.md §2)."""
    if ctx.seen is None or work.record.event_id_assigned:
        return None
    return "duplicate" if ctx.seen(work.record) else None


def hash_pii(work: Work, ctx: Context) -> None:
    user = work.event.user
    region = ctx.pixel.default_phone_region
    record = work.record
    if user.email is not None:
        record.email_sha256 = _as_list(hash_email(user.email))
    if user.phone is not None:
        record.phone_sha256 = _as_list(hash_phone(user.phone, region))
    if user.external_id is not None:
        record.external_id_sha256 = _as_list(hash_external_id(user.external_id))


#: The free-text fields the scan reads, and how each is cleaned.
_FREE_TEXT: Final = (
    ("page_url", redact_url),
    ("page_referrer", redact_url),
    ("description", redact_text),
    ("search_query", redact_text),
    ("properties", redact_json),
)


def redact_free_text(work: Work, ctx: Context) -> None:
    """Emails and phone numbers outside ``user.*`` never reach the log
    (:mod:`pixel_server.events.redact` says what is found and what replaces it)."""
    record = work.record
    region = ctx.pixel.default_phone_region
    for name, redact in _FREE_TEXT:
        before: str = getattr(record, name)
        if not before:
            continue
        after = redact(before, region)
        if after != before:
            setattr(record, name, after)
            if ctx.on_redact is not None:
                ctx.on_redact(name)


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def apply_consent(work: Work, ctx: Context) -> None:
    """Consent denied: keep the event for counts, without anything identifying."""
    record = work.record
    if record.consent != "denied":
        return
    for name in ("anonymous_id", "ip", "user_agent", "ttclid", "ttp"):
        setattr(record, name, "")
    record.email_sha256 = record.phone_sha256 = record.external_id_sha256 = []
    # Query strings carry click ids and e-mail addresses often enough to go too.
    record.page_url = record.page_url.split("?", 1)[0]
    record.page_referrer = record.page_referrer.split("?", 1)[0]


#: The order matters: bots are dropped before any work is spent on them, and
#: consent is applied last so that nothing a later step adds can leak.
STEPS: Final[tuple[tuple[str, Step], ...]] = (
    ("put_user_agent", put_user_agent),
    ("drop_bots", drop_bots),
    ("put_client_ip", put_client_ip),
    ("put_click_and_utm", put_click_and_utm),
    ("put_referrer_host", put_referrer_host),
    ("put_channel", put_channel),
    ("put_anonymous_id", put_anonymous_id),
    ("put_event_id", put_event_id),
    ("drop_duplicates", drop_duplicates),
    ("hash_pii", hash_pii),
    ("redact_free_text", redact_free_text),
    ("apply_consent", apply_consent),
)


def run(event: Event, ctx: Context) -> Record | DropReason:
    """Run every step; the finished record, or the reason it was dropped."""
    work = start(event, ctx)
    for _, step in STEPS:
        reason = step(work, ctx)
        if reason is not None:
            return reason
    return work.record
