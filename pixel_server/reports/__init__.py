"""Merchant reports over the merged one-row-per-event view (DESIGN §6).

One module per report (``overview``, ``funnel``, ``purchases``, ``products``,
``attribution``, ``operations``), each ``run(client, params) -> Report``;
:mod:`.base` holds parameters and shared SQL, :mod:`.export` turns a table
into CSV. The HTTP side lives in :mod:`pixel_server.dashboard`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from clickhouse_connect.driver.client import Client

from pixel_server.reports import attribution, funnel, operations, overview, products, purchases
from pixel_server.reports.base import ParamError, Report, ReportParams, Table, parse_params
from pixel_server.reports.operations import Counters

__all__ = ["REPORTS", "ParamError", "Report", "ReportParams", "Table", "parse_params", "run"]

REPORTS: Final[dict[str, Callable[[Client, ReportParams], Report]]] = {
    "overview": overview.run,
    "funnel": funnel.run,
    "purchases": purchases.run,
    "products": products.run,
    "attribution": attribution.run,
    "operations": operations.run,
}


def run(
    client: Client, name: str, params: ReportParams, counters: Counters | None = None
) -> Report:
    """Run one report by name (a key of :data:`REPORTS`)."""
    if name == "operations":
        return operations.run(client, params, counters)
    return REPORTS[name](client, params)
