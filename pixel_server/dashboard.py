"""The merchant's reports over HTTP: report API, CSV, dashboard.

Routes (wired in :func:`pixel_server.app.create_app`):

* ``GET /api/v1/reports/{pixel_id}/{report}`` JSON, ``.../{report}.csv`` one
  table as CSV (``?table=``, default the report's first);
* ``GET /dashboard/{pixel_id}``: the server-rendered dashboard (Jinja2
  templates in ``dashboards/``, pygal SVG charts rendered here, no script),
  with the pixel's setup checklist;

Login, sessions, settings, team and the live view are the console's
(:mod:`pixel_server.console`). Access goes through its gate
(:class:`pixel_server.console.access.Gate`): a bearer token or a session;
no or unknown token 401; a pixel the token does not cover 403. Tokens never
reach a log: the access log omits query strings, and nothing here logs one.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, Final
from urllib.parse import urlencode

import anyio
import orjson
from clickhouse_connect.driver.client import Client
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from pixel_server import reports
from pixel_server.console.access import Access, Denied, Gate
from pixel_server.console.checklist import Step
from pixel_server.console.pages import DASHBOARDS_DIR, STATIC_PREFIX, Pages
from pixel_server.errors import ApiError
from pixel_server.metrics import Metrics
from pixel_server.pipeline.steps import CHANNELS
from pixel_server.pixel import Pixel
from pixel_server.reports import charts
from pixel_server.reports.base import MODELS, WINDOWS, ParamError, ReportParams
from pixel_server.reports.export import to_csv

# Reports of one page run at once on this many ClickHouse clients (the
# embedded engine runs one query per client; two keep two cores busy).
REPORT_READERS: Final = 2
_COUNTERS: Final = ("pixel_duplicates_collapsed_total", "pixel_events_missing_event_id_total")
_SOURCES: Final = ("browser", "server", "webhook")


@dataclass(frozen=True)
class Reports:
    """What running a page's reports needs: ClickHouse readers and the metrics."""

    readers: Callable[[int], list[Client]]
    metrics: Metrics


# ------------------------------------------------------------------- running


def _counters(metrics: Metrics) -> dict[str, dict[str, float]]:
    # From the two counters themselves: collecting the whole registry would run
    # every scrape-time callback (log backlog, forwarder state) for two numbers.
    out: dict[str, dict[str, float]] = {name: dict.fromkeys(_SOURCES, 0.0) for name in _COUNTERS}
    for counter in (metrics.duplicates_collapsed, metrics.missing_event_id):
        for family in counter.collect():
            for sample in family.samples:
                source = sample.labels.get("source", "")
                if sample.name in out and source in out[sample.name]:
                    out[sample.name][source] = sample.value
    return out


def _params(access: Access, request: Request) -> ReportParams:
    query = {k: v for k, v in request.query_params.items()}
    return reports.parse_params(access.pixel.id, query, access.pixel.timezone)


# The page's charts, each drawn from its report's data as soon as that report
# is done: drawing (Python) overlaps the other reports' queries.
_CHARTS: Final[dict[str, Callable[[dict[str, Any], ReportParams], str]]] = {
    "overview": lambda data, _: charts.overview_chart(data),
    "purchases": lambda data, params: charts.revenue_chart(data, params.days()),
    "funnel": lambda data, _: charts.funnel_chart(data),
    "attribution": lambda data, _: charts.channel_chart(data),
}
# The page's reports, slowest first, so two clients finish at about the same time.
_PAGE_ORDER: Final = ("funnel", "attribution", "overview", "products", "operations", "purchases")
assert set(_PAGE_ORDER) == set(reports.REPORTS)


async def _run(
    deps: Reports, names: tuple[str, ...], params: ReportParams, *, draw: bool = False
) -> tuple[dict[str, reports.Report], dict[str, str]]:
    """Run reports in a worker thread (and draw their charts if ``draw``), at
    once on several clients."""
    drawn: dict[str, str] = {}

    def one(client: Client, name: str, counters: Any) -> reports.Report:
        report = reports.run(client, name, params, counters)
        if draw and name in _CHARTS:
            drawn[name] = _CHARTS[name](report.data, params)
        return report

    def work() -> dict[str, reports.Report]:
        clients = deps.readers(min(REPORT_READERS, len(names)))
        counters = _counters(deps.metrics)
        if len(clients) == 1:
            return {n: one(clients[0], n, counters) for n in names}
        idle: queue.SimpleQueue[Client] = queue.SimpleQueue()
        for client in clients:
            idle.put(client)

        def on_idle_client(name: str) -> reports.Report:
            client = idle.get()
            try:
                return one(client, name, counters)
            finally:
                idle.put(client)

        with ThreadPoolExecutor(len(clients), thread_name_prefix="report") as pool:
            return dict(zip(names, pool.map(on_idle_client, names), strict=True))

    try:
        return await anyio.to_thread.run_sync(work), drawn
    except Exception as exc:  # ClickHouse down or refusing: the caller's input was fine
        raise ApiError(503, "reports_unavailable", "reports are unavailable; retry later") from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_json_default)


# ----------------------------------------------------------------- API routes


async def report_api(gate: Gate, deps: Reports, request: Request) -> Response:
    pixel_id = request.path_params["pixel_id"]
    name = request.path_params["report"]
    csv = name.endswith(".csv")
    name = name.removesuffix(".csv")
    if name not in reports.REPORTS:
        raise ApiError(
            404, "unknown_report", f"reports are: {', '.join(reports.REPORTS)}", "report"
        )
    try:
        access = gate.authorize(request, pixel_id)
        params = _params(access, request)
    except Denied as exc:
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        raise ApiError(exc.status, exc.code, exc.message, headers=headers) from None
    except ParamError as exc:
        raise ApiError(exc.status, "invalid_parameter", exc.message, exc.param) from None
    report = (await _run(deps, (name,), params))[0][name]
    headers = {"cache-control": "private, no-store"}
    if not csv:
        return JSONBody(report.as_json(), headers=headers)
    table_name = request.query_params.get("table") or next(iter(report.tables))
    if table_name not in report.tables:
        raise ApiError(
            400, "invalid_parameter", f"table must be one of {', '.join(report.tables)}", "table"
        )
    filename = f"{name}-{table_name}-{params.first}-{params.last}.csv"
    headers["content-disposition"] = f'attachment; filename="{filename}"'
    return Response(
        to_csv(report.tables[table_name]), media_type="text/csv; charset=utf-8", headers=headers
    )


# ------------------------------------------------------------------ HTML side


def _denied_page(pages: Pages, exc: Denied, pixel_id: str) -> HTMLResponse:
    return pages.message(
        exc.status,
        {401: "Log in", 403: "Not allowed"}.get(exc.status, "Not found"),
        exc.message,
        pixel_id=pixel_id,
        login=exc.status == 401,
    )


Checklist = Callable[[Pixel], list[Step]]
# The ranges merchants pick most: (label, days back from today; 0: month to date).
PRESETS: Final = (("Today", 1), ("7 days", 7), ("28 days", 28), ("90 days", 90),
                  ("Month to date", 0))  # fmt: skip


def presets(params: ReportParams, pixel_id: str) -> list[dict[str, Any]]:
    """Links for the preset ranges, ending today in the report's zone."""
    today = datetime.now(params.zone).date()
    keep = {"tz": params.tz, "window": params.window, "model": params.model}
    out = []
    for label, days in PRESETS:
        first = today.replace(day=1) if days == 0 else today - timedelta(days=days - 1)
        out.append({
            "label": label,
            "href": f"/dashboard/{pixel_id}?" + urlencode(
                {"from": first.isoformat(), "to": today.isoformat(), **keep}),
            "current": (params.first, params.last) == (first, today),
        })  # fmt: skip
    return out


async def dashboard(
    gate: Gate, pages: Pages, checklist: Checklist, deps: Reports, request: Request
) -> Response:
    pixel_id = request.path_params["pixel_id"]
    try:
        access = gate.authorize(request, pixel_id)
    except Denied as exc:
        return _denied_page(pages, exc, pixel_id)
    try:
        params = _params(access, request)
        error = ""
    except ParamError as exc:
        params = reports.parse_params(access.pixel.id, {}, access.pixel.timezone)
        error = f"{exc.param}: {exc.message}"
    started = time.perf_counter()
    try:
        done, drawn = await _run(deps, _PAGE_ORDER, params, draw=True)
    except ApiError as exc:
        return pages.message(exc.status, "Reports unavailable", exc.message, pixel_id=pixel_id)
    data = {n: r.data for n, r in done.items()}
    try:
        setup = await anyio.to_thread.run_sync(checklist, access.pixel)
    except Exception:  # the checklist is a help, never a reason for the page to fail
        setup = []
    query = params.as_json()
    query.pop("pixel_id")
    return pages.render(
        "dashboard.html",
        pixel=access.pixel,
        role=access.role,
        csrf=access.viewer.csrf,
        agency=len(access.viewer.token.pixels) > 1,
        setup=setup,
        presets=presets(params, pixel_id),
        params=params,
        error=error,
        data=data,
        channels=CHANNELS,
        windows=WINDOWS,
        models=MODELS,
        charts={
            "overview": Markup(drawn["overview"]),
            "revenue": Markup(drawn["purchases"]),
            "funnel": Markup(drawn["funnel"]),
            "channels": Markup(drawn["attribution"]),
        },
        csv=lambda report, table: (
            f"/api/v1/reports/{pixel_id}/{report}.csv?" + urlencode({**query, "table": table})
        ),
        query_ms=round((time.perf_counter() - started) * 1000),
    )


def routes(gate: Gate, pages: Pages, checklist: Checklist, deps: Reports) -> list[BaseRoute]:
    out: list[BaseRoute] = [
        Route(
            "/api/v1/reports/{pixel_id}/{report}", partial(report_api, gate, deps), methods=["GET"]
        ),
        Route(
            "/dashboard/{pixel_id}",
            partial(dashboard, gate, pages, checklist, deps),
            methods=["GET"],
        ),
        Mount(STATIC_PREFIX, app=StaticFiles(directory=DASHBOARDS_DIR / "static"), name="static"),
    ]
    return out
