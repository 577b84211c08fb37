"""The ClickHouse loader: the log's first reader.

A worker thread reads batches from the write-ahead log and hands their
records, MessagePack as in the log, to one insert into ``events``
(``storage/events.py``), with the batch id (log, segment, first and last
offset) as ``insert_deduplication_token``: a batch re-sent after a crash
between the insert and the offset commit is dropped by ClickHouse, and the
table engine collapses identical rows as a second guard. The offset is
committed only after ClickHouse confirms, the insert and then the merge of
the batch's events into ``merged_events`` (``storage/merged.py``: a replayed
batch's merge writes the same state again). When ClickHouse fails, the loader
rewinds, backs off and tries again; ingestion does not notice.

A batch that fails three times with a data error (not a connection error)
while ClickHouse answers its health probe holds a row ClickHouse will never
take. Rather than stall every pixel behind it, the loader inserts the batch in
halves down to single rows (each part with its own stable token) and parks the
refused rows in ``<data dir>/quarantine/events.jsonl`` (hashed fields only, as
in the log), counted in ``pixel_loader_quarantined_total`` and logged.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec
from clickhouse_connect.driver.exceptions import OperationalError, StreamFailureError

from pixel_server.atomic import replace_file
from pixel_server.metrics import Metrics
from pixel_server.pipeline import record as records
from pixel_server.pipeline.erasures import Erasures
from pixel_server.pipeline.wal import Batch, LogReader

log = logging.getLogger("pixel_server.loader")

InsertFn = Callable[[list[bytes], str], None]
"""Insert these log records (MessagePack, as in the log) with this deduplication
token; raise on failure."""

READER_NAME = "loader"
QUARANTINE_FILE: Final = Path("quarantine") / "events.jsonl"  # under the data directory
# Parking a row and an erasure's rewrite of the file take turns.
_QUARANTINE_LOCK: Final = threading.Lock()
POISON_AFTER = 3
# Failures of the connection, never blamed on a row.
TRANSIENT = (OperationalError, StreamFailureError, OSError, TimeoutError)


@dataclass
class LoaderState:
    failing_since: float | None = None
    last_error: str = ""
    batches: int = 0
    rows: int = 0


class Loader:
    def __init__(
        self,
        reader: LogReader,
        insert: InsertFn,
        metrics: Metrics,
        *,
        batch_rows: int = 20000,
        interval: float = 0.1,
        max_backoff: float = 30.0,
        probe: Callable[[], bool] | None = None,
        quarantine: Path | None = None,
    ) -> None:
        self.reader = reader
        # A batch that keeps failing while ClickHouse answers `probe` holds a
        # row ClickHouse will never take: load around it, park the row.
        self.probe = probe
        self.quarantine = quarantine
        self._failures: dict[str, int] = {}
        self.insert = insert
        self.metrics = metrics
        self.batch_rows = batch_rows
        self.interval = interval
        self.max_backoff = max_backoff
        self.state = LoaderState()
        self._stop = threading.Event()
        self._draining = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="clickhouse-loader", daemon=True)
        self._thread.start()

    def stop(self, drain_timeout: float = 10.0) -> None:
        """Load what is in the log (up to ``drain_timeout``), then stop."""
        deadline = time.monotonic() + drain_timeout
        self._draining = True
        while (
            self._thread is not None
            and self._thread.is_alive()
            and self.reader.backlog().bytes > 0
            and self.state.failing_since is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=drain_timeout)

    @property
    def healthy(self) -> bool:
        return self.state.failing_since is None

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            batch: Batch | None = None
            try:
                batch = self._next_batch()
                if batch is None:
                    continue
                self._load(batch)
                backoff = 0.2
            except Exception as exc:  # ClickHouse down, bad answer: retry, keep the backlog
                self.reader.rewind()
                self._failed(exc)
                if batch is not None and self._poisoned(batch.batch_id, exc):
                    try:
                        self._load_around_bad_rows()
                        continue
                    except Exception as again:
                        self.reader.rewind()
                        self._failed(again)
                self._stop.wait(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self.max_backoff)

    def _poisoned(self, batch_id: str, exc: Exception) -> bool:
        if isinstance(exc, TRANSIENT):
            return False  # the way to ClickHouse failed, not the data
        failures = self._failures.get(batch_id, 0) + 1
        self._failures = {batch_id: failures}  # only the current batch matters
        return (
            failures >= POISON_AFTER
            and self.probe is not None
            and self.quarantine is not None
            and self.probe()
        )

    def _load_around_bad_rows(self) -> None:
        """Insert the batch in halves, down to single rows; park the rows that fail."""
        batch = self.reader.read_batch(max_records=self.batch_rows, max_bytes=64 << 20)
        if batch is None:
            return
        rows = batch.records
        parked = self._insert_parts(rows, batch.batch_id, 0, len(rows))
        self.reader.commit(batch.end)
        self._failures.clear()
        self.metrics.rows_loaded.inc(len(rows) - parked)
        self.state.failing_since = None
        self.state.last_error = ""

    def _insert_parts(self, rows: list[bytes], token: str, lo: int, hi: int) -> int:
        """Insert rows[lo:hi] (each part with its own stable token); rows parked."""
        try:
            self.insert(rows[lo:hi], f"{token}#{lo}-{hi}")
            return 0
        except Exception as exc:
            if hi - lo > 1:
                mid = (lo + hi) // 2
                return self._insert_parts(rows, token, lo, mid) + self._insert_parts(
                    rows, token, mid, hi
                )
            if isinstance(exc, TRANSIENT) or self.probe is None or not self.probe():
                raise  # ClickHouse went away: not the row's fault; retry later
            self._park(rows[lo], token, exc)
            return 1

    def _park(self, payload: bytes, token: str, exc: Exception) -> None:
        assert self.quarantine is not None
        row = records.decode(payload)
        self.quarantine.parent.mkdir(parents=True, exist_ok=True)
        line = msgspec.json.encode(
            {"batch_id": token, "error": str(exc)[:500], "record": msgspec.structs.asdict(row)}
        )
        with _QUARANTINE_LOCK, self.quarantine.open("ab") as f:
            f.write(line + b"\n")
            f.flush()
            os.fsync(f.fileno())
        self.metrics.loader_quarantined.inc()
        log.error(
            "row ClickHouse refuses parked in quarantine",
            extra={"file": str(self.quarantine), "event_id": row.event_id, "error": str(exc)[:300]},
        )

    def _next_batch(self) -> Batch | None:
        """Wait for data; then for a full batch or the interval, whichever is first."""
        if not self.reader.wait(timeout=0.25):
            return None
        deadline = time.monotonic() + self.interval
        while (
            not self._draining
            and self.reader.backlog().records < self.batch_rows
            and time.monotonic() < deadline
            and not self._stop.is_set()
        ):
            time.sleep(min(0.01, self.interval))
        return self.reader.read_batch(max_records=self.batch_rows, max_bytes=64 << 20)

    def _load(self, batch: Batch) -> None:
        rows = batch.records
        self.insert(rows, batch.batch_id)
        self.reader.commit(batch.end)
        self.metrics.rows_loaded.inc(len(rows))
        self.state.batches += 1
        self.state.rows += len(rows)
        if self.state.failing_since is not None:
            log.info(
                "ClickHouse inserts recovered",
                extra={"after_s": round(time.time() - self.state.failing_since, 1)},
            )
        self.state.failing_since = None
        self.state.last_error = ""

    def _failed(self, exc: Exception) -> None:
        self.metrics.loader_errors.inc()
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
        if self.state.failing_since is None:
            self.state.failing_since = time.time()
            log.warning("ClickHouse insert failed; retrying", extra={"error": message})
        self.state.last_error = message


_PARKED: Final = msgspec.json.Decoder(dict[str, Any])


def drop_from_quarantine(path: Path, erasures: Erasures) -> int:
    """Rewrite the quarantine file without the erased people's rows; how many went."""
    with _QUARANTINE_LOCK:
        try:
            lines = path.read_bytes().splitlines()
        except FileNotFoundError:
            return 0
        kept = []
        for line in lines:
            try:
                row = records.Record(**_PARKED.decode(line)["record"])
            except (msgspec.DecodeError, KeyError, TypeError):
                kept.append(line)  # not ours to judge: keep it for the operator
                continue
            if not erasures.matches(row):
                kept.append(line)
        if len(kept) < len(lines):
            replace_file(path, b"".join(k + b"\n" for k in kept))
        return len(lines) - len(kept)
