"""The events table as the loader and the dedup index see it: batched,
idempotent inserts of log records, and the recent copies that seed the
same-source dedup index at start."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from clickhouse_connect.driver.client import Client

from pixel_server.pipeline.record import COLUMNS, Record, to_columns

#: Same-source copies collapse within 48 h; an hour more covers clock skew.
RECENT_HOURS = 49


DEFAULT_RETENTION_MONTHS = 25


class EventStore:
    def __init__(
        self,
        client: Callable[[], Client],
        retention: Callable[[str], int] = lambda pixel_id: DEFAULT_RETENTION_MONTHS,
    ) -> None:
        self._client = client
        self._retention = retention  # a pixel's raw_retention_months (the TTL reads it per row)

    def insert(self, batch: list[Record], token: str) -> None:
        """One columnar insert; ``token`` (the log batch's id) makes a replay a no-op."""
        months = {p: self._retention(p) for p in {r.pixel_id for r in batch}}
        self._client().insert(
            "events",
            [*to_columns(batch), [months[r.pixel_id] for r in batch]],
            column_names=[*COLUMNS, "retention_months"],
            column_oriented=True,
            settings={"insert_deduplication_token": token},
        )

    def apply_retention(self, pixel_id: str, months: int) -> None:
        """A changed setting applies to the rows already stored (a mutation, waited for)."""
        self._client().command(
            "ALTER TABLE events UPDATE retention_months = {m:UInt16} WHERE pixel_id = {p:String}"
            " AND retention_months != {m:UInt16}",
            parameters={"m": months, "p": pixel_id},
            settings={"mutations_sync": 1},
        )

    def recent_copies(self) -> Iterator[tuple[str, str, str, str, float]]:
        """(pixel, event, event_id, source, unix time) of the last hours' copies, oldest first;
        server-assigned ids are left out (they never meet a twin)."""
        result = self._client().query(
            "SELECT pixel_id, event, event_id, toString(source), toUnixTimestamp64Milli(event_time)"
            f" FROM events WHERE event_time > now64(3) - INTERVAL {RECENT_HOURS} HOUR"
            " AND NOT event_id_assigned ORDER BY event_time"
        )
        for pixel, event, event_id, source, millis in result.result_rows:
            yield pixel, event, event_id, source, millis / 1000
