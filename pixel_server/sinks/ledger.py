"""The delivery ledger: one row in ``deliveries`` per attempt to send an event
to TikTok, and the dead letters it indexes.

Writes are buffered in columns and inserted in batches by one thread (every
``interval`` or ``batch_rows`` rows, never one insert per event). Each call to
:meth:`Ledger.add` gets a sequence number; :attr:`Ledger.flushed_seq` says up
to which call ClickHouse has the rows. The forwarder commits its log offset
past an event only when the event's last row is flushed, which makes the
ledger the forwarder's memory across a crash: after a restart, an event the
ledger shows as ``sent`` or ``dead`` is not sent again (:meth:`latest_outcomes`).
A batch that failed is retried with the same ``insert_deduplication_token``.

Dead letters are the events whose latest row is ``dead``. Their payloads are
not copied anywhere: the loader has the very same records in ``events``, from
which :func:`replay` rebuilds them (:func:`load_records`) and queues them in
the pixel's spill store for the forwarder to send again. ``replay`` first adds
a ``retrying`` row ("queued for replay") per event, so a second replay does not
queue them twice.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from clickhouse_connect.driver.client import Client

from pixel_server.pipeline import record as records
from pixel_server.pipeline.record import Record
from pixel_server.sinks.spill import SpillEntry, write_chunk

log = logging.getLogger("pixel_server.ledger")

DeliveryState = Literal["sent", "retrying", "dead"]
OUTCOMES: Final = ("sent", "retrying", "dead")
Key = tuple[str, str, str, str]  # (pixel_id, event, event_id, source)

COLUMNS: Final = (
    "pixel_id", "event", "event_id", "source", "event_time", "attempt", "attempted_at",
    "latency_ms", "http_status", "tiktok_code", "tiktok_message", "request_id", "batch_id",
    "outcome",
)  # fmt: skip
REPLAY_MESSAGE: Final = "queued for replay"
MAX_MESSAGE: Final = 1000


class Copy(Protocol):
    """What a ledger row needs of an event copy (a Record has all of it)."""

    @property
    def pixel_id(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def event_time(self) -> float: ...


def key_of(copy: Copy) -> Key:
    return (copy.pixel_id, copy.event, copy.event_id, copy.source)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request's result, shared by the rows of its events."""

    attempted_at: float  # Unix seconds, when the request started
    latency_ms: int
    http_status: int  # 0: no HTTP answer (timeout, refused, not sent)
    tiktok_code: int
    tiktok_message: str
    request_id: str
    batch_id: str


def to_columns(
    batch: Sequence[Copy], attempts: Sequence[int], attempt: Attempt, outcome: DeliveryState
) -> list[list[Any]]:
    """Column-oriented ``deliveries`` rows (COLUMNS order), one per record."""
    n = len(batch)
    shared = (
        round(attempt.attempted_at * 1000), attempt.latency_ms, attempt.http_status,
        attempt.tiktok_code, attempt.tiktok_message[:MAX_MESSAGE], attempt.request_id,
        attempt.batch_id, outcome,
    )  # fmt: skip
    return [
        [r.pixel_id for r in batch],
        [r.event for r in batch],
        [r.event_id for r in batch],
        [r.source for r in batch],
        [round(r.event_time * 1000) for r in batch],  # DateTime64(3) as integer ms
        list(attempts),
        *([value] * n for value in shared),
    ]


InsertFn = Callable[[list[list[Any]], str], None]
"""Insert these columns (in COLUMNS order) with this deduplication token."""


@dataclass
class LedgerState:
    failing_since: float | None = None
    last_error: str = ""
    rows: int = 0


class Ledger:
    """Buffered, batched writer of ``deliveries`` rows (thread-safe)."""

    def __init__(
        self,
        client: Callable[[], Client],
        *,
        batch_rows: int = 5000,
        interval: float = 0.2,
        max_backoff: float = 10.0,
    ) -> None:
        self.client = client
        self.insert: InsertFn = self._insert  # tests wrap it to inject failures
        self.batch_rows = batch_rows
        self.interval = interval
        self.max_backoff = max_backoff
        self.state = LedgerState()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._columns: list[list[Any]] = [[] for _ in COLUMNS]
        self._rows = 0
        self._seq = 0
        self._flushed = 0
        self._pending: tuple[list[list[Any]], int, str] | None = None  # taken, not inserted
        self._stop = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    # --------------------------------------------------------------- writing

    def add(
        self,
        batch: Sequence[Copy],
        attempts: Sequence[int],
        attempt: Attempt,
        outcome: DeliveryState,
    ) -> int:
        """Buffer one row per record; return the sequence number of this call."""
        columns = to_columns(batch, attempts, attempt, outcome)
        with self._lock:
            for buffer, values in zip(self._columns, columns, strict=True):
                buffer.extend(values)
            self._rows += len(batch)
            self._seq += 1
            if self._rows >= self.batch_rows:
                self._wake.notify()
            return self._seq

    @property
    def flushed_seq(self) -> int:
        """Every :meth:`add` call up to this number is in ClickHouse."""
        with self._lock:
            return self._flushed

    @property
    def buffered_rows(self) -> int:
        with self._lock:
            return self._rows

    def _insert(self, columns: list[list[Any]], token: str) -> None:
        self.client().insert(
            "deliveries", columns, column_names=list(COLUMNS), column_oriented=True,
            settings={"insert_deduplication_token": token},
        )  # fmt: skip

    # ---------------------------------------------------------------- thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="delivery-ledger", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Flush what is buffered (trying for up to ``timeout``), then stop. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        with self._lock:
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while self.unflushed_rows and time.monotonic() < deadline:
            if not self.flush():
                time.sleep(0.2)

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            with self._lock:
                if self._rows < self.batch_rows:
                    self._wake.wait(self.interval)
            if self._stop.is_set():
                return
            if self.flush():
                backoff = 0.2
            else:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    def flush(self) -> bool:
        """Insert buffered rows now; False if ClickHouse refused (they stay buffered)."""
        with self._lock:
            if self._pending is None:
                if not self._rows:
                    return True
                # A failed batch is retried as it was, with its token, so a
                # retry after an unknown outcome cannot duplicate rows.
                self._pending = (self._columns, self._seq, uuid.uuid4().hex)
                self._columns = [[] for _ in COLUMNS]
                self._rows = 0
            columns, seq, token = self._pending
        try:
            self.insert(columns, token)
        except Exception as exc:  # ClickHouse down: keep the rows, say so in /readyz
            text = str(exc).strip()
            message = text.splitlines()[0][:300] if text else repr(exc)
            if self.state.failing_since is None:
                self.state.failing_since = time.time()
                log.warning("delivery ledger insert failed; retrying", extra={"error": message})
            self.state.last_error = message
            return False
        with self._lock:
            self._pending = None
            self._flushed = seq
            self.state.rows += len(columns[0])
        self.state.failing_since = None
        self.state.last_error = ""
        return True

    @property
    def unflushed_rows(self) -> int:
        with self._lock:
            return self._rows + (len(self._pending[0][0]) if self._pending else 0)

    # --------------------------------------------------------------- reading

    def latest_outcomes(self, keys: Iterable[Key], since: float) -> dict[Key, str]:
        """The outcome of the most recent row of each key attempted after ``since``."""
        return latest_outcomes(self.client(), keys, since)


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def latest_outcomes(client: Client, keys: Iterable[Key], since: float) -> dict[Key, str]:
    wanted = set(keys)
    if not wanted:
        return {}
    result = client.query(
        "SELECT pixel_id, event, event_id, toString(source),"
        " argMax(toString(outcome), (attempted_at, attempt, outcome = 'retrying'))"
        " FROM deliveries"
        " WHERE pixel_id IN {pixels:Array(String)} AND event_id IN {ids:Array(String)}"
        " AND attempted_at >= {since:DateTime64(3)}"
        " GROUP BY pixel_id, event, event_id, source",
        parameters={
            "pixels": sorted({k[0] for k in wanted}),
            "ids": sorted({k[2] for k in wanted}),
            "since": _dt(since),
        },
    )
    return {(p, e, i, s): o for p, e, i, s, o in result.result_rows if (p, e, i, s) in wanted}


def list_deliveries(
    client: Client, pixel_id: str, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The pixel's most recent attempts (optionally of one outcome), newest first."""
    if status is not None and status not in OUTCOMES:
        raise ValueError(f"status must be one of {', '.join(OUTCOMES)}")
    where = " AND outcome = {status:String}" if status else ""
    result = client.query(
        "SELECT toUnixTimestamp64Milli(attempted_at) AS attempted_at_ms, event, event_id,"
        " toString(source) AS source, toUnixTimestamp64Milli(event_time) AS event_time_ms,"
        " attempt, latency_ms, http_status, tiktok_code, tiktok_message, request_id, batch_id,"
        " toString(outcome) AS outcome"
        " FROM deliveries WHERE pixel_id = {pixel:String}" + where +
        " ORDER BY attempted_at DESC, event_id LIMIT {limit:UInt32}",
        parameters={"pixel": pixel_id, "status": status or "", "limit": limit},
    )  # fmt: skip
    rows = []
    for row in result.result_rows:
        item = dict(zip(result.column_names, row, strict=True))
        item["attempted_at"] = _iso(item.pop("attempted_at_ms"))
        item["event_time"] = _iso(item.pop("event_time_ms"))
        rows.append({"pixel_id": pixel_id, **item})
    return rows


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: Key
    attempt: int
    event_time: float
    message: str


def dead_letters(client: Client, pixel_id: str, since: float = 0.0) -> list[DeadLetter]:
    """Events of a pixel whose latest ledger row (after ``since``) is ``dead``."""
    result = client.query(
        "SELECT event, event_id, toString(source), max(attempt),"
        " toUnixTimestamp64Milli(any(event_time)),"
        " argMax(tiktok_message, (attempted_at, attempt))"
        " FROM deliveries WHERE pixel_id = {pixel:String}"
        " AND attempted_at >= {since:DateTime64(3)}"
        " GROUP BY event, event_id, source"
        " HAVING argMax(toString(outcome), (attempted_at, attempt, outcome = 'retrying')) = 'dead'"
        " ORDER BY event_id",
        parameters={"pixel": pixel_id, "since": _dt(since)},
    )
    return [
        DeadLetter((pixel_id, e, i, s), int(a), t / 1000, m)
        for e, i, s, a, t, m in result.result_rows
    ]


# Every Record field, read back from ``events`` in Record field order.
_SELECT: Final = {
    "event_time": "toUnixTimestamp64Milli(event_time) / 1000",
    "received_at": "toUnixTimestamp64Milli(received_at) / 1000",
    "source": "toString(source)",
    "consent": "toString(consent)",
    "value": "toFloat64(value)",
    "contents": "arrayZip(`contents.content_id`, `contents.item_group_id`, `contents.name`,"
    " `contents.category`, `contents.brand`, `contents.quantity`,"
    " arrayMap(p -> toFloat64(p), `contents.price`))",
    "content_refunds": "if(arrayExists(r -> r != 0, arrayConcat(`contents.refunded`,"
    " `contents.refunded_share`)), arrayZip(arrayMap(r -> toFloat64(r), `contents.refunded`),"
    " arrayMap(r -> toFloat64(r), `contents.refunded_share`)), [])",
}


def load_records(client: Client, pixel_id: str, keys: Iterable[Key]) -> dict[Key, Record]:
    """Rebuild stored records of these copies from ``events`` (latest receipt wins)."""
    wanted = set(keys)
    if not wanted:
        return {}
    fields = Record.__struct_fields__
    select = ", ".join(_SELECT.get(f, f"`{f}`") for f in fields)
    result = client.query(
        f"SELECT {select} FROM events"
        " WHERE pixel_id = {pixel:String} AND event_id IN {ids:Array(String)}"
        " ORDER BY received_at DESC LIMIT 1 BY event, event_id, source",
        parameters={"pixel": pixel_id, "ids": sorted({k[2] for k in wanted})},
    )
    found: dict[Key, Record] = {}
    for row in result.result_rows:
        values = dict(zip(fields, row, strict=True))
        values["contents"] = [
            (c[0], c[1], c[2], c[3], c[4], int(c[5]), c[6]) for c in values["contents"]
        ]
        record = Record(**values)
        if key_of(record) in wanted:
            found[key_of(record)] = record
    return found


def replay(client: Client, spill_root: Path, pixel_id: str, since: float = 0.0) -> dict[str, Any]:
    """Queue a pixel's dead letters (latest row ``dead`` after ``since``) for sending.

    The events go to the pixel's spill directory, which the running forwarder
    picks up (or the next start does). Dead letters whose event rows are not in
    ``events`` yet (the loader is behind) stay dead and are reported as missing.
    """
    dead = dead_letters(client, pixel_id, since)
    found = load_records(client, pixel_id, [d.key for d in dead])
    queued = [d for d in dead if d.key in found]
    missing = [d.key[2] for d in dead if d.key not in found]
    for start in range(0, len(queued), 1000):
        part = queued[start : start + 1000]
        batch = [found[d.key] for d in part]
        attempts = [d.attempt for d in part]
        # The chunk first: a crash between the two leaves the events queued
        # (and still listed as dead), never unlisted and unqueued. The forwarder
        # may pick the chunk up before the guard rows exist: for a replay chunk
        # only "sent" counts as done, so that is harmless.
        write_chunk(
            spill_root / pixel_id,
            [SpillEntry(a, records.encode(r)) for a, r in zip(attempts, batch, strict=True)],
            replay=True,
        )
        guard = Attempt(time.time(), 0, 0, 0, REPLAY_MESSAGE, "", "replay")
        client.insert(
            "deliveries", to_columns(batch, attempts, guard, "retrying"),
            column_names=list(COLUMNS), column_oriented=True,
        )  # fmt: skip
    return {
        "pixel_id": pixel_id,
        "dead": len(dead),
        "queued": len(queued),
        "missing": len(missing),
        "missing_event_ids": missing[:20],
    }
