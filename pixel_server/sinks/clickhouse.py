"""The ClickHouse loader: the log's first reader.

A worker thread reads batches from the write-ahead log and inserts them
columnar into ``events``, with the batch id (log, segment, first and last
offset) as ``insert_deduplication_token``: a batch re-sent after a crash
between the insert and the offset commit is dropped by ClickHouse, and the
table engine collapses identical rows as a second guard. The offset is
committed only after ClickHouse confirms. When ClickHouse fails, the loader
rewinds, backs off and tries again; ingestion does not notice.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pixel_server.metrics import Metrics
from pixel_server.pipeline import record as records
from pixel_server.pipeline.wal import Batch, LogReader

log = logging.getLogger("pixel_server.loader")

InsertFn = Callable[[list[records.Record], str], None]
"""Insert these records with this deduplication token; raise on failure."""

READER_NAME = "loader"


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
        batch_rows: int = 5000,
        interval: float = 0.1,
        max_backoff: float = 30.0,
    ) -> None:
        self.reader = reader
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
            try:
                batch = self._next_batch()
                if batch is None:
                    continue
                self._load(batch)
                backoff = 0.2
            except Exception as exc:  # ClickHouse down, bad answer: retry, keep the backlog
                self.reader.rewind()
                self._failed(exc)
                self._stop.wait(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self.max_backoff)

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
        rows = [records.decode(p) for p in batch.records]
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
