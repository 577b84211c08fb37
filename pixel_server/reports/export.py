"""CSV export of a report table: a header row, then the rows; amounts as plain
decimals with a dot, empty cells for missing values, so any spreadsheet reads it.

Text cells come from whoever sent events (product ids and names, search
terms), so a text cell that a spreadsheet would run as a formula (one starting
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading
``'``, OWASP's rule against CSV injection. Numbers we format ourselves (a
refund's ``-12.50``) are left as numbers."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from pixel_server.reports.base import Table

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def to_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()
