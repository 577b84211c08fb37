"""The server's parts, built from settings, and their start/stop order.

:class:`Runtime` is the composition root: it constructs every long-lived part
once (registry, ingestor, log, loader, forwarder, webhooks, admin) and
:func:`pixel_server.app.create_app` hands each route factory the few parts
its routes use. Nothing else looks parts up at request time.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final

import anyio
from prometheus_client.core import GaugeMetricFamily

from pixel_server import filemodes
from pixel_server.admin import AdminApi, AdminServer
from pixel_server.catalog.push import CatalogPush
from pixel_server.catalog.schedule import CatalogSchedule
from pixel_server.catalog.store import CatalogStore
from pixel_server.catalog.sync import CatalogSync
from pixel_server.config import Settings
from pixel_server.events.schema import Limits
from pixel_server.ingest.ratelimit import RateLimiter
from pixel_server.ingest.service import Ingestor
from pixel_server.ingest.webhooks import FetchPolicy, Webhooks
from pixel_server.management import Management
from pixel_server.metrics import Metrics
from pixel_server.pipeline.dedup import DedupIndex
from pixel_server.pipeline.erasures import FILE_NAME as ERASURES_FILE
from pixel_server.pipeline.erasures import Erasures
from pixel_server.pipeline.record import Record, decode, encode
from pixel_server.pipeline.wal import WriteAheadLog
from pixel_server.registry import PixelRegistry
from pixel_server.secretbox import SecretBox
from pixel_server.sinks import tiktok
from pixel_server.sinks.backfill import Backfill
from pixel_server.sinks.clickhouse import QUARANTINE_FILE, Loader
from pixel_server.sinks.ledger import Ledger
from pixel_server.storage.client import DataDirInUse, StorageError, parse_url
from pixel_server.storage.database import Database
from pixel_server.storage.events import EventStore
from pixel_server.storage.lock import DataDirLock
from pixel_server.storage.merged import DEFAULT_RETENTION_MONTHS
from pixel_server.storage.pixels import PixelStore

log = logging.getLogger("pixel_server.runtime")

DEMO_PIXEL_NAME: Final = "Demo store"
WAL_READERS: Final = ("loader", "forwarder")
RECONNECT_SECONDS: Final = 2.0
REGISTRY_REFRESH_SECONDS: Final = 30.0


class Runtime:
    """Everything one server process owns.

    ``webhook_policy`` and ``forwarder_options`` let tests shorten retries and
    timeouts; production uses the defaults.
    """

    def __init__(
        self,
        settings: Settings,
        database: str | None = None,
        *,
        webhook_policy: FetchPolicy | None = None,
        forwarder_options: Mapping[str, Any] | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self._announce = announce
        self.data_dir = settings.data_dir.resolve()
        self.lock = DataDirLock(self.data_dir)
        self.database = Database(parse_url(settings.clickhouse_dsn, database))
        self.box = SecretBox(settings.secret_key_path.resolve())
        self.metrics = Metrics()
        self.registry = PixelRegistry()
        self.events = EventStore(
            self.database.client, self._retention_months, embedded=self.database.target.embedded
        )
        # Erased people: the loader and the forwarder drop their copies in transit.
        self.erasures = Erasures(self.data_dir / ERASURES_FILE)
        self.management = Management(
            self.database,
            on_change=self.refresh_registry,
            data_dir=self.data_dir,
            status=self.status,
            box=self.box,
            erasures=self.erasures,
        )
        self.admin_secret = secrets.token_urlsafe(32)
        self.admin = AdminServer(
            AdminApi(self.management, self.admin_secret), self.data_dir, self.admin_secret
        )
        self.ip_limiter = RateLimiter(settings.rate_limit_ip, settings.rate_limit_ip_burst)
        self.pixel_limiter = RateLimiter(settings.rate_limit_pixel, settings.rate_limit_pixel_burst)
        self.dedup = DedupIndex()
        self.catalog = CatalogStore(self.database.client)
        self.catalog_sync = CatalogSync(self.catalog)
        self.catalog_push = CatalogPush(self.catalog)
        self.catalog_schedule = CatalogSchedule(
            self.registry.all, self.catalog_sync, self.catalog_push
        )
        self.ingestor = Ingestor(
            self.metrics,
            Limits(
                browser_horizon_s=settings.browser_horizon_hours * 3600,
                server_horizon_s=settings.server_horizon_hours * 3600,
            ),
            self.dedup,
        )
        self.webhook_policy = webhook_policy or FetchPolicy()
        self.webhooks = Webhooks(
            self.data_dir / "webhooks",
            ingestor=self.ingestor,
            registry=self.registry,
            metrics=self.metrics,
            policy=self.webhook_policy,
            fsync=settings.wal_fsync,
        )
        self.wal: WriteAheadLog | None = None
        self.loader: Loader | None = None
        self.forwarder: tiktok.Forwarder | None = None
        self.forwarder_options: dict[str, Any] = dict(forwarder_options or {})
        self.backfill: Backfill | None = None  # stored events, once TikTok is set up
        # Told of every batch the loader stored (the console's live view).
        self.on_loaded: Callable[[list[bytes]], None] = lambda batch: None
        self._tasks: list[asyncio.Task[None]] = []
        self._resealed = False
        self.metrics.ready.set_function(lambda: 1.0 if self.readiness()[0] else 0.0)
        self.metrics.add_callback(self._log_metrics)
        self.metrics.add_callback(self._forwarder_metrics)
        self.metrics.add_callback(lambda: self.backfill.collect_metrics() if self.backfill else [])

    # registry ------------------------------------------------------------

    def refresh_registry(self) -> None:
        self.registry.refresh(PixelStore(self.database.client(), self.box))

    def count_request(self, route: str, status: int) -> None:
        self.metrics.http_requests.labels(route, str(status)).inc()

    # readiness -----------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        problem = self.database.check()
        checks: dict[str, Any] = {"clickhouse": f"unavailable: {problem}" if problem else "ok"}
        ready = problem is None
        if self.loader is not None:
            state = self.loader.state
            checks["loader"] = (
                "ok" if self.loader.healthy else f"degraded: inserts failing: {state.last_error}"
            )
            ready = ready and self.loader.healthy
        if self.forwarder is not None:
            # Details only: a TikTok problem never stops ingestion, so never unready.
            checks["forwarder"] = self.forwarder.status()
        if self.wal is not None:
            checks["log"] = {
                "bytes": self.wal.size_bytes(),
                "budget_bytes": self.wal.max_bytes,
                "backlog": {
                    name: self.wal.reader(name).backlog()._asdict() for name in WAL_READERS
                },
            }
        return ready, checks

    def status(self) -> dict[str, Any]:
        """Readiness with every detail, for operators (``pixel-server status``)."""
        ready, checks = self.readiness()
        return {"ready": ready, "checks": checks}

    def _log_metrics(self) -> list[GaugeMetricFamily]:
        if self.wal is None:
            return []
        size = GaugeMetricFamily("pixel_log_bytes", "Bytes in the write-ahead log.")
        size.add_metric([], self.wal.size_bytes())
        backlog = GaugeMetricFamily(
            "pixel_log_backlog_bytes", "Log bytes a reader has not committed yet.",
            labels=["reader"],
        )  # fmt: skip
        records_behind = GaugeMetricFamily(
            "pixel_log_backlog_records", "About how many records a reader is behind.",
            labels=["reader"],
        )  # fmt: skip
        for name in WAL_READERS:
            b = self.wal.reader(name).backlog()
            backlog.add_metric([name], b.bytes)
            records_behind.add_metric([name], b.records)
        stats = self.wal.stats()
        fsyncs = GaugeMetricFamily("pixel_log_fsyncs", "fsync calls since start.")
        fsyncs.add_metric([], stats.fsyncs)
        dedup = GaugeMetricFamily("pixel_dedup_keys", "Keys in the in-memory dedup index.")
        dedup.add_metric([], len(self.dedup))
        return [size, backlog, records_behind, fsyncs, dedup]

    def _forwarder_metrics(self) -> list[GaugeMetricFamily]:
        return self.forwarder.collect_metrics() if self.forwarder is not None else []

    # lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        self.lock.acquire()
        for problem in filemodes.too_open(self.data_dir):
            log.warning(
                "data directory readable by others: chmod it to the owner only",
                extra={"problem": problem},
            )
        s = self.settings
        self.wal = WriteAheadLog(
            self.data_dir / "wal",
            WAL_READERS,
            segment_bytes=s.wal_segment_mb << 20,
            max_bytes=s.wal_max_mb << 20,
            commit_interval=s.wal_commit_interval_ms / 1000,
            fsync=s.wal_fsync,
        )
        self.ingestor.attach(self.wal)
        try:
            await anyio.to_thread.run_sync(self._connect)
            await anyio.to_thread.run_sync(self._rebuild_dedup)
        except DataDirInUse:
            self.ingestor.attach(None)
            self.wal.close()
            self.lock.release()
            raise
        except StorageError as exc:
            log.warning("ClickHouse unavailable at start; retrying", extra={"error": str(exc)})
        self.loader = Loader(
            self.wal.reader("loader"),
            self.load,
            self.metrics,
            batch_rows=s.loader_batch_rows,
            interval=s.loader_interval_ms / 1000,
            probe=lambda: self.database.check() is None,
            quarantine=self.data_dir / QUARANTINE_FILE,
        )
        self.loader.start()
        self.forwarder = tiktok.Forwarder(
            self.wal,
            self.registry,
            Ledger(self.database.client),
            self.metrics,
            spill_dir=self.data_dir / tiktok.SPILL_DIR,
            fsync=s.wal_fsync,
            erasures=self.erasures,
            **self.forwarder_options,
        )
        self.forwarder.start()
        wal, forwarder_log = self.wal, self.wal.reader(tiktok.READER_NAME)
        self.backfill = Backfill(
            self.database.client, self.registry.get, self.data_dir,
            self.data_dir / tiktok.SPILL_DIR, lambda: wal.durable_end,
            lambda: forwarder_log.committed, max_age_s=s.backfill_max_age_days * 86_400,
            fsync=s.wal_fsync,
        )  # fmt: skip
        self.backfill.start()
        await self.webhooks.start()
        self.catalog_schedule.start()
        self._tasks.append(asyncio.create_task(self._maintain()))
        await self.admin.start()

    def _retention_months(self) -> dict[str, int]:
        return {
            p.id: p.raw_retention_months
            for p in self.registry.all()
            if p.raw_retention_months != DEFAULT_RETENTION_MONTHS
        }

    def load(self, batch: list[bytes], token: str) -> None:
        """The loader's way into ClickHouse, with log records as they are in the
        log (tests wrap ``loader.insert`` to inject failures)."""
        if self.erasures.pixels:
            batch = [p for p in batch if not self.erasures.matches(decode(p))]
        if batch:
            self.events.insert(batch, token)
        self.on_loaded(batch)

    def insert_events(self, records: list[Record], token: str) -> None:
        """The same from records (tests and data generators)."""
        self.load([encode(r) for r in records], token)

    def _rebuild_dedup(self) -> None:
        """Seed the index with the last 48 h of copies already in ClickHouse."""
        loaded = self.dedup.load(self.events.recent_copies())
        log.info("dedup index rebuilt", extra={"keys": loaded})

    def _connect(self) -> None:
        self.database.client()
        if not self._resealed:  # credentials stored before they were sealed
            resealed = PixelStore(self.database.client(), self.box).reseal()
            if resealed:
                log.info("stored credentials sealed", extra={"pixels": resealed})
            self._resealed = True
        self.refresh_registry()
        if self.settings.demo:
            self._ensure_demo_pixel()

    def _ensure_demo_pixel(self) -> None:
        if any(p.name == DEMO_PIXEL_NAME for p in self.registry.all()):
            return
        pixel, _, owner_token = PixelStore(self.database.client(), self.box).add(
            name=DEMO_PIXEL_NAME, origins=[self.settings.base_url], platform="html"
        )
        self.refresh_registry()
        log.info("demo pixel created", extra={"pixel_id": pixel.id})
        if not is_loopback(self.settings.host):
            log.warning(
                "demo mode on a non-loopback address: no owner access is handed out",
                extra={"host": self.settings.host},
            )
        elif self._announce is not None:
            # Once, on the terminal of whoever started the server; never in a log.
            base = self.settings.base_url
            self._announce(f"Demo store: {base}/demo   dashboard: {base}/login?token={owner_token}")

    async def _maintain(self) -> None:
        """Reconnect while ClickHouse is down; refresh the registry now and then."""
        since_refresh = 0.0
        while True:
            await asyncio.sleep(RECONNECT_SECONDS)
            since_refresh += RECONNECT_SECONDS
            if self.database.connected and since_refresh < REGISTRY_REFRESH_SECONDS:
                continue
            since_refresh = 0.0
            try:
                await anyio.to_thread.run_sync(self._connect)
            except Exception as exc:  # keep trying; the reason is in /readyz
                log.debug("reconnect failed", extra={"error": str(exc)})

    async def stop(self) -> None:
        await self.admin.stop()  # first: no management change while parts stop
        await anyio.to_thread.run_sync(self.catalog_schedule.stop)
        await self.webhooks.stop()  # first: its fetches write to the event log
        if self.backfill is not None:
            await anyio.to_thread.run_sync(self.backfill.stop)
        if self.loader is not None:
            await anyio.to_thread.run_sync(self.loader.stop)
        if self.forwarder is not None:
            await anyio.to_thread.run_sync(self.forwarder.stop)
        self.ingestor.attach(None)
        if self.wal is not None:
            await anyio.to_thread.run_sync(self.wal.close)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await anyio.to_thread.run_sync(self.database.close)
        self.lock.release()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a listening address) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
