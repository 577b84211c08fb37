"""The webhook side of a running server: the delivery ledger, the order
fetcher, and the one way webhook events reach the pipeline.

Files, under ``<data dir>/webhooks/``: ``ledger.log`` (handled deliveries),
``jobs/`` (the fetch job log), ``failed.jsonl`` (parked fetch jobs).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import httpx
import msgspec
import orjson

from pixel_server.ingest.service import Ingestor, IntakeResult
from pixel_server.ingest.webhooks import bigcommerce, ecwid, woocommerce
from pixel_server.ingest.webhooks.common import Delivery, Mapped
from pixel_server.ingest.webhooks.fetcher import FetchFn, FetchPolicy, OrderFetcher
from pixel_server.ingest.webhooks.ledger import WebhookLedger
from pixel_server.metrics import Metrics
from pixel_server.pipeline.steps import Context
from pixel_server.pixel import Pixel
from pixel_server.registry import PixelRegistry

log = logging.getLogger("pixel_server.webhooks")

#: Platforms retry a failed delivery for up to 48 hours; keep ids a day longer.
DELIVERY_TTL: Final = 72 * 3600.0
#: Once-only events (refunds timed by when we learnt of them): about a year.
ONCE_TTL: Final = 400 * 86400.0
FETCHERS: Final[dict[str, FetchFn]] = {
    ecwid.NAME: ecwid.fetch,
    bigcommerce.NAME: bigcommerce.fetch,
    woocommerce.NAME: woocommerce.fetch,
}

Status = Literal["stored", "queued", "ignored", "duplicate", "in_progress"]


@dataclass(slots=True)
class Result:
    status: Status
    outcome: IntakeResult = field(default_factory=IntakeResult)
    note: str = ""

    def as_json(self, delivery: Delivery) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "delivery_id": delivery.delivery_id}
        if self.status == "stored":
            body.update(self.outcome.as_json())
        if delivery.job is not None and self.status == "queued":
            body["order_id"] = delivery.job.order_id
        if self.note:
            body["note"] = self.note
        return body


class Webhooks:
    """Started and stopped by the Runtime; the endpoint hands it each
    authenticated delivery (:meth:`accept`)."""

    def __init__(
        self,
        directory: Path,
        *,
        ingestor: Ingestor,
        registry: PixelRegistry,
        metrics: Metrics,
        policy: FetchPolicy,
        fsync: bool = True,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.metrics = metrics
        self.ledger = WebhookLedger(directory)
        self.fetcher = OrderFetcher(
            directory,
            fetchers=FETCHERS,
            store=self.store,
            pixels=registry.get,
            metrics=metrics,
            policy=policy,
            fsync=fsync,
            http=http,
        )

    async def start(self) -> None:
        self.ledger.open()
        await self.fetcher.start()

    async def stop(self) -> None:
        await self.fetcher.stop()
        self.ledger.close()

    async def accept(self, pixel: Pixel, platform: str, delivery: Delivery) -> Result:
        """Handle one authenticated delivery, once. Raises ``LogFull`` (nothing done)."""
        key = f"delivery|{pixel.id}|{platform}|{delivery.delivery_id}"
        state = self.ledger.state(key)
        if state == "busy":  # a concurrent copy: its outcome is not known yet
            return Result("in_progress")
        if state == "done":
            self.metrics.webhook_deliveries.labels(platform, "duplicate").inc()
            return Result("duplicate")
        self.ledger.claim(key)
        job = delivery.job
        if job is None and pixel.store_api_base and pixel.store_api_token:
            job = delivery.job_with_api
        try:
            if job is not None:
                await self.fetcher.enqueue(msgspec.structs.replace(job, pixel_id=pixel.id))
                result = Result("queued")
            elif delivery.mapped.events:
                result = Result("stored", await self.store(pixel, delivery.mapped))
            else:
                result = Result("ignored", note=delivery.note)
        except BaseException:
            self.ledger.release(key)  # not acknowledged: the platform's retry is handled afresh
            raise
        self.ledger.done(key, DELIVERY_TTL)
        self.metrics.webhook_deliveries.labels(platform, result.status).inc()
        return result

    async def store(self, pixel: Pixel, mapped: Mapped) -> IntakeResult:
        """Validate, enrich, hash and log webhook events (source ``webhook``)."""
        events = [e for e in mapped.events if not self._stored_once(pixel, e["event_id"], mapped)]
        if not events:
            return IntakeResult()
        ctx = Context(pixel=pixel, source="webhook", now=time.time())
        outcome = await self.ingestor.ingest([orjson.dumps(e) for e in events], ctx, "events")
        rejected = {r.index for r in outcome.rejected}
        for index, event in enumerate(events):
            if event["event_id"] in mapped.once and index not in rejected:
                self.ledger.done(_once_key(pixel, event["event_id"]), ONCE_TTL)
        if outcome.rejected:
            # The platform cannot fix these by retrying: acknowledge, and say so
            # (pixel_events_rejected_total counts them too). An update of an order
            # older than the horizon re-sends its Purchase: expected, not alarming.
            expected = all(r.code == "event_too_old" for r in outcome.rejected)
            log.log(
                logging.INFO if expected else logging.WARNING,
                "webhook events rejected",
                extra={"pixel_id": pixel.id, "rejected": [r.as_json() for r in outcome.rejected],
                       "event_ids": [events[r.index]["event_id"] for r in outcome.rejected]},
            )  # fmt: skip
        return outcome

    def _stored_once(self, pixel: Pixel, event_id: str, mapped: Mapped) -> bool:
        """Stored before (a once-only event), or covered by a cancellation stored before."""
        keys = [event_id] if event_id in mapped.once else []
        if event_id in mapped.covered:
            keys.append(mapped.covered[event_id])
        return any(self.ledger.state(_once_key(pixel, key)) == "done" for key in keys)


def _once_key(pixel: Pixel, event_id: str) -> str:
    return f"event|{pixel.id}|{event_id}"
