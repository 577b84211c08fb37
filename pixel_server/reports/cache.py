"""The report cache: the merged view materialized per UTC day, checked on every read.

Why: merging copies at query time (``merged_events_sql``) costs a window
function and a GROUP BY over every copy in the range — seconds for a shop with
millions of events. So the merged view's *output* (one row per event; the
merge rules stay in one place) is stored per UTC day in ``report_merged``, and
from it the 15-minute rollups the reports read (:mod:`.rollups`). Tables:
migrations 0004 and 0007 (refund lines). They are kept exact like this:

* materialized views on ``events``, maintained by ClickHouse on every insert
  whoever inserts: ``report_day_stats`` (per pixel and UTC day, how many copies
  were ever inserted and the latest ``received_at``) and ``report_inserts``
  (which identity was inserted when; kept 14 days);
* a day D's **fingerprint** is the stats of days D-2..D (copies that can start
  its events or pull them into an earlier occurrence) and of D+1..D+2 (copies
  that may be late twins of its events: a twin can be 48 h away);
* before a report runs, :func:`prepare` compares fingerprints with those the
  cached rows were built from (``report_days``). If D-2..D changed, D is
  re-merged with ``INSERT ... SELECT`` from the merged view. If only D+1..D+2
  changed, D is re-merged only when a copy inserted since D was built shares an
  identity with D's copies (``report_inserts``): new events of today leave
  yesterday alone. A rebuild writes a new *generation* of every table; readers
  take each day's newest, and older generations are deleted asynchronously;
* a day's purchases are attributed when it is built (``report_attributed``),
  from the touches of the 28 days before it, so :func:`prepare` also merges
  those days. Each day records a digest of its touches (``touches``) and of
  the 28 digests its attribution used (``basis``); when a day before changes
  its touches, the days after it are attributed again (a new ``attributed``
  generation) without being re-merged.

So a settled day costs two small queries to check, and the day being written
to is re-merged when its copies changed (the price of exactness); the
:class:`Warmer` does that in the background after new copies arrive, so a
report seldom waits for it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from pixel_server.reports import rollups
from pixel_server.reports.rollups import (
    ATTRIBUTED_COLUMNS,
    ATTRIBUTION_LOOKBACK_DAYS,
    MERGED_COLUMNS,
    VISITOR,
)
from pixel_server.storage.queries import merged_events_sql

EVENTS_TABLE: Final = "report_merged"
DAYS_TABLE: Final = "report_days"
INSERT_LOG_DAYS: Final = 14  # how long report_inserts keeps who was inserted when
CLOCK_MARGIN_MS: Final = 60_000  # an insert's now64() may precede its commit by this much
NEIGHBOURS: Final = 2  # days each side whose copies can change a day's merged events (48 h)
MAX_RUN_DAYS: Final = 7  # days merged per INSERT ... SELECT: bounds the merge's memory

_NOTHING: Final = "0@-"
# One build at a time per pixel in this process: the warmer and a report
# request must not merge the same day twice.
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _pixel_lock(pixel_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(pixel_id, threading.Lock())


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def utc_days(start: datetime, end: datetime) -> tuple[date, date]:
    """The UTC days overlapping the instants [start, end)."""
    last = (end.astimezone(UTC) - timedelta(milliseconds=1)).date()
    return start.astimezone(UTC).date(), max(last, start.astimezone(UTC).date())


def fingerprints(
    client: Client, pixel_id: str, first: date, last: date
) -> dict[date, tuple[str, str, bool]]:
    """Per day: the stats of days D-2..D (copies that may start or absorb its
    events), of days D+1..D+2 (later twins), and whether D has copies at all."""
    lo, hi = first - timedelta(days=NEIGHBOURS), last + timedelta(days=NEIGHBOURS)
    result = client.query(
        "SELECT day, countMerge(copies), maxMerge(last_received) FROM report_day_stats"
        " WHERE pixel_id = {p:String} AND day >= {lo:Date} AND day <= {hi:Date} GROUP BY day",
        parameters={"p": pixel_id, "lo": lo, "hi": hi},
    )
    stats = {row[0]: (int(row[1]), row[2]) for row in result.result_rows}

    def summary(days: list[date]) -> str:
        near = [stats[d] for d in days if d in stats]
        latest = max((t for _, t in near), default=None)
        return f"{sum(n for n, _ in near)}@{latest.isoformat()}" if latest else _NOTHING

    one = timedelta(days=1)
    return {
        day: (
            summary(_days(day - timedelta(days=NEIGHBOURS), day)),
            summary(_days(day + one, day + timedelta(days=NEIGHBOURS))),
            day in stats,
        )
        for day in _days(first, last)
    }


def prepare(client: Client, pixel_id: str, start: datetime, end: datetime) -> list[date]:
    """Make the cached days overlapping [start, end) current (merged and
    attributed); returns the days rebuilt or re-attributed."""
    with _pixel_lock(pixel_id):
        return _prepare(client, pixel_id, start, end)[0]


@dataclass(frozen=True)
class _Day:
    """A day's current row in ``report_days``."""

    generation: int
    fingerprint: list[str]
    touches: int
    basis: int
    attributed: int


def _days_state(client: Client, pixel_id: str) -> dict[date, _Day]:
    """The current row of each of the pixel's cached days (a few hundred rows;
    the reads' parameters come from them)."""
    result = client.query(
        f"SELECT day, generation, fingerprint, touches, basis, attributed FROM {DAYS_TABLE}"
        " FINAL WHERE pixel_id = {p:String}",
        parameters={"p": pixel_id},
    )
    return {
        r[0]: _Day(int(r[1]), str(r[2]).split("|"), int(r[3]), int(r[4]), int(r[5]))
        for r in result.result_rows
    }


def _parameters(have: dict[date, _Day]) -> dict[str, list[Any]]:
    """What cached reads take as parameters (see ``_CURRENT``)."""
    days = sorted(have)
    return {
        "current_days": days,
        "current_generations": [have[d].generation for d in days],
        "attributed_generations": [have[d].attributed for d in days],
    }


def _prepare(
    client: Client, pixel_id: str, start: datetime, end: datetime
) -> tuple[list[date], dict[date, _Day]]:
    """:func:`prepare`; also returns every cached day's current row."""
    # Taken before the stats: a copy they miss was inserted after this instant.
    now_ms = int(client.command("SELECT toUnixTimestamp64Milli(now64(3))"))
    first, last = utc_days(start, end)
    # Attributing a day reads the touches of the days before it: merge those too.
    parts = fingerprints(client, pixel_id, first - timedelta(days=ATTRIBUTION_LOOKBACK_DAYS), last)
    have = _days_state(client, pixel_id)
    merged = _merge_changed(client, pixel_id, parts, have, now_ms)
    if merged is not None:
        have = _days_state(client, pixel_id)
    # Then every day of the range is attributed from the touches now current.
    with_copies = {d for d, (_, _, any_copy) in parts.items() if any_copy}
    attributed = _attribute_changed(client, pixel_id, _days(first, last), have, with_copies)
    if attributed:
        have = _days_state(client, pixel_id)
    return sorted(set(merged or []) | set(attributed)), have


def _merge_changed(
    client: Client,
    pixel_id: str,
    parts: dict[date, tuple[str, str, bool]],
    have: dict[date, _Day],
    now_ms: int,
) -> list[date] | None:
    """Re-merge the days whose copies changed; returns them, or None when no
    day's row was written at all."""
    wanted = {d: f"{own}|{after}|{now_ms}" for d, (own, after, _) in parts.items()}
    stale: list[date] = []
    recheck: list[tuple[date, _Day]] = []
    for day, (own, after, _) in parts.items():
        state = have.get(day)
        stored = state.fingerprint if state else []
        if state is None or len(stored) != 3 or stored[0] != own:
            stale.append(day)
        elif stored[1] != after:
            # Only later days changed: re-merge only if a copy inserted since
            # shares an identity with this day's copies (a late twin).
            if int(stored[2]) < now_ms - (INSERT_LOG_DAYS - 1) * 86_400_000:
                stale.append(day)
            else:
                recheck.append((day, state))
    current: list[list[Any]] = []
    for day, state in recheck:
        if _late_twins(client, pixel_id, day, int(state.fingerprint[2]) - CLOCK_MARGIN_MS):
            stale.append(day)
        else:
            current.append(_day_row(pixel_id, day, state, wanted[day]))
    stale.sort()
    # No copy that day: no event starts in it, and it has no touches.
    empty = [d for d in stale if not parts[d][2]]
    generation = time.time_ns()
    current += [
        _day_row(pixel_id, d, _Day(generation, [], _digest(0, 0), 0, generation), wanted[d])
        for d in empty
    ]
    if current:
        client.insert(DAYS_TABLE, current, column_names=_DAY_COLUMNS)
    # Consecutive stale days are merged a few at a time, oldest first, so a
    # run's attribution finds the days before it current.
    for run in _runs(d for d in stale if d not in empty):
        _build(client, pixel_id, run, wanted)
    return stale if stale or current else None


def _attribute_changed(
    client: Client,
    pixel_id: str,
    days: list[date],
    have: dict[date, _Day],
    with_copies: set[date],
) -> list[date]:
    """Attribute again the ``days`` whose earlier days' touches changed; returns them."""
    digests = {d: state.touches for d, state in have.items()}
    changed = [d for d in days if d in have and have[d].basis != _basis(d, digests)]
    # A day without copies has no purchases: only its basis is brought up to date.
    bare = [
        _day_row(
            pixel_id, d, replace(have[d], basis=_basis(d, digests)), "|".join(have[d].fingerprint)
        )
        for d in changed
        if d not in with_copies
    ]
    if bare:
        client.insert(DAYS_TABLE, bare, column_names=_DAY_COLUMNS)
    for run in _runs(d for d in changed if d in with_copies):
        _attribute(client, pixel_id, run, have, digests)
    return changed


def _runs(days: Iterable[date]) -> list[list[date]]:
    """Ascending days cut into runs of consecutive days, at most MAX_RUN_DAYS each."""
    runs: list[list[date]] = []
    for day in days:
        if runs and (day - runs[-1][-1]).days == 1 and len(runs[-1]) < MAX_RUN_DAYS:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


_DAY_COLUMNS: Final = [
    "pixel_id", "day", "generation", "fingerprint", "touches", "basis", "attributed", "version"
]  # fmt: skip


def _day_row(pixel_id: str, day: date, state: _Day, fingerprint: str) -> list[Any]:
    return [
        pixel_id, day, state.generation, fingerprint, state.touches, state.basis,
        state.attributed, time.time_ns(),
    ]  # fmt: skip


def _digest(xor: int, count: int) -> int:
    """A day's touches, as the XOR of their hashes and their number."""
    return int.from_bytes(hashlib.blake2b(f"{xor}:{count}".encode(), digest_size=8).digest())


def _basis(day: date, digests: dict[date, int]) -> int:
    """What ``day``'s attribution depends on: the touches of the days before it
    (a day not cached yet counts as unknown, so it never matches)."""
    before = [
        digests.get(day - timedelta(days=i), -1) for i in range(1, ATTRIBUTION_LOOKBACK_DAYS + 1)
    ]
    return int.from_bytes(hashlib.blake2b(repr(before).encode(), digest_size=8).digest())


def _late_twins(client: Client, pixel_id: str, day: date, since_ms: int) -> bool:
    """Whether a copy dated in the two days after ``day`` and inserted since
    ``since_ms`` belongs to an event with a copy in days day-2..day."""
    # The recent inserts are few: they make the set, the days' copies are scanned.
    result = client.query(
        "SELECT count() FROM events WHERE pixel_id = {p:String}"
        " AND event_time >= {lo:DateTime64(3)} AND event_time < {hi:DateTime64(3)}"
        " AND (event, event_id) IN (SELECT event, event_id FROM report_inserts"
        "   WHERE pixel_id = {p:String} AND day >= {a:Date} AND day <= {b:Date}"
        "   AND inserted_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC'))",
        parameters={
            "p": pixel_id,
            "a": day + timedelta(days=1),
            "b": day + timedelta(days=NEIGHBOURS),
            "since": since_ms,
            "lo": datetime.combine(day - timedelta(days=NEIGHBOURS), datetime.min.time(), UTC),
            "hi": datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC),
        },
    )
    return int(result.result_rows[0][0]) > 0


# The merge is per identity, so only the copies of events with a copy in the
# range can matter: the lookback reads just those instead of a week of everything.
_IDENTITIES_IN_RANGE: Final = """(event, event_id) IN (
    SELECT event, event_id FROM events WHERE pixel_id = {pixel:String}
      AND event_time >= {start:DateTime64(3)} AND event_time < {end:DateTime64(3)})"""


def _build(client: Client, pixel_id: str, days: list[date], wanted: dict[date, str]) -> None:
    """Merge ``days`` into a new generation of ``report_merged``, roll that up
    into every rollup table, attribute its purchases, then make it current."""
    generation = time.time_ns()
    start = datetime.combine(days[0], datetime.min.time(), UTC)
    end = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), UTC)
    merged_columns = ", ".join(c for c in MERGED_COLUMNS if c != "visitor")
    client.command(
        f"INSERT INTO {EVENTS_TABLE} (pixel_id, day, generation, {', '.join(MERGED_COLUMNS)})"
        f" SELECT pixel_id, toDate(event_time), {generation}, {merged_columns}, {VISITOR}"
        f" FROM ({merged_events_sql(_IDENTITIES_IN_RANGE, _MERGED_INPUTS)})",
        parameters={"pixel": pixel_id, "start": start, "end": end},
    )
    parameters = {"pixel": pixel_id, "lo": days[0], "hi": days[-1], "g": generation}
    for table, rollup in rollups.ROLLUPS.items():
        select = rollup.select.format(source=_THIS_GENERATION)
        _insert(client, table, rollup.columns, select, generation, parameters)
    result = client.query(
        "SELECT day, groupBitXor(cityHash64(visitor, event_time, channel)), count()"
        " FROM report_touches WHERE pixel_id = {pixel:String} AND day >= {lo:Date}"
        " AND day <= {hi:Date} AND generation = {g:UInt64} GROUP BY day",
        parameters=parameters,
    )
    touched = {r[0]: _digest(int(r[1]), int(r[2])) for r in result.result_rows}
    # Read now: an earlier run of the same prepare may have changed the days before.
    state = _days_state(client, pixel_id)
    digests = {d: s.touches for d, s in state.items() if d < days[0]}
    digests.update({d: touched.get(d, _digest(0, 0)) for d in days})
    _insert_attributed(client, pixel_id, days, generation, state, new_generation=generation)
    client.insert(
        DAYS_TABLE,
        [
            _day_row(
                pixel_id,
                d,
                _Day(generation, [], digests[d], _basis(d, digests), generation),
                wanted[d],
            )
            for d in days
        ],
        column_names=_DAY_COLUMNS,
    )
    # Older generations of these days are garbage now (readers pick the newest).
    _collect(
        client,
        pixel_id,
        days,
        (EVENTS_TABLE, *rollups.ROLLUPS, *_ATTRIBUTION_TABLES),
        generation,
    )


def _attribute(
    client: Client,
    pixel_id: str,
    days: list[date],
    have: dict[date, _Day],
    digests: dict[date, int],
) -> None:
    """Attribute the purchases of ``days`` again (touches before them changed)."""
    attributed = time.time_ns()
    _insert_attributed(client, pixel_id, days, attributed, have, new_generation=None)
    client.insert(
        DAYS_TABLE,
        [
            _day_row(
                pixel_id,
                d,
                replace(have[d], basis=_basis(d, digests), attributed=attributed),
                "|".join(have[d].fingerprint),
            )
            for d in days
        ],
        column_names=_DAY_COLUMNS,
    )
    _collect(client, pixel_id, days, _ATTRIBUTION_TABLES, attributed)


def _insert_attributed(
    client: Client,
    pixel_id: str,
    days: list[date],
    generation: int,
    state: dict[date, _Day],
    new_generation: int | None,
) -> None:
    """Attribute the purchases of ``days`` into ``report_attributed`` as
    ``generation``. Merged rows and the touches of ``days`` come from
    ``new_generation`` (being built) or else the current one (as in ``state``);
    the touches of the days before from the current generation."""
    if new_generation is None:
        purchases = merged_sql("event = 'Purchase'", "start", "end")
        own_touches = _CURRENT
    else:
        purchases = _THIS_GENERATION + " AND event = 'Purchase'"
        own_touches = "generation = {g:UInt64}"
    touches = f"""
SELECT visitor, event_time, channel FROM report_touches
WHERE pixel_id = {{pixel:String}} AND day >= {{before:Date}} AND day <= {{hi:Date}}
  AND if(day < {{lo:Date}}, {_CURRENT}, {own_touches})
  AND visitor IN (SELECT visitor FROM ({purchases}))"""
    parameters = {
        **_parameters(state),
        "pixel": pixel_id,
        "lo": days[0],
        "hi": days[-1],
        "before": days[0] - timedelta(days=ATTRIBUTION_LOOKBACK_DAYS),
        "g": new_generation or 0,
        "start": datetime.combine(days[0], datetime.min.time(), UTC),
        "end": datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), UTC),
    }
    attributed = rollups.attributed_select(purchases, touches)
    _insert(client, ATTRIBUTED_TABLE, ATTRIBUTED_COLUMNS, attributed, generation, parameters)
    this = (
        f"SELECT * FROM {ATTRIBUTED_TABLE} WHERE pixel_id = {{pixel:String}}"
        f" AND day >= {{lo:Date}} AND day <= {{hi:Date}} AND generation = {generation}"
    )
    for table, rollup in rollups.ATTRIBUTION_ROLLUPS.items():
        select = rollup.select.format(source=this)
        _insert(client, table, rollup.columns, select, generation, parameters)


def _insert(
    client: Client,
    table: str,
    columns: Iterable[str],
    select: str,
    generation: int,
    parameters: dict[str, Any],
) -> None:
    """Store ``select``'s ``columns`` in ``table`` as ``{pixel}``'s ``generation``."""
    names = ", ".join(columns)
    client.command(
        f"INSERT INTO {table} (pixel_id, generation, {names})"
        f" SELECT {{pixel:String}}, {generation}, {names} FROM ({select})",
        parameters=parameters,
    )


def _collect(
    client: Client, pixel_id: str, days: list[date], tables: Iterable[str], generation: int
) -> None:
    """Delete the generations of ``days`` older than ``generation`` from ``tables``."""
    for table in tables:
        client.command(
            f"DELETE FROM {table} WHERE pixel_id = {{p:String}} AND day >= {{lo:Date}}"
            " AND day <= {hi:Date} AND generation < {g:UInt64}"
            # Asynchronous: readers already ignore old generations.
            " SETTINGS lightweight_deletes_sync = 0",
            parameters={"p": pixel_id, "lo": days[0], "hi": days[-1], "g": generation},
        )


# The merged columns the cache keeps (the visitor is computed from anonymous_id).
_MERGED_INPUTS: Final = tuple(c.strip("`") for c in MERGED_COLUMNS if c != "visitor")
_THIS_GENERATION: Final = (
    f"SELECT {', '.join(MERGED_COLUMNS)} FROM {EVENTS_TABLE} WHERE pixel_id = {{pixel:String}}"
    " AND day >= {lo:Date} AND day <= {hi:Date} AND generation = {g:UInt64}"
)
ATTRIBUTED_TABLE: Final = "report_attributed"
_ATTRIBUTION_TABLES: Final = (ATTRIBUTED_TABLE, *rollups.ATTRIBUTION_ROLLUPS)

# Readers take each day's current generation from a snapshot of report_days
# passed as parameters (:func:`current`): a lookup per row, no subquery.
_CURRENT: Final = (
    "generation = transform(day, {current_days:Array(Date)},"
    " {current_generations:Array(UInt64)}, toUInt64(0))"
)
_ATTRIBUTED: Final = (
    "generation = transform(day, {current_days:Array(Date)},"
    " {attributed_generations:Array(UInt64)}, toUInt64(0))"
)


def current(client: Client, pixel_id: str) -> dict[str, list[Any]]:
    """The current generations of the pixel's cached days: the query parameters
    every cached read takes (``current_days``, ``current_generations``,
    ``attributed_generations``)."""
    return _parameters(_days_state(client, pixel_id))


@contextmanager
def reading(
    client: Client, pixel_id: str, start: datetime, end: datetime
) -> Iterator[tuple[list[date], dict[str, list[Any]]]]:
    """Bring [start, end) up to date, then hold the pixel's builds off while the
    caller reads: yields the days rebuilt and the :func:`current` parameters,
    which stay valid inside the block (no build deletes their rows meanwhile)."""
    with _pixel_lock(pixel_id):
        rebuilt, have = _prepare(client, pixel_id, start, end)
        yield rebuilt, _parameters(have)


def _read_sql(
    table: str,
    columns: Iterable[str],
    time_column: str,
    current: str,
    start: str,
    end: str,
    where: str = "",
) -> str:
    """Cached rows of ``table`` for ``{pixel}`` with ``time_column`` in
    ``[{start}, {end})``, of the generations ``current`` picks."""
    narrow = f" AND ({where})" if where else ""
    return f"""
SELECT {", ".join(columns)}
FROM {table}
WHERE pixel_id = {{pixel:String}}
  AND {time_column} >= {{{start}:DateTime64(3)}} AND {time_column} < {{{end}:DateTime64(3)}}{narrow}
  AND {current}
"""


def merged_sql(where: str, start: str = "start", end: str = "end") -> str:
    """Cached merged events of ``{pixel}`` in ``[{start}, {end})``, current generations only."""
    return _read_sql(EVENTS_TABLE, MERGED_COLUMNS, "event_time", _CURRENT, start, end, where)


def rollup_sql(table: str, start: str = "start", end: str = "end") -> str:
    """Cached rows of rollup ``table`` for ``{pixel}`` in ``[{start}, {end})``."""
    rollup = rollups.ROLLUPS[table]
    return _read_sql(table, rollup.columns, rollup.time_column, _CURRENT, start, end)


def attributed_sql(start: str = "start", end: str = "end") -> str:
    """Cached attributed purchases of ``{pixel}`` in ``[{start}, {end})``."""
    return _read_sql(ATTRIBUTED_TABLE, ATTRIBUTED_COLUMNS, "event_time", _ATTRIBUTED, start, end)


def attribution_sql(table: str) -> str:
    """Cached rows of an attribution rollup (``report_attribution``,
    ``report_attribution_lines``) in ``[{start}, {end})``."""
    rollup = rollups.ATTRIBUTION_ROLLUPS[table]
    return _read_sql(table, rollup.columns, rollup.time_column, _ATTRIBUTED, "start", "end")
