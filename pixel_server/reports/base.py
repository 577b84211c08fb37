"""What every report shares: its parameters, one table shape, and the merged view.

A report is run for one pixel over a range of whole days in a time zone:
``from`` and ``to`` are dates, both included, so the range is
``[from 00:00, to + 1 day 00:00)`` in that zone (the pixel's unless ``tz``
says otherwise), turned into UTC instants for ClickHouse. Days are bucketed
with ``toDate(event_time, tz)``, so a day is the merchant's calendar day.

Every report reads merged events (one row per event, browser/server/webhook
copies merged, docs/architecture.md §2), mostly through 15-minute rollups
(:mod:`.rollups`). Stored (``cached=True``, what the dashboard reads): the rows
the loader keeps current (:mod:`pixel_server.storage.merged`) and the
materialized views over them (migration 0013). Live (``cached=False``): the
same rollups computed at query time from the copies
(:func:`pixel_server.storage.queries.merged_events_sql`), the definition the
stored rows are tested against.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal

from clickhouse_connect.driver.client import Client

from pixel_server import zones
from pixel_server.reports import rollups
from pixel_server.storage import merged as stored
from pixel_server.storage.queries import merged_events_sql

MAX_DAYS: Final = 366
DEFAULT_DAYS: Final = 30
WINDOWS: Final = rollups.ATTRIBUTION_WINDOWS
DEFAULT_WINDOW: Final = 7
MODELS: Final = rollups.ATTRIBUTION_MODELS
Model = Literal["last_touch", "first_touch"]


class ParamError(ValueError):
    """A report parameter is wrong; ``param`` names it (for the 400/422 answer)."""

    def __init__(self, param: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ReportParams:
    pixel_id: str
    first: date  # "from", inclusive
    last: date  # "to", inclusive
    tz: str
    window: int = DEFAULT_WINDOW  # attribution click window, days
    model: Model = "last_touch"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.tz)

    @property
    def start(self) -> datetime:
        """The first instant of ``first`` in the zone, as UTC."""
        return datetime.combine(self.first, datetime.min.time(), self.zone).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The first instant after ``last`` in the zone, as UTC (exclusive)."""
        after = self.last + timedelta(days=1)
        return datetime.combine(after, datetime.min.time(), self.zone).astimezone(UTC)

    @property
    def whole_utc_days(self) -> tuple[datetime, datetime]:
        """The UTC days the range covers whole, as instants [first midnight, last
        midnight); none (both ``end``) when the range holds no whole UTC day."""
        day = timedelta(days=1)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        lo = epoch + -((epoch - self.start) // day) * day  # the first midnight at or after start
        hi = epoch + ((self.end - epoch) // day) * day  # the last midnight at or before end
        return (lo, hi) if lo < hi else (self.end, self.end)

    @property
    def parts(self) -> tuple[bool, bool, bool]:
        """Whether the range has whole UTC days, a part-day before them, a part-day after."""
        lo, hi = self.whole_utc_days
        if lo == hi:
            return False, True, False
        return True, self.start < lo, hi < self.end

    def days(self) -> list[str]:
        n = (self.last - self.first).days + 1
        return [(self.first + timedelta(days=i)).isoformat() for i in range(n)]

    def query_parameters(self, **extra: Any) -> dict[str, Any]:
        whole_start, whole_end = self.whole_utc_days
        return {
            "pixel": self.pixel_id,
            "start": self.start,
            "end": self.end,
            "whole_start": whole_start,
            "whole_end": whole_end,
            "tz": self.tz,
            **extra,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "pixel_id": self.pixel_id,
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "tz": self.tz,
            "window": self.window,
            "model": self.model,
        }


def parse_params(
    pixel_id: str, query: dict[str, str], pixel_tz: str, today: date | None = None
) -> ReportParams:
    """Validate ``from``, ``to``, ``tz``, ``window`` and ``model``; defaults: the last
    30 days up to today in the zone, a 7-day window, last touch."""
    tz = (query.get("tz") or pixel_tz or "UTC").strip()
    zone = zones.zone(tz)
    if zone is None:
        raise ParamError("tz", f"tz {tz[:64]!r} is not an IANA time zone")
    today = today or datetime.now(zone).date()
    last = _date(query, "to") or today
    first = _date(query, "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise ParamError("from", "from must not be after to", 422)
    if (last - first).days + 1 > MAX_DAYS:
        raise ParamError("from", f"the range may cover at most {MAX_DAYS} days", 422)
    raw_window = (query.get("window") or str(DEFAULT_WINDOW)).strip().removesuffix("d")
    if raw_window not in {str(w) for w in WINDOWS}:
        raise ParamError("window", "window must be 1, 7 or 28 (days)")
    model = (query.get("model") or "last_touch").strip().lower().replace("-", "_")
    model = {"last": "last_touch", "first": "first_touch"}.get(model, model)
    if model not in MODELS:
        raise ParamError("model", "model must be last_touch or first_touch")
    params = ReportParams(pixel_id, first, last, tz, int(raw_window), model)  # type: ignore[arg-type]
    check_aligned(params)
    return params


def _date(query: dict[str, str], name: str) -> date | None:
    raw = (query.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise ParamError(name, f"{name} must be a date like 2026-03-01") from None
    if not 2000 <= value.year <= 2100:
        raise ParamError(name, f"{name} is out of range", 422)
    return value


@dataclass
class Table:
    """One exportable table: named columns and rows of plain values."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass
class Report:
    """A report's JSON (``data``) and its tables (each also served as CSV)."""

    name: str
    params: ReportParams
    data: dict[str, Any]
    tables: dict[str, Table]

    def as_json(self) -> dict[str, Any]:
        return {
            "report": self.name,
            "params": self.params.as_json(),
            **self.data,
            "tables": list(self.tables),
        }


# ------------------------------------------------------------------- SQL bits


def merged(
    events: tuple[str, ...] | None = None,
    *,
    cached: bool = False,
    start: str = "start",
    end: str = "end",
) -> str:
    """One row per merged event of ``{pixel}`` in ``[{start}, {end})``, narrowed to
    ``events`` (names from this code, never from a request).

    ``cached=True`` reads the stored rows (:func:`.stored.current_sql`),
    ``cached=False`` merges the copies at query time. Same rows. ``start``/``end``
    rename the range parameters when one query needs two ranges.
    """
    where = ""
    if events:
        for name in events:
            assert name.replace("_", "").isalnum(), name  # literals only from our constants
        where = "event IN (" + ", ".join(f"'{n}'" for n in events) + ")"
    if cached:
        return stored.current_sql(where, start, end)
    sql = merged_events_sql(where)
    if start != "start":
        sql = sql.replace("{start:", "{" + start + ":")
    if end != "end":
        sql = sql.replace("{end:", "{" + end + ":")
    return f"SELECT *, {rollups.VISITOR} AS visitor FROM ({sql})"


def rollup(table: str, *, cached: bool = False, start: str = "start", end: str = "end") -> str:
    """The rows of rollup ``table`` (a key of :data:`rollups.ROLLUPS`) in the range:
    stored (``cached=True``: partial sums, to be summed again) or computed from
    the live merged view. Same sums."""
    if cached:
        return rollups.stored_sql(table, start, end)
    return rollups.ROLLUPS[table].select.format(source=merged(start=start, end=end))


def visitor_rows(parts: tuple[bool, bool, bool]) -> str:
    """Live ``(at, visitor, transitions)`` rows covering the range once: a row
    per visitor and UTC day for the days it covers whole, per visitor and
    bucket for its edges. ``parts``: :attr:`ReportParams.parts`."""
    whole, head, tail = parts
    selects = []
    if whole:
        days = rollup("report_visitor_days", start="whole_start", end="whole_end")
        selects.append(f"SELECT toDateTime(day, 'UTC') AS at, visitor, transitions FROM ({days})")
    if head:
        before = rollup("report_visitors", end="whole_start")
        selects.append(f"SELECT bucket AS at, visitor, transitions FROM ({before})")
    if tail:
        after = rollup("report_visitors", start="whole_end")
        selects.append(f"SELECT bucket AS at, visitor, transitions FROM ({after})")
    return "\nUNION ALL\n".join(selects)


def check_aligned(params: ReportParams) -> None:
    """Rollups are per 15 minutes: a range must start and end on such a boundary.
    Every zone's midnight does since 1972; an older one is refused, not guessed."""
    bucket_ms = rollups.BUCKET_SECONDS * 1000
    for instant in (params.start, params.end):
        if int(instant.timestamp() * 1000) % bucket_ms:
            raise ParamError("tz", f"midnight in {params.tz} is not on a 15-minute boundary", 422)


def day_expr(column: str = "event_time") -> str:
    """The merchant's calendar day of an instant (a Date: cheaper to group than text)."""
    return f"toDate({column}, {{tz:String}})"


def rows(client: Client, sql: str, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
    result = client.query(sql, parameters=parameters)
    return [tuple(r) for r in result.result_rows]


def money(value: Any) -> Decimal:
    """A Decimal(18, 4) amount, exact; None counts as 0."""
    if value is None:
        return Decimal("0.0000")
    return Decimal(value).quantize(Decimal("0.0001"))


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 6) if denominator else None
