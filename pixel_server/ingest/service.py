"""What every ingest endpoint does with a request's events: validate each,
run the enrichment steps, and append the survivors to the write-ahead log in
one group-committed write. Returns counts and per-event rejections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from pixel_server.events.schema import Event, EventError, Limits, decode_event
from pixel_server.metrics import Metrics
from pixel_server.pipeline import record as records
from pixel_server.pipeline import steps
from pixel_server.pipeline.dedup import DedupIndex
from pixel_server.pipeline.record import Record
from pixel_server.pipeline.wal import WalClosed, WriteAheadLog


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    code: str
    message: str
    field: str

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "code": self.code,
            "message": self.message,
            "field": self.field,
        }


@dataclass(slots=True)
class IntakeResult:
    accepted: int = 0  # now on disk (or already there: same-source duplicates)
    duplicates: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "dropped": self.dropped,
            "rejected": [r.as_json() for r in self.rejected],
        }


# The events table keeps value and prices as Decimal(18, 4): a larger number
# would be acknowledged and then fail every insert of its batch, stalling the
# loader for good. (The bound belongs in the schema's NonNegativeNumber.)
MAX_AMOUNT = 1e14


def _check_storable(event: Event, prefix: str) -> None:
    props = event.properties
    if props.value is not None and abs(props.value) >= MAX_AMOUNT:  # refunds are negative
        raise EventError(
            "invalid_field",
            f"value must be less than {MAX_AMOUNT:.0e} in size",
            f"{prefix}.properties.value",
        )
    for i, content in enumerate(props.contents or ()):
        if content.price is not None and content.price >= MAX_AMOUNT:
            raise EventError(
                "invalid_field",
                f"price must be less than {MAX_AMOUNT:.0e}",
                f"{prefix}.properties.contents[{i}].price",
            )


class Ingestor:
    """Built with the app; the write-ahead log is attached when the server
    starts (it is opened under the data directory's lock)."""

    def __init__(self, metrics: Metrics, limits: Limits, dedup: DedupIndex) -> None:
        self.metrics = metrics
        self.limits = limits
        self.dedup = dedup
        self._wal: WriteAheadLog | None = None

    def attach(self, wal: WriteAheadLog | None) -> None:
        self._wal = wal

    def _count_redaction(self, field: str) -> None:
        self.metrics.pii_redacted.labels(field).inc()

    def _seen(self, record: Record) -> bool:
        return self.dedup.seen(
            record.pixel_id, record.event, record.event_id, record.source, record.event_time
        )

    async def ingest(
        self, raws: list[msgspec.Raw] | list[bytes], ctx: steps.Context, prefix: str
    ) -> IntakeResult:
        """Raises ``LogFull`` (nothing accepted) when the log's disk budget is reached."""
        outcome = IntakeResult()
        ctx.seen = self._seen
        ctx.on_redact = self._count_redaction
        payloads: list[bytes] = []
        kept: list[Record] = []
        source = ctx.source
        self.metrics.events_received.labels(source).inc(len(raws))
        for index, raw in enumerate(raws):
            try:
                event = decode_event(
                    raw,
                    source=source,
                    now=ctx.now,
                    limits=self.limits,
                    field_prefix=f"{prefix}[{index}]",
                )
                _check_storable(event, f"{prefix}[{index}]")
            except EventError as exc:
                outcome.rejected.append(Rejection(index, exc.code, exc.message, exc.field))
                self.metrics.events_rejected.labels(source, exc.code).inc()
                continue
            result = steps.run(event, ctx)
            if isinstance(result, str):
                if result == "duplicate":
                    outcome.duplicates += 1
                    outcome.accepted += 1  # the first copy is already safe
                    self.metrics.duplicates_collapsed.labels(source).inc()
                outcome.dropped[result] = outcome.dropped.get(result, 0) + 1
                self.metrics.events_dropped.labels(result).inc()
                continue
            if result.event_id_assigned:
                self.metrics.missing_event_id.labels(source).inc()
            kept.append(result)
            payloads.append(records.encode(result))
        if payloads:
            try:
                if self._wal is None:
                    raise WalClosed("the server is not started")
                await self._wal.append(payloads)
            except BaseException:
                # Not acknowledged: a retry of these events must not look like a duplicate.
                for r in kept:
                    self.dedup.forget(r.pixel_id, r.event, r.event_id, r.source)
                raise
            outcome.accepted += len(payloads)
            self.metrics.events_accepted.labels(source).inc(len(payloads))
        return outcome
