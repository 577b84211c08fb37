"""The events table as the loader and the dedup index see it: batched,
idempotent inserts of log records, and the recent copies that seed the
same-source dedup index at start."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from clickhouse_connect.driver.client import Client

from pixel_server.pipeline.record import COLUMNS, Record, to_columns

#: Same-source copies collapse within 48 h; an hour more covers clock skew.
RECENT_HOURS = 49


class EventStore:
    def __init__(self, client: Callable[[], Client]) -> None:
        self._client = client

    def insert(self, batch: list[Record], token: str) -> None:
        """One columnar insert; ``token`` (the log batch's id) makes a replay a no-op."""
        self._client().insert(
            "events",
            to_columns(batch),
            column_names=list(COLUMNS),
            column_oriented=True,
            settings={"insert_deduplication_token": token},
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
