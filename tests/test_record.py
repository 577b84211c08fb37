"""Log records reach ClickHouse field by field as they are: the loader hands
the engine their MessagePack encoding, and the engine's conversion in SQL
(times to milliseconds, money to Decimal(18, 4), contents to the nested
columns) keeps every value a Python conversion would."""

from __future__ import annotations

import time
import uuid
from decimal import ROUND_DOWN, Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixel_server.pipeline import record as records
from pixel_server.pipeline.record import Record
from pixel_server.storage.database import Database
from pixel_server.storage.events import EventStore
from tests.catalog_helpers import database  # noqa: F401  (fixture)

_text = st.text(max_size=8)
_money = st.none() | st.floats(-1e9, 1e9, allow_nan=False)
_content = st.tuples(
    _text, _text, _text, _text, _text, st.integers(0, 99),
    st.none() | st.floats(0, 1e6, allow_nan=False),
)  # fmt: skip
# Within the 25-month TTL whatever the date: an older row is gone at insert.
_NOW = time.time()
_times = st.floats(_NOW - 365 * 86_400, _NOW + 86_400, allow_nan=False)
_SCALARS = [
    f for f in Record.__struct_fields__
    if f not in ("contents", "content_refunds", "value", "event_time", "received_at")
]  # fmt: skip


@st.composite
def a_record(draw: st.DrawFn) -> Record:
    contents = draw(st.lists(_content, max_size=3))
    refunds = draw(
        st.just([])
        | st.lists(
            st.tuples(st.floats(0, 1e6, allow_nan=False), st.floats(0, 1, allow_nan=False)),
            min_size=len(contents),
            max_size=len(contents),
        )
    )
    return Record(
        pixel_id="", event=draw(_text), received_event=draw(_text),
        event_id=draw(_text), source=draw(st.sampled_from(["browser", "server", "webhook"])),
        event_time=draw(_times), received_at=draw(_times),
        event_id_assigned=draw(st.booleans()), anonymous_id=draw(_text),
        email_sha256=draw(st.lists(_text, max_size=2)), channel=draw(_text),
        value=draw(_money), currency=draw(_text), properties=draw(_text),
        consent=draw(st.sampled_from(["unknown", "granted", "denied"])),
        limited_data_use=draw(st.booleans()), test_event_code=draw(_text),
        contents=contents, content_refunds=refunds,
    )  # fmt: skip


def decimal4(x: float | None) -> Decimal | None:
    """What the store meant: the float's shortest text, cut to 4 places."""
    return None if x is None else Decimal(repr(x)).quantize(Decimal("0.0001"), ROUND_DOWN)


def stored(db: Database, pixel_id: str) -> list[dict[str, Any]]:
    result = db.client().query(
        "SELECT *, toUnixTimestamp64Milli(event_time) AS t_ms,"
        " toUnixTimestamp64Milli(received_at) AS r_ms"
        " FROM events WHERE pixel_id = {p:String} ORDER BY event_id, t_ms",
        parameters={"p": pixel_id},
    )
    return list(result.named_results())


@pytest.mark.usefixtures("database")
@settings(
    deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(a_record(), min_size=1, max_size=5))
def test_every_field_of_every_record_is_stored_as_it_was(
    database: Database,  # noqa: F811
    batch: list[Record],
) -> None:
    pixel_id = "px_" + uuid.uuid4().hex[:10]
    batch = [msgspec.structs.replace(r, pixel_id=pixel_id, event_id=f"{n}-{r.event_id}")
             for n, r in enumerate(batch)]  # fmt: skip
    EventStore(database.client).insert([records.encode(r) for r in batch], pixel_id)
    rows = stored(database, pixel_id)
    want = sorted(batch, key=lambda r: (r.event_id, round(r.event_time * 1000)))
    assert len(rows) == len(want)
    for row, r in zip(rows, want, strict=True):
        for name in _SCALARS:
            assert row[name] == getattr(r, name), name
        assert row["t_ms"] == round(r.event_time * 1000)
        assert row["r_ms"] == round(r.received_at * 1000)
        assert row["value"] == decimal4(r.value)
        assert row["contents.content_id"] == [c[0] for c in r.contents]
        assert row["contents.item_group_id"] == [c[1] for c in r.contents]
        assert row["contents.name"] == [c[2] for c in r.contents]
        assert row["contents.quantity"] == [c[5] for c in r.contents]
        assert row["contents.price"] == [decimal4(c[6]) for c in r.contents]
        refunds = r.content_refunds or [(0.0, 0.0)] * len(r.contents)
        assert row["contents.refunded"] == [decimal4(x) for x, _ in refunds]
        assert row["contents.refunded_share"] == [decimal4(s) for _, s in refunds]
        assert row["retention_months"] == 25


def test_a_record_written_before_fields_were_added_gets_their_defaults(
    database: Database,  # noqa: F811
) -> None:
    r = Record("px_old", "Purchase", "Purchase", "e1", "server", _NOW, _NOW, contents=[
        ("sku", "", "Tee", "", "", 2, 9.5)
    ])  # fmt: skip
    # The layout before `content_refunds`: one field fewer.
    old = msgspec.msgpack.encode(msgspec.structs.astuple(r)[:-1])
    EventStore(database.client).insert([old], "old-layout")
    [row] = stored(database, "px_old")
    assert row["contents.content_id"] == ["sku"] and row["contents.refunded"] == [Decimal(0)]


def test_each_row_carries_its_pixels_retention(database: Database) -> None:  # noqa: F811
    rows = [Record(p, "PageView", "PageView", p, "browser", _NOW, _NOW) for p in ("px_a", "px_b")]
    EventStore(database.client, lambda: {"px_b": 36}).insert(
        [records.encode(r) for r in rows], "retention"
    )
    assert [stored(database, p)[0]["retention_months"] for p in ("px_a", "px_b")] == [25, 36]


def test_a_replayed_batch_is_stored_once_and_an_overflowing_value_is_refused(
    database: Database,  # noqa: F811
) -> None:
    store = EventStore(database.client)
    payload = records.encode(Record("px_r", "Purchase", "Purchase", "e", "server", _NOW, _NOW))
    store.insert([payload], "same-token")
    store.insert([payload], "same-token")
    assert len(stored(database, "px_r")) == 1
    huge = Record("px_r", "Purchase", "Purchase", "big", "server", _NOW, _NOW, value=1e15)
    with pytest.raises(Exception, match=r"Decimal value is too big"):
        store.insert([records.encode(huge)], "huge")
    assert len(stored(database, "px_r")) == 1


def test_a_record_survives_the_log_encoding() -> None:
    r = Record("px", "Purchase", "CompletePayment", "e1", "server", _NOW, _NOW, contents=[
        ("sku", "", "Tee", "", "", 2, 9.5)
    ])  # fmt: skip
    assert records.decode(records.encode(r)) == r
