"""The loader's columnar form of records equals the records, field by field."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pixel_server.pipeline import record as records
from pixel_server.pipeline.record import CONTENT_COLUMNS, SCALAR_COLUMNS, Record, to_columns

_text = st.text(max_size=8)
_content = st.tuples(
    _text, _text, _text, _text, _text, st.integers(0, 99),
    st.none() | st.floats(0, 1e6, allow_nan=False),
)  # fmt: skip


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
        pixel_id=draw(_text), event=draw(_text), received_event=draw(_text),
        event_id=draw(_text), source=draw(st.sampled_from(["browser", "server", "webhook"])),
        event_time=draw(st.floats(0, 4e9, allow_nan=False)),
        received_at=draw(st.floats(0, 4e9, allow_nan=False)),
        email_sha256=draw(st.lists(_text, max_size=2)),
        value=draw(st.none() | st.floats(-1e6, 1e6, allow_nan=False)),
        contents=contents, content_refunds=refunds,
    )  # fmt: skip


@settings(deadline=None)
@given(st.lists(a_record(), max_size=6))
def test_columns_hold_every_field_of_every_record_in_order(batch: list[Record]) -> None:
    columns = to_columns(batch)
    assert len(columns) == len(SCALAR_COLUMNS) + len(CONTENT_COLUMNS)
    for name, column in zip(SCALAR_COLUMNS, columns, strict=False):
        want = [getattr(r, name) for r in batch]
        if name in ("event_time", "received_at"):
            want = [round(v * 1000) for v in want]
        assert column == want, name
    contents = columns[len(SCALAR_COLUMNS) :]
    for index in range(len(CONTENT_COLUMNS) - 2):
        assert contents[index] == [[c[index] for c in r.contents] for r in batch]
    for index in range(2):
        assert contents[-2 + index] == [
            [row[index] for row in r.content_refunds] or [0.0] * len(r.contents) for r in batch
        ]


def test_a_record_survives_the_log_encoding() -> None:
    r = Record("px", "Purchase", "CompletePayment", "e1", "server", 1.5, 2.5, contents=[
        ("sku", "", "Tee", "", "", 2, 9.5)
    ])  # fmt: skip
    assert records.decode(records.encode(r)) == r
