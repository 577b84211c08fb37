"""The events table as the loader and the dedup index see it: batched,
idempotent inserts of log records, and the recent copies that seed the
same-source dedup index at start.

Inserts take the log's MessagePack records as they are. ClickHouse parses
them (``FORMAT MsgPack``) and converts them to the table's columns in SQL, in
its own threads: the loader's Python work per row is a byte slice, where
decoding every record and building columns in Python held the GIL the ingest
path needs (``docs/benchmarks.md``, "Where the time goes").
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final

from clickhouse_connect.driver.client import Client

from pixel_server.pipeline.record import Record, decode_key, msgpack_rows
from pixel_server.storage.merged import MergedEvents, retention_expr

#: Same-source copies collapse within 48 h; an hour more covers clock skew.
RECENT_HOURS = 49


_CONTENT: Final = "Tuple(String, String, String, String, String, Int64, Nullable(Float64))"
# The record's fields in log order, as ClickHouse reads them from MessagePack.
_INPUT_TYPES: Final[dict[str, str]] = {
    "pixel_id": "String", "event": "String", "received_event": "String", "event_id": "String",
    "source": "String", "event_time": "Float64", "received_at": "Float64",
    "event_id_assigned": "Bool", "anonymous_id": "String", "ip": "String",
    "user_agent": "String", "ttclid": "String", "ttp": "String", "locale": "String",
    "email_sha256": "Array(String)", "phone_sha256": "Array(String)",
    "external_id_sha256": "Array(String)", "page_url": "String", "page_referrer": "String",
    "referrer_host": "String", "channel": "String", "utm_source": "String",
    "utm_medium": "String", "utm_campaign": "String", "utm_content": "String",
    "utm_term": "String", "value": "Nullable(Float64)", "currency": "String",
    "order_id": "String", "search_query": "String", "content_type": "String",
    "description": "String", "contents": f"Array({_CONTENT})", "properties": "String",
    "consent": "String", "limited_data_use": "Bool", "test_event_code": "String",
    "content_refunds": "Array(Tuple(Float64, Float64))",
}  # fmt: skip
assert tuple(_INPUT_TYPES) == Record.__struct_fields__, "the log's field order changed"
_STRUCTURE: Final = ", ".join(f"{name} {kind}" for name, kind in _INPUT_TYPES.items())


def _money(expr: str) -> str:
    # Through the float's shortest text, as the store sent it: 19.99 stays 19.9900
    # (a float-to-decimal cast truncates it to 19.9899). Overflow raises: the row
    # is refused and parked, never stored as NULL.
    # (A Nullable argument would turn a conversion error into NULL: hence assumeNotNull.)
    return f"if(isNull({expr}), NULL, toDecimal64(toString(assumeNotNull({expr})), 4))"


def _millis(expr: str) -> str:
    return f"fromUnixTimestamp64Milli(toInt64(round({expr} * 1000)), 'UTC')"


def _refund_lines(field: str) -> str:
    # Records without refund lines hold none: zero per content row.
    return (
        "if(empty(content_refunds), arrayMap(c -> toDecimal64(0, 4), contents),"
        f" arrayMap(r -> {_money(field)}, content_refunds))"
    )


_CONVERTED: Final[dict[str, str]] = {
    "event_time": _millis("event_time"),
    "received_at": _millis("received_at"),
    "value": _money("value"),
    "contents.content_id": "arrayMap(c -> c.1, contents)",
    "contents.item_group_id": "arrayMap(c -> c.2, contents)",
    "contents.name": "arrayMap(c -> c.3, contents)",
    "contents.category": "arrayMap(c -> c.4, contents)",
    "contents.brand": "arrayMap(c -> c.5, contents)",
    "contents.quantity": "arrayMap(c -> toUInt32(c.6), contents)",
    "contents.price": f"arrayMap(c -> {_money('c.7')}, contents)",
    "contents.refunded": _refund_lines("r.1"),
    "contents.refunded_share": _refund_lines("r.2"),
}
_TARGETS: Final = tuple(
    name for name in _INPUT_TYPES if name not in ("contents", "content_refunds")
) + tuple(name for name in _CONVERTED if name.startswith("contents."))


def _insert_sql(source: str, retention: Mapping[str, int]) -> str:
    months = retention_expr(retention)
    columns = ", ".join(f"`{name}`" for name in (*_TARGETS, "retention_months"))
    values = ", ".join(_CONVERTED.get(name, name) for name in _TARGETS)
    return f"INSERT INTO events ({columns}) SELECT {values}, {months} FROM {source}"


class EventStore:
    def __init__(
        self,
        client: Callable[[], Client],
        retention: Callable[[], Mapping[str, int]] = dict,
        *,
        embedded: bool = True,
    ) -> None:
        self._client = client
        # The pixels whose raw_retention_months is not the default (the TTL reads it per row).
        self._retention = retention
        self._embedded = embedded
        self.merged = MergedEvents(client, retention)

    def insert(self, payloads: Sequence[bytes], token: str) -> None:
        """One insert of log records, then their events merged again
        (:mod:`.merged`); ``token`` (the log batch's id) makes a replayed
        insert a no-op, and the merge of a replay writes the same state."""
        self._insert(payloads, token)
        self.merged.merge(decode_key(p) for p in payloads)

    def _insert(self, payloads: Sequence[bytes], token: str) -> None:
        data = msgpack_rows(payloads)
        retention = self._retention()
        parameters = {
            "retention_pixels": list(retention),
            "retention_months": list(retention.values()),
        }
        settings = {"insert_deduplication_token": token}
        if not self._embedded:  # a server reads the body of the request
            sql = _insert_sql(f"input('{_STRUCTURE}') FORMAT MsgPack", retention)
            self._client().command(sql, parameters=parameters, data=data, settings=settings)
            return
        # The embedded engine reads a file; chDB's own inserts go the same way.
        fd, path = tempfile.mkstemp(suffix=".msgpack")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            source = f"file('{path}', 'MsgPack', '{_STRUCTURE}')"
            self._client().command(
                _insert_sql(source, retention), parameters=parameters, settings=settings
            )
        finally:
            os.unlink(path)

    def apply_retention(self, pixel_id: str, months: int) -> None:
        """A changed setting applies to the rows already stored (a mutation, waited for)."""
        self._client().command(
            "ALTER TABLE events UPDATE retention_months = {m:UInt16} WHERE pixel_id = {p:String}"
            " AND retention_months != {m:UInt16}",
            parameters={"m": months, "p": pixel_id},
            settings={"mutations_sync": 1},
        )
        self.merged.apply_retention(pixel_id, months)

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
