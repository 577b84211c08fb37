"""Merchant reports over the merged one-row-per-event view (docs/architecture.md §6).

One module per report (``overview``, ``funnel``, ``purchases``, ``products``,
``attribution``, ``operations``), each ``run(client, params) -> Report``;
:mod:`.base` holds parameters and shared SQL, :mod:`.export` turns a table
into CSV. The HTTP side lives in :mod:`pixel_server.dashboard`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Final

from clickhouse_connect.driver.client import Client

from pixel_server.reports import (
    attribution,
    cache,
    funnel,
    operations,
    overview,
    products,
    purchases,
)
from pixel_server.reports.base import (
    ParamError,
    Report,
    ReportParams,
    Table,
    check_aligned,
    parse_params,
)
from pixel_server.reports.operations import Counters

__all__ = ["REPORTS", "ParamError", "Report", "ReportParams", "Table", "parse_params", "run"]

REPORTS: Final[dict[str, Callable[..., Report]]] = {
    "overview": overview.run,
    "funnel": funnel.run,
    "purchases": purchases.run,
    "products": products.run,
    "attribution": attribution.run,
    "operations": operations.run,
}


def needed_range(name: str, params: ReportParams) -> tuple[datetime, datetime]:
    """The instants a report reads cached days from (attribution looks back for
    the orders its refunds belong to; :func:`.cache.prepare` adds the days
    whose touches attribute them)."""
    if name == "attribution":
        return params.start - attribution.ORDER_LOOKBACK, params.end
    return params.start, params.end


def run(
    client: Client,
    name: str,
    params: ReportParams,
    counters: Counters | None = None,
    *,
    cached: bool = True,
    prepared: bool = False,
) -> Report:
    """Run one report by name (a key of :data:`REPORTS`).

    ``cached`` reads the report cache (brought up to date first, see
    :mod:`.cache`); ``False`` merges the copies at query time. Same numbers.
    ``prepared``: the caller has just brought the cache up to date for this range
    (and holds it: :func:`.cache.reading`, whose parameters ``params.cache_state``
    carries).
    """
    check_aligned(params)
    if cached and not prepared:
        with cache.reading(client, params.pixel_id, *needed_range(name, params)) as (_, state):
            return _run(client, name, replace(params, cache_state=state), counters, cached)
    if cached and not params.cache_state:
        params = replace(params, cache_state=cache.current(client, params.pixel_id))
    return _run(client, name, params, counters, cached)


def _run(
    client: Client, name: str, params: ReportParams, counters: Counters | None, cached: bool
) -> Report:
    if name == "operations":
        return operations.run(client, params, counters, cached=cached)
    return REPORTS[name](client, params, cached=cached)
