"""What ``connect`` created in a store, kept in ClickHouse (``store_connections``).

One row per purpose (pixel, kind, key); recording or forgetting a resource is
one insert of a new version (ReplacingMergeTree + FINAL). Rows are written as
soon as the platform answers a create, so a connect cut short still knows what
it made, and ``disconnect`` can remove it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

_COLUMNS = (
    "pixel_id",
    "kind",
    "key",
    "platform",
    "remote_id",
    "detail",
    "created_at",
    "removed",
    "version",
)


@dataclass(frozen=True)
class Created:
    """A resource in the store that we made: ``remote_id`` is the platform's id."""

    kind: str  # script | web_pixel | webhook
    key: str  # what it is for: "storefront", a webhook topic
    remote_id: str
    detail: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "id": self.remote_id, **self.detail}


class ConnectionStore:
    def __init__(self, client: Client) -> None:
        self._client = client
        self._last_version = 0

    def _version(self) -> int:
        self._last_version = max(time.time_ns(), self._last_version + 1)
        return self._last_version

    def list(self, pixel_id: str) -> list[Created]:
        result = self._client.query(
            "SELECT kind, key, remote_id, detail, created_at FROM store_connections FINAL"
            " WHERE pixel_id = {p:String} AND NOT removed ORDER BY created_at, kind, key",
            parameters={"p": pixel_id},
        )
        return [
            Created(kind, key, remote_id, orjson.loads(detail or "{}"), created.timestamp())
            for kind, key, remote_id, detail, created in result.result_rows
        ]

    def record(self, pixel_id: str, platform: str, created: Created) -> None:
        self._write(pixel_id, platform, created, removed=False)

    def forget(self, pixel_id: str, platform: str, created: Created) -> None:
        self._write(pixel_id, platform, created, removed=True)

    def _write(self, pixel_id: str, platform: str, c: Created, *, removed: bool) -> None:
        row = [
            pixel_id,
            c.kind,
            c.key,
            platform,
            c.remote_id,
            orjson.dumps(c.detail).decode(),
            int(c.created_at * 1000),
            int(removed),
            self._version(),
        ]
        self._client.insert("store_connections", [row], column_names=list(_COLUMNS))


# ------------------------------------------------------- installation health


def last_events(client: Client, pixel_id: str) -> list[dict[str, Any]]:
    """Per event name and source: how many copies arrived, and the last one's time."""
    result = client.query(
        "SELECT event, toString(source), count(), toUnixTimestamp64Milli(max(received_at))"
        " FROM events WHERE pixel_id = {p:String} GROUP BY event, source ORDER BY event, source",
        parameters={"p": pixel_id},
    )
    return [
        {"event": event, "source": source, "copies": int(n), "last_received_at": _iso(ms)}
        for event, source, n, ms in result.result_rows
    ]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
