"""Backfill: events stored before a pixel's TikTok credentials were set go to
TikTok once, oldest first, through the normal forwarder.

Until a pixel has a TikTok pixel code and access token, the forwarder skips
its events (``not_configured``); the loader stores them all the same. When the
credentials are first set (:func:`request`, called by the ``pixel.update``
operation), a *job* is written: the pixel, ``cutoff`` (events received before
it are the job's; later ones take the normal path) and ``since`` (events older
than ``max_age_s`` are left alone: TikTok would refuse or mis-date them; 7
days by default, ``PIXEL_BACKFILL_MAX_AGE_DAYS``). When the credentials are
set *again after failing* (TikTok answered 40105 for the pixel), the job is a
replay: events dead-lettered meanwhile are sent again too.

:class:`Backfill` (a thread in the server) turns each job into spill chunks of
up to 1,000 events in (event_time, event, event_id, source) order, written
into the pixel's retry store, which the forwarder adopts and sends like any
retry: its own mapping, batching, retries and ledger. After each chunk the
job's cursor is saved (atomically).

Exactly once, also across ``kill -9``
-------------------------------------
* The parts are deterministic (a fixed query from the saved cursor) and each
  chunk's file name is fixed by the job and the part's number. A crash after a
  chunk was written and before the cursor was saved writes the same events
  under the same name again, which replaces the file instead of adding one.
* Chunks count as found on disk, so the forwarder checks their events against
  the ledger before sending: those already ``sent`` (or ``dead``, except in a
  replay) are skipped, e.g. when the normal path or an earlier run sent them.
* Only the forwarder's own window remains: a request TikTok took whose ledger
  row had not reached ClickHouse when the process died is sent again, with
  its event_id, which TikTok deduplicates.

Browser copies go only for pixels that forward browser events; consent-denied
events never. Progress (queued of total) is in the job file, on the settings
page and in ``/metrics`` (``pixel_backfill_events{pixel_id,state}``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson
from clickhouse_connect.driver.client import Client
from prometheus_client.core import GaugeMetricFamily

from pixel_server.atomic import replace_file
from pixel_server.pipeline import record as records
from pixel_server.pixel import Pixel
from pixel_server.sinks import ledger
from pixel_server.sinks.spill import REPLAY_TAG, SUFFIX, SpillEntry, write_chunk

log = logging.getLogger("pixel_server.backfill")

JOBS_DIR: Final = "backfill"  # under the data directory: one job file per pixel
DEFAULT_MAX_AGE_S: Final = 7 * 86_400.0
PART_EVENTS: Final = 1000
FAILED_WINDOW_S: Final = 30 * 86_400.0  # a 40105 this recent makes new credentials a replay
INVALID_TOKEN: Final = 40105


@dataclass
class Job:
    pixel_id: str
    started_ns: int
    cutoff_ms: int  # received_at < cutoff: the job's events
    replay: bool = False  # credentials set again after failing: dead letters go again
    since_ms: int = -1  # event_time >= since: young enough for TikTok (set at first run)
    # The log's end at first run: queueing waits until the forwarder has committed
    # past it, so any event it sent the normal way is on the ledger (and skipped).
    mark: tuple[int, int] | None = None
    cursor: tuple[int, str, str, str] | None = None  # last queued (event_time ms, event, id, src)
    part: int = 0
    queued: int = 0
    total: int = -1  # -1 until counted
    done: bool = False

    def chunk_name(self, part: int) -> str:
        tag = REPLAY_TAG if self.replay else "-"
        return f"{self.started_ns:020d}{tag}backfill{part:06d}{SUFFIX}"

    def progress(self) -> dict[str, Any]:
        return {"queued": self.queued, "total": max(self.total, 0), "done": self.done,
                "replay": self.replay,
                "since": datetime.fromtimestamp(self.since_ms / 1000, UTC).isoformat()}  # fmt: skip


def _configured(pixel: Pixel) -> bool:
    return bool(pixel.tiktok_pixel_code and pixel.tiktok_access_token)


def _credentials(pixel: Pixel) -> tuple[str, str]:
    return pixel.tiktok_pixel_code, pixel.tiktok_access_token


def _job_path(jobs_dir: Path, pixel_id: str) -> Path:
    return jobs_dir / f"{pixel_id}.json"


def save(jobs_dir: Path, job: Job) -> None:
    """Atomically (temporary name, fsync, rename)."""
    jobs_dir.mkdir(parents=True, exist_ok=True)
    path = _job_path(jobs_dir, job.pixel_id)
    replace_file(path, orjson.dumps(asdict(job)))


def load(jobs_dir: Path, pixel_id: str) -> Job | None:
    try:
        raw = orjson.loads(_job_path(jobs_dir, pixel_id).read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    raw["cursor"] = tuple(raw["cursor"]) if raw.get("cursor") else None
    raw["mark"] = tuple(raw["mark"]) if raw.get("mark") else None
    return Job(**raw)


def _failed_recently(client: Client, pixel_id: str, since_ms: int) -> bool:
    rows = client.query(
        "SELECT count() FROM deliveries WHERE pixel_id = {p:String} AND outcome = 'dead'"
        " AND tiktok_code = {code:Int32} AND attempted_at >= {since:DateTime64(3)}",
        parameters={"p": pixel_id, "code": INVALID_TOKEN,
                    "since": datetime.fromtimestamp(since_ms / 1000, UTC)},
    )  # fmt: skip
    return int(rows.result_rows[0][0]) > 0


def request(client: Client, jobs_dir: Path, before: Pixel, after: Pixel, now: float) -> Job | None:
    """Start a job when a settings change calls for one (see the module's text)."""
    if not _configured(after) or _credentials(before) == _credentials(after):
        return None
    replay = _configured(before)
    if replay and not _failed_recently(client, after.id, round((now - FAILED_WINDOW_S) * 1000)):
        return None  # new credentials for a pixel that was working: nothing was lost
    current = load(jobs_dir, after.id)
    if current is not None and not current.done and current.replay == replay:
        return current  # one job at a time; it already covers these events
    job = Job(after.id, time.time_ns(), round(now * 1000), replay)
    save(jobs_dir, job)
    log.info("backfill requested", extra={"pixel_id": after.id, "replay": replay})
    return job


_WHERE: Final = """
pixel_id = {p:String} AND received_at < {cutoff:DateTime64(3)}
AND event_time >= {since:DateTime64(3)} AND consent != 'denied'
AND (source != 'browser' OR {browser:Bool})
"""
_KEY: Final = "(toUnixTimestamp64Milli(event_time), event, event_id, toString(source))"


def _params(job: Job, pixel: Pixel) -> dict[str, Any]:
    return {
        "p": job.pixel_id,
        "cutoff": datetime.fromtimestamp(job.cutoff_ms / 1000, UTC),
        "since": datetime.fromtimestamp(job.since_ms / 1000, UTC),
        "browser": pixel.forward_browser,
    }


def count(client: Client, job: Job, pixel: Pixel) -> int:
    rows = client.query(
        f"SELECT uniqExact({_KEY}) FROM events WHERE {_WHERE}", parameters=_params(job, pixel)
    )
    return int(rows.result_rows[0][0])


def next_part(client: Client, job: Job, pixel: Pixel, limit: int) -> list[tuple[Any, ...]]:
    """The next keys after the cursor, in order (one row per copy)."""
    after = ""
    params = _params(job, pixel)
    if job.cursor is not None:
        after = f" AND {_KEY} > ({{ct:Int64}}, {{ce:String}}, {{ci:String}}, {{cs:String}})"
        params.update(dict(zip(("ct", "ce", "ci", "cs"), job.cursor, strict=True)))
    rows = client.query(
        f"SELECT DISTINCT {_KEY} AS k FROM events WHERE {_WHERE}{after} ORDER BY k LIMIT {limit}",
        parameters=params,
    )
    return [tuple(r[0]) for r in rows.result_rows]


class Backfill:
    """Runs the jobs in a thread; ``start()`` / ``stop()`` from any thread."""

    def __init__(
        self,
        client: Callable[[], Client],
        pixels: Callable[[str], Pixel | None],
        data_dir: Path,
        spill_root: Path,
        log_end: Callable[[], tuple[int, int]],
        forwarded: Callable[[], tuple[int, int]],
        *,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        interval: float = 1.0,
        part_events: int = PART_EVENTS,
        fsync: bool = True,
    ) -> None:
        self.client = client
        self.pixels = pixels
        self.jobs_dir = data_dir / JOBS_DIR
        self.spill_root = spill_root
        self.log_end = log_end  # the write-ahead log's durable end
        self.forwarded = forwarded  # the forwarder's committed position in it
        self.max_age_s = max_age_s
        self.interval = interval
        self.part_events = part_events
        self.fsync = fsync
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="backfill", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_pending()
            except Exception as exc:  # ClickHouse down: the next round goes on
                log.warning("backfill round failed", extra={"error": str(exc)[:300]})

    def jobs(self) -> list[Job]:
        if not self.jobs_dir.is_dir():
            return []
        found = (load(self.jobs_dir, p.stem) for p in sorted(self.jobs_dir.glob("*.json")))
        return [j for j in found if j is not None]

    def progress(self, pixel_id: str) -> dict[str, Any] | None:
        job = load(self.jobs_dir, pixel_id)
        return job.progress() if job is not None else None

    def run_pending(self) -> None:
        for job in self.jobs():
            if not job.done and not self._stop.is_set():
                self.run(job)

    def run(self, job: Job) -> None:
        """Queue the job's remaining parts (resumes from its saved cursor)."""
        pixel = self.pixels(job.pixel_id)
        if pixel is None or not _configured(pixel):
            return  # settings not loaded yet, or cleared again: wait
        if job.mark is None:
            job.mark = tuple(self.log_end())  # type: ignore[assignment]
            job.since_ms = round((time.time() - self.max_age_s) * 1000)
            save(self.jobs_dir, job)
        if tuple(self.forwarded()) < tuple(job.mark):  # type: ignore[arg-type]
            return  # the forwarder is still deciding about events read before
        client = self.client()
        if job.total < 0:
            job.total = count(client, job, pixel)
            save(self.jobs_dir, job)
        while not self._stop.is_set():
            keys = next_part(client, job, pixel, self.part_events)
            if not keys:
                job.done = True
                save(self.jobs_dir, job)
                log.info("backfill queued", extra={"pixel_id": job.pixel_id, "events": job.queued})
                return
            self._queue(client, job, keys)

    def _queue(self, client: Client, job: Job, keys: list[tuple[Any, ...]]) -> None:
        """One part: its chunk (under the part's fixed name), then the cursor."""
        wanted = [(job.pixel_id, e, i, s) for _, e, i, s in keys]
        found = ledger.load_records(client, job.pixel_id, wanted)
        batch = [found[k] for k in wanted if k in found]
        write_chunk(
            self.spill_root / job.pixel_id,
            [SpillEntry(0, records.encode(r)) for r in batch],
            fsync=self.fsync,
            replay=job.replay,
            name=job.chunk_name(job.part),
        )
        job.cursor = keys[-1]  # type: ignore[assignment]
        job.part += 1
        job.queued += len(batch)
        save(self.jobs_dir, job)

    def collect_metrics(self) -> list[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "pixel_backfill_events",
            "Events of a pixel's TikTok backfill: total, and queued for the forwarder.",
            labels=["pixel_id", "state"],
        )
        with contextlib.suppress(OSError):
            for job in self.jobs():
                gauge.add_metric([job.pixel_id, "total"], max(job.total, 0))
                gauge.add_metric([job.pixel_id, "queued"], job.queued)
        return [gauge]
