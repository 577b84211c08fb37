"""Prometheus metrics, one registry per application (no global state).

Every drop reason and rejection code is a label value from a closed list, so a
dashboard can alert on any of them.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector


class _Callback(Collector):
    """Gauges read at scrape time from live objects (log backlog, readiness)."""

    def __init__(self, produce: Callable[[], list[GaugeMetricFamily]]) -> None:
        self._produce = produce

    def collect(self) -> list[GaugeMetricFamily]:  # type: ignore[override]
        return self._produce()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "pixel_http_requests", "HTTP requests answered.", ["route", "status"], registry=r
        )
        self.events_received = Counter(
            "pixel_events_received", "Events received, before validation.", ["source"], registry=r
        )
        self.events_accepted = Counter(
            "pixel_events_accepted",
            "Events written to the write-ahead log (acknowledged).",
            ["source"],
            registry=r,
        )
        self.events_rejected = Counter(
            "pixel_events_rejected",
            "Events refused by validation, by error code.",
            ["source", "code"],
            registry=r,
        )
        self.events_dropped = Counter(
            "pixel_events_dropped",
            "Events dropped by a pipeline step, by reason (closed list in pipeline.steps).",
            ["reason"],
            registry=r,
        )
        self.requests_rejected = Counter(
            "pixel_requests_rejected",
            "Requests refused before their events were looked at, by error code.",
            ["endpoint", "code"],
            registry=r,
        )
        self.pii_redacted = Counter(
            "pixel_pii_redacted",
            "Events whose free-text field held an email or phone number, taken out before"
            " the log, by field.",
            ["field"],
            registry=r,
        )
        self.duplicates_collapsed = Counter(
            "pixel_duplicates_collapsed",
            "Same-source copies of an event collapsed by the dedup index.",
            ["source"],
            registry=r,
        )
        self.missing_event_id = Counter(
            "pixel_events_missing_event_id",
            "Events that arrived without event_id (one was assigned; they can never merge).",
            ["source"],
            registry=r,
        )
        self.rows_loaded = Counter(
            "pixel_loader_rows", "Rows inserted into ClickHouse by the loader.", registry=r
        )
        self.loader_quarantined = Counter(
            "pixel_loader_quarantined",
            "Rows ClickHouse refused while it answered, parked in <data dir>/quarantine/.",
            registry=r,
        )
        self.loader_errors = Counter(
            "pixel_loader_errors", "Failed ClickHouse inserts (retried).", registry=r
        )
        self.ingest_latency = Histogram(
            "pixel_ingest_seconds",
            "Time from request start to durable acknowledgement.",
            ["endpoint"],
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.webhooks_rejected = Counter(
            "pixel_webhooks_rejected",
            "Webhook deliveries refused, by platform and reason.",
            ["platform", "reason"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "pixel_webhook_deliveries",
            "Webhook deliveries acknowledged, by platform and outcome "
            "(stored, queued, ignored, duplicate, ping).",
            ["platform", "outcome"],
            registry=r,
        )
        self.webhook_fetches = Counter(
            "pixel_webhook_fetches",
            "Order fetches from store APIs, by platform and result (ok, retry, parked).",
            ["platform", "result"],
            registry=r,
        )
        self.webhook_fetch_errors = Counter(
            "pixel_webhook_fetch_errors",
            "Failed order fetch attempts, by platform and reason.",
            ["platform", "reason"],
            registry=r,
        )
        # TikTok forwarder (sinks.tiktok); per-pixel gauges come from its callback.
        self.forward_events = Counter(
            "pixel_forward_events",
            "Ledger rows written per event attempt, by outcome (sent, retrying, dead).",
            ["outcome"],
            registry=r,
        )
        self.forward_skipped = Counter(
            "pixel_forward_skipped",
            "Log events not sent to TikTok, by reason (closed list in sinks.tiktok).",
            ["reason"],
            registry=r,
        )
        self.forward_requests = Counter(
            "pixel_forward_requests",
            "Requests to TikTok's Events API, by result (sent, retry, dead, split).",
            ["result"],
            registry=r,
        )
        self.forward_spilled = Counter(
            "pixel_forward_spilled_events",
            "Events moved to the forwarder's on-disk retry store.",
            registry=r,
        )
        self.forward_request_seconds = Histogram(
            "pixel_forward_request_seconds",
            "Duration of requests to TikTok's Events API.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.forward_delay = Histogram(
            "pixel_forward_delay_seconds",
            "Time from an event's arrival to TikTok's acknowledgement.",
            buckets=(0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
            registry=r,
        )
        self.ready = Gauge("pixel_ready", "1 when /readyz answers 200.", registry=r)

    def add_callback(self, produce: Callable[[], list[GaugeMetricFamily]]) -> None:
        self.registry.register(_Callback(produce))

    def render(self) -> bytes:
        return generate_latest(self.registry)
