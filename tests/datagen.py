"""A shop's traffic with known truth, for the report tests and the benchmark.

:func:`generate` simulates visitors of a small catalogue (products with
variants, two currencies) arriving through TikTok ads (``ttclid``), organic
TikTok, other paid channels, referrals or directly, over several days, and
walking the funnel ViewContent → AddToCart → InitiateCheckout →
AddPaymentInfo → Purchase. It returns

* ``records``: every *copy* the server would store, as pipeline
  :class:`~pixel_server.pipeline.record.Record` objects (browser, server and
  webhook copies of one purchase, in both arrival orders; same-source retries;
  a copy more than 48 h after its twin; events without ``event_id``; a refund);
* ``events``: the merged events those copies stand for — what docs/architecture.md §2 says a
  report must count — from which :class:`Truth` computes every report's numbers
  in plain Python, independently of the SQL.

The records are meant for ``Runtime.insert_events`` (the loader's own insert),
which skips HTTP for speed; the ingest path itself is tested elsewhere.
:func:`record_batches` streams the same kind of traffic, without truth, for
the benchmark's millions of rows.
"""

from __future__ import annotations

import random
import zoneinfo
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pixel_server.pipeline.record import Record

FUNNEL = ("ViewContent", "AddToCart", "InitiateCheckout", "AddPaymentInfo", "Purchase")
SHOP = "https://shop.example.com"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
WINDOW_S = 48 * 3600

# (product id, name, [(variant id, price)]) — prices in the visitor's currency.
CATALOGUE: tuple[tuple[str, str, tuple[tuple[str, Decimal], ...]], ...] = (
    (
        "tee",
        "T-shirt",
        (("tee-s", Decimal("19.90")), ("tee-m", Decimal("19.90")), ("tee-l", Decimal("21.50"))),
    ),
    ("mug", "Mug", (("mug-white", Decimal("9.99")), ("mug-black", Decimal("11.25")))),
    ("cap", "Cap", (("cap-one", Decimal("15.00")),)),
    (
        "hoodie",
        "Hoodie",
        (
            ("hoodie-s", Decimal("49.00")),
            ("hoodie-m", Decimal("49.00")),
            ("hoodie-l", Decimal("52.00")),
            ("hoodie-xl", Decimal("55.00")),
        ),
    ),
)
PRODUCT_NAMES = {p: name for p, name, _ in CATALOGUE}

# Landing channels with how a browser copy shows them (query string, referrer).
CHANNEL_LANDING: dict[str, tuple[str, str]] = {
    "tiktok_paid": ("?ttclid=E.C.P.{n}", "https://www.tiktok.com/"),
    "tiktok_organic": ("?utm_source=tiktok&utm_medium=social", "https://www.tiktok.com/"),
    "other_paid": ("?gclid=G{n}&utm_medium=cpc", "https://www.google.com/"),
    "referral": ("", "https://blog.example.org/post"),
    "direct": ("", ""),
}


Content = tuple[str, str, int, Decimal]  # variant (content_id), product (item_group_id), qty, price


@dataclass
class Event:
    """One merged event: what the reports must count once."""

    name: str
    event_id: str
    time: float  # the earliest copy's time (Unix seconds)
    anonymous_id: str = ""
    channel: str = "direct"
    value: Decimal | None = None
    currency: str = ""
    order_id: str = ""
    contents: list[Content] = field(default_factory=list)
    sources: tuple[str, ...] = ("browser",)
    copies: int = 1
    assigned: bool = False  # event_id made by the server
    # A webhook Refund's lines: (refunded by line, share of money without lines)
    refund_lines: list[tuple[Decimal, Decimal]] = field(default_factory=list)

    def line_amounts(self) -> list[tuple[Decimal, Decimal]]:
        """Per line, what a Refund returns: (by line, share); price × quantity
        by line when it carries no amounts."""
        return self.refund_lines or [(pr * q, Decimal(0)) for _, _, q, pr in self.contents]


@dataclass
class Dataset:
    pixel_id: str
    tz: str
    first_day: date
    days: int
    records: list[Record]
    events: list[Event]


def _ms(t: float) -> float:
    return round(t * 1000) / 1000  # DateTime64(3): keep times exact to the millisecond


class _Builder:
    """Turns simulated shopper actions into copies (records) and merged events."""

    def __init__(self, pixel_id: str, rng: random.Random) -> None:
        self.pixel_id = pixel_id
        self.rng = rng
        self.records: list[Record] = []
        self.events: list[Event] = []
        self.serial = 0

    def next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    def copy(
        self,
        ev: Event,
        source: str,
        t: float,
        *,
        browser_value: Decimal | None = None,
        channel: str | None = None,
        landing: str = "",
        assigned_id: str = "",
    ) -> Record:
        """One stored copy of ``ev`` from ``source`` at time ``t``."""
        browser = source == "browser"
        ch = channel if channel is not None else (ev.channel if browser else "direct")
        query, referrer = CHANNEL_LANDING[ch] if browser and landing else ("", "")
        query = query.format(n=self.serial)
        value = ev.value if not browser else browser_value
        rec = Record(
            pixel_id=self.pixel_id,
            event=ev.name,
            received_event=ev.name,
            event_id=assigned_id or ev.event_id,
            source=source,
            event_time=_ms(t),
            received_at=_ms(t + 0.5),
            event_id_assigned=bool(assigned_id) or ev.assigned,
            anonymous_id=ev.anonymous_id if browser else "",
            user_agent=UA if browser else "",
            ttclid=query.split("=", 1)[1].split("&")[0] if "ttclid" in query else "",
            page_url=f"{SHOP}{landing or '/'}{query}" if browser else "",
            page_referrer=referrer,
            referrer_host=referrer.split("/")[2].removeprefix("www.") if referrer else "",
            channel=ch,
            utm_source="tiktok" if ch == "tiktok_organic" and browser else "",
            utm_medium={"tiktok_organic": "social", "other_paid": "cpc"}.get(ch, "")
            if browser
            else "",
            value=float(value) if value is not None else None,
            currency=ev.currency if (value is not None or not browser) else "",
            order_id=ev.order_id if not browser or ev.name == "Purchase" else "",
            contents=[
                (v, p, PRODUCT_NAMES[p], "", "", q, float(pr)) for v, p, q, pr in ev.contents
            ],
            content_refunds=[(float(r), float(sh)) for r, sh in ev.refund_lines],
        )
        self.records.append(rec)
        return rec

    def browser_event(self, ev: Event, t: float, landing: str = "") -> None:
        """A browser-only event, sometimes fired twice (a same-source retry)."""
        ev.time = _ms(t)
        self.copy(ev, "browser", t, browser_value=ev.value, landing=landing)
        if self.rng.random() < 0.08:  # double-fired: 7 ms later, collapses into the same event
            self.copy(ev, "browser", t + 0.007, browser_value=ev.value, landing=landing)
            ev.copies += 1
        self.events.append(ev)


def _fmt(d: Decimal) -> Decimal:
    return d.quantize(Decimal("0.0001"))


def generate(
    *,
    seed: int = 7,
    visitors: int = 400,
    days: int = 14,
    first_day: date = date(2026, 3, 2),
    tz: str = "Europe/Berlin",
    pixel_id: str = "px_datagen",
) -> Dataset:
    """A deterministic dataset: ``visitors`` shoppers over ``days`` days (in ``tz``)."""
    rng = random.Random(seed)
    b = _Builder(pixel_id, rng)
    zone = zoneinfo.ZoneInfo(tz)
    t0 = datetime.combine(first_day, datetime.min.time(), zone).timestamp()
    span = days * 86400.0
    channels = list(CHANNEL_LANDING)
    for n in range(visitors):
        anon = f"anon-{n}"
        currency = "EUR" if n % 3 else "USD"
        # 1-3 visits; each visit lands through a channel (a touch unless direct).
        visit_times = sorted(
            t0 + rng.random() * (span - 4 * 3600) for _ in range(rng.randint(1, 3))
        )
        for visit, start in enumerate(visit_times):
            t = start
            channel = rng.choices(channels, weights=(3, 2, 1, 1, 3))[0]
            landing = Event("PageView", b.next_id("pv"), t, anon, channel)
            b.browser_event(landing, t, landing="/")
            product, _, variants = rng.choice(CATALOGUE)
            cart: list[Content] = []
            for _ in range(rng.randint(1, 3)):
                t += rng.uniform(5, 120)
                variant, price = rng.choice(variants)
                b.browser_event(
                    Event(
                        "ViewContent",
                        b.next_id("vc"),
                        t,
                        anon,
                        "direct",
                        price,
                        currency,
                        contents=[(variant, product, 1, price)],
                    ),
                    t,
                )
                if rng.random() < 0.55:
                    t += rng.uniform(5, 60)
                    qty = rng.randint(1, 3)
                    item = (variant, product, qty, price)
                    cart.append(item)
                    b.browser_event(
                        Event(
                            "AddToCart",
                            b.next_id("atc"),
                            t,
                            anon,
                            "direct",
                            price * qty,
                            currency,
                            contents=[item],
                        ),
                        t,
                    )
            if not cart or rng.random() < 0.3:
                continue
            total = sum((q * p for _, _, q, p in cart), Decimal(0))
            for step in ("InitiateCheckout", "AddPaymentInfo"):
                t += rng.uniform(10, 300)
                b.browser_event(
                    Event(
                        step,
                        b.next_id(step[:3].lower()),
                        t,
                        anon,
                        "direct",
                        total,
                        currency,
                        contents=list(cart),
                    ),
                    t,
                )
                if rng.random() < 0.2:
                    break
            else:
                t += rng.uniform(10, 300)
                _purchase(b, anon, currency, cart, total, t, n, visit)
    _specials(b, t0, span)
    b.events.sort(key=lambda e: (e.time, e.event_id))
    return Dataset(pixel_id, tz, first_day, days, b.records, b.events)


def _purchase(
    b: _Builder,
    anon: str,
    currency: str,
    cart: list[Content],
    total: Decimal,
    t: float,
    n: int,
    visit: int,
) -> None:
    """A purchase from the thank-you page and the store's back end, in varied orders."""
    order = f"{1000 + n}-{visit}"
    ev = Event(
        "Purchase", f"purchase:{order}", t, anon, "direct", _fmt(total), currency, order, list(cart)
    )
    plan = b.rng.choice(["bs", "sb", "bw", "wb", "bsw", "b", "s"])
    times: list[float] = []
    for i, letter in enumerate(plan):
        source = {"b": "browser", "s": "server", "w": "webhook"}[letter]
        # Each later copy arrives 1-90 s after the one before: the first letter is first.
        ct = t + i * b.rng.uniform(1, 90)
        times.append(_ms(ct))
        # The browser's own idea of the value is a guess; the back end's wins.
        b.copy(ev, source, ct, browser_value=ev.value if plan == "b" else Decimal(1))
    ev.time = min(times)
    ev.sources = tuple(sorted({"b": "browser", "s": "server", "w": "webhook"}[x] for x in plan))
    ev.copies = len(plan)
    if "b" not in plan:  # a back-end-only purchase knows no anonymous id
        ev.anonymous_id = ""
    b.events.append(ev)


def _specials(b: _Builder, t0: float, span: float) -> None:
    """The awkward cases the rules are for, at known places."""
    mid = t0 + span / 2
    # A webhook copy arrives 50 h after its browser twin: TikTok's 48 h window is
    # over, so it is a second event (and a second order).
    first = Event(
        "Purchase",
        "purchase:late-1",
        mid,
        "anon-late",
        "direct",
        Decimal("30.0000"),
        "USD",
        "late-1",
        [("cap-one", "cap", 2, Decimal("15.00"))],
    )
    b.copy(first, "browser", mid, browser_value=Decimal("30"))
    b.events.append(replace(first, value=Decimal("30.0000")))
    late = replace(first, time=_ms(mid + 50 * 3600), anonymous_id="", sources=("webhook",))
    b.copy(late, "webhook", late.time)
    b.events.append(late)
    # A browser event and a server purchase without event_id: never merged.
    vc = Event(
        "ViewContent",
        "",
        mid + 60,
        "anon-noid",
        "direct",
        Decimal("9.99"),
        "EUR",
        contents=[("mug-white", "mug", 1, Decimal("9.99"))],
    )
    vc.event_id = "srv-noid-1"
    vc.assigned = True
    b.copy(vc, "browser", vc.time, browser_value=vc.value)
    b.events.append(vc)
    noid = Event(
        "Purchase",
        "srv-noid-2",
        mid + 120,
        "",
        "direct",
        Decimal("11.2500"),
        "EUR",
        "noid-1",
        [("mug-black", "mug", 1, Decimal("11.25"))],
        ("server",),
        1,
        True,
    )
    b.copy(noid, "server", noid.time)
    b.events.append(noid)
    # A refund from the store's webhook: negative value, nets out revenue.
    paid = next(
        e
        for e in b.events
        if e.name == "Purchase"
        and e.currency == "EUR"
        and e.anonymous_id
        and len(e.contents) >= 1
        and e.time < mid
    )
    v, p, _, price = paid.contents[0]
    refund = Event(
        "Refund",
        f"refund:{paid.order_id}",
        _ms(mid + 7200),
        "",
        "direct",
        _fmt(-price),
        "EUR",
        paid.order_id,
        [(v, p, 1, price)],
        ("webhook",),
    )
    b.copy(refund, "webhook", refund.time)
    b.events.append(refund)
    _refunds_with_lines(b, t0 + span)
    # A ttclid click 1.5 days before a purchase: inside the 7-day window, outside the 1-day one.
    click_t = _ms(mid - 36 * 3600)
    click = Event("PageView", "pv-window", click_t, "anon-window", "tiktok_paid")
    b.browser_event(click, click_t, landing="/")
    buy = Event(
        "Purchase",
        "purchase:window-1",
        _ms(mid + 3 * 3600),
        "anon-window",
        "direct",
        Decimal("49.0000"),
        "USD",
        "window-1",
        [("hoodie-s", "hoodie", 1, Decimal("49.00"))],
        ("browser", "server"),
        2,
    )
    b.copy(buy, "server", buy.time)
    b.copy(buy, "browser", buy.time + 2, browser_value=Decimal("1"))
    b.events.append(buy)


def _refunds_with_lines(b: _Builder, end: float) -> None:
    """Webhook refunds as the platforms' mappings make them, for about one order
    in seven (some refunded twice): one unit of a line, for less than its price
    (a discount), with shipping on top (order level: on no product); or an
    amount without lines, spread over the order's lines in proportion to their
    value, in cents, the odd cents to the largest fractions."""
    orders = [e for e in b.events if e.name == "Purchase" and e.order_id and e.contents]
    for n, paid in enumerate(orders):
        if b.rng.random() > 0.15:
            continue
        at = _ms(min(paid.time + b.rng.uniform(3600, 5 * 86400), end - 60))
        if b.rng.random() < 0.5:
            v, p, _, price = paid.contents[0]
            by_line = max(price - Decimal("1.50"), Decimal("0.50"))
            shipping = Decimal("4.95") if n % 2 else Decimal(0)
            lines, contents = [(by_line, Decimal(0))], [(v, p, 1, price)]
            value = by_line + shipping
        else:
            value = (paid.value or Decimal(0)) * Decimal("0.3")
            value = value.quantize(Decimal("0.01"))
            weights = [q * pr for _, _, q, pr in paid.contents]
            shares = _largest_remainder(value, weights)
            lines = [(Decimal(0), share) for share in shares]
            contents = [(v, p, 0, pr) for v, p, _, pr in paid.contents]
        refund = Event(
            "Refund",
            f"refund:{paid.order_id}:{b.next_id('r')}",
            at,
            "",
            "direct",
            _fmt(-value),
            paid.currency,
            paid.order_id,
            contents,
            ("webhook",),
            refund_lines=lines,
        )
        b.copy(refund, "webhook", refund.time)
        b.events.append(refund)


def _largest_remainder(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    cents = int(total * 100)
    whole = sum(weights, Decimal(0))
    exact = [Decimal(cents) * w / whole for w in weights]
    floors = [int(x) for x in exact]  # non-negative: int() floors
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[: cents - sum(floors)]:
        floors[i] += 1
    return [Decimal(c) / 100 for c in floors]


# --------------------------------------------------------------------- truth


def _day(t: float, zone: zoneinfo.ZoneInfo) -> str:
    return datetime.fromtimestamp(t, zone).date().isoformat()


@dataclass
class Truth:
    """Every report's numbers, computed from the merged events in Python."""

    events: list[Event]
    tz: str
    start: float  # range [start, end) as Unix seconds
    end: float

    @classmethod
    def of(cls, ds: Dataset, first: date, last: date, tz: str | None = None) -> Truth:
        zone = zoneinfo.ZoneInfo(tz or ds.tz)
        start = datetime.combine(first, datetime.min.time(), zone).timestamp()
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone).timestamp()
        return cls(ds.events, tz or ds.tz, start, end)

    def in_range(self, names: tuple[str, ...] | None = None) -> list[Event]:
        return [
            e
            for e in self.events
            if self.start <= e.time < self.end and (names is None or e.name in names)
        ]

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.tz)

    def overview(self) -> tuple[dict[tuple[str, str], int], int, dict[str, int]]:
        """((day, event) -> events, unique visitors, day -> unique visitors)."""
        counts: dict[tuple[str, str], int] = defaultdict(int)
        visitors: dict[str, set[str]] = defaultdict(set)
        for e in self.in_range():
            day = _day(e.time, self.zone)
            counts[(day, e.name)] += 1
            if e.anonymous_id:
                visitors[day].add(e.anonymous_id)
        everyone = {e.anonymous_id for e in self.in_range() if e.anonymous_id}
        return dict(counts), len(everyone), {d: len(v) for d, v in visitors.items()}

    def funnel(self) -> list[int]:
        """Visitors reaching each step, the steps done in order within the range."""
        by_visitor: dict[str, list[Event]] = defaultdict(list)
        for e in self.in_range(FUNNEL):
            if e.anonymous_id:
                by_visitor[e.anonymous_id].append(e)
        reached = [0] * len(FUNNEL)
        for evs in by_visitor.values():
            level = 0
            for e in sorted(evs, key=lambda e: e.time):
                if level < len(FUNNEL) and e.name == FUNNEL[level]:
                    level += 1
            for k in range(level):
                reached[k] += 1
        return reached

    def purchases(self) -> dict[tuple[str, str], dict[str, Decimal | int]]:
        """(day, currency) -> orders, gross, refunds, revenue (net)."""
        out: dict[tuple[str, str], dict[str, Decimal | int]] = {}
        for e in self.in_range(("Purchase", "Refund")):
            row = out.setdefault(
                (_day(e.time, self.zone), e.currency),
                {
                    "orders": 0,
                    "gross_revenue": Decimal(0),
                    "refunds": 0,
                    "refunded": Decimal(0),
                    "revenue": Decimal(0),
                },
            )
            value = e.value or Decimal(0)
            if e.name == "Purchase":
                row["orders"] += 1
                row["gross_revenue"] += value
            else:
                row["refunds"] += 1
                row["refunded"] += value
            row["revenue"] += value
        return out

    def products(self) -> dict[tuple[str, str], dict[str, object]]:
        """(product, variant or "") -> views, add_to_carts, orders, units,
        refunded_units and, by currency, gross_revenue, refunded_by_line,
        refunded_without_lines, refunded and revenue (net) (view_to_purchase is
        orders / views). A Refund line without amounts returns price × quantity."""
        money = ("gross_revenue", "refunded_by_line", "refunded_without_lines")
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        per_event: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        for e in self.in_range(("ViewContent", "AddToCart", "Purchase", "Refund")):
            amounts = e.refund_lines or [
                (price * qty, Decimal(0)) for _, _, qty, price in e.contents
            ]
            for (variant, product, qty, price), (by_line, share) in zip(
                e.contents, amounts, strict=True
            ):
                for key in ((product, ""), (product, variant)):
                    row = rows.setdefault(
                        key,
                        {"units": 0, "refunded_units": 0}
                        | {m: defaultdict(Decimal) for m in money},
                    )
                    per_event[key].add((e.name, e.event_id + str(e.time)))
                    if e.name in ("Purchase", "Refund"):
                        for m in money:
                            row[m][e.currency] += 0
                    if e.name == "Purchase":
                        row["units"] += qty
                        row["gross_revenue"][e.currency] += price * qty
                    elif e.name == "Refund":
                        row["refunded_units"] += qty
                        row["refunded_by_line"][e.currency] += by_line
                        row["refunded_without_lines"][e.currency] += share
        for key, row in rows.items():
            names = [n for n, _ in per_event[key]]
            row["views"] = names.count("ViewContent")
            row["add_to_carts"] = names.count("AddToCart")
            row["orders"] = names.count("Purchase")
            for m in money:
                row[m] = dict(row[m])
            row["refunded"] = {
                c: v + row["refunded_without_lines"][c] for c, v in row["refunded_by_line"].items()
            }
            row["revenue"] = {c: v - row["refunded"][c] for c, v in row["gross_revenue"].items()}
        return rows

    def attribution_channel(self, purchase: Event, window_days: int, model: str) -> str:
        if not purchase.anonymous_id:
            return "direct"
        lo = purchase.time - window_days * 86400
        touches = [
            e
            for e in self.events
            if e.anonymous_id == purchase.anonymous_id
            and e.channel != "direct"
            and lo <= e.time <= purchase.time
        ]
        if not touches:
            return "direct"
        touches.sort(key=lambda e: e.time)
        return (touches[-1] if model == "last_touch" else touches[0]).channel

    def _orders(self) -> dict[str, Event]:
        """order id -> its earliest Purchase event (what a refund is attributed by)."""
        out: dict[str, Event] = {}
        for e in reversed(self.events):
            if e.name == "Purchase" and e.order_id:
                out[e.order_id] = e
        return out

    def attribution(
        self, window_days: int, model: str
    ) -> dict[tuple[str, str], dict[str, Decimal | int]]:
        """(channel, currency) -> orders, revenue (net of refunds, by the refunded order's
        channel)."""
        out: dict[tuple[str, str], dict[str, Decimal | int]] = {}
        by_order = self._orders()
        for e in self.in_range(("Purchase", "Refund")):
            if e.name == "Purchase":
                channel = self.attribution_channel(e, window_days, model)
            else:
                paid = by_order.get(e.order_id)
                channel = self.attribution_channel(paid, window_days, model) if paid else "direct"
            row = out.setdefault((channel, e.currency), {"orders": 0, "revenue": Decimal(0)})
            if e.name == "Purchase":
                row["orders"] += 1
            row["revenue"] += e.value or Decimal(0)
        return out

    def attribution_products(
        self, window_days: int, model: str
    ) -> dict[tuple[str, str, str], dict[str, Decimal | int]]:
        """(channel, product, currency) -> orders, units, revenue (contents of purchases,
        less the contents of refunds, by the refunded order's channel)."""
        out: dict[tuple[str, str, str], dict[str, Decimal | int]] = {}
        by_order = self._orders()
        for e in self.in_range(("Purchase", "Refund")):
            paid = e if e.name == "Purchase" else by_order.get(e.order_id)
            channel = self.attribution_channel(paid, window_days, model) if paid else "direct"
            seen: set[str] = set()
            amounts = e.refund_lines or [
                (price * qty, Decimal(0)) for _, _, qty, price in e.contents
            ]
            for (_, product, qty, price), (by_line, share) in zip(e.contents, amounts, strict=True):
                row = out.setdefault(
                    (channel, product, e.currency),
                    {"orders": 0, "units": 0, "revenue": Decimal(0)},
                )
                if e.name == "Refund":
                    row["revenue"] -= by_line + share
                    continue
                if product not in seen:
                    row["orders"] += 1
                    seen.add(product)
                row["units"] += qty
                row["revenue"] += price * qty
        return out

    def dedup(self) -> dict[str, int]:
        """Merged events by source combination, events with more copies than sources,
        and events without a client event_id."""
        out: dict[str, int] = defaultdict(int)
        for e in self.in_range():
            out["+".join(e.sources)] += 1
            if e.copies > len(e.sources):
                out["same_source_duplicates"] += 1
            if e.assigned:
                out["missing_event_id"] += 1
        return dict(out)


# ----------------------------------------------------------------- benchmark


def record_batches(
    *,
    total: int,
    batch: int = 200_000,
    days: int = 90,
    pixel_id: str = "px_bench",
    first_day: date = date(2026, 1, 1),
    seed: int = 1,
) -> Iterator[list[Record]]:
    """About ``total`` copies of the same kind of traffic, ``batch`` at a time.

    Visitors are simulated in chunks with :func:`generate` (no truth kept) and
    time-shifted so the whole run covers ``days`` days evenly.
    """
    produced = 0
    chunk_days = 1
    chunk = 0
    pending: list[Record] = []
    visitors = 2000
    while produced < total:
        ds = generate(
            seed=seed * 1_000_003 + chunk,
            visitors=visitors,
            days=chunk_days,
            first_day=first_day + timedelta(days=chunk % days),
            tz="UTC",
            pixel_id=pixel_id,
        )
        suffix = f"~{chunk}"
        for r in ds.records:
            # Ids unique per chunk, so chunks never merge with each other.
            r.event_id += suffix
            if r.anonymous_id:
                r.anonymous_id += f"~{chunk % 50}"
            if r.order_id:
                r.order_id += suffix
        pending.extend(ds.records[: total - produced])
        produced += min(len(ds.records), total - produced)
        chunk += 1
        while len(pending) >= batch:
            yield pending[:batch]
            pending = pending[batch:]
    if pending:
        yield pending
