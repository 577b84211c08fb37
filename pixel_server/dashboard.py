"""The merchant's side over HTTP: report API, CSV, dashboard, settings, login, demo.

Routes (wired in :func:`pixel_server.app.create_app`):

* ``GET /api/v1/reports/{pixel_id}/{report}`` JSON, ``.../{report}.csv`` one
  table as CSV (``?table=``, default the report's first);
* ``GET /dashboard/{pixel_id}``: the server-rendered dashboard (Jinja2
  templates in ``dashboards/``, pygal SVG charts rendered here, no script);
* ``GET /dashboard/{pixel_id}/settings``: owner only;
* ``GET /login?token=...``: sets the report cookie and redirects to the dashboard;
  ``GET /logout`` clears it;
* ``GET /demo`` (``PIXEL_DEMO=true`` only): see :mod:`pixel_server.demo`.

Access: a report token (``Authorization: Bearer <token>`` or the cookie) is
scoped to one pixel and a role. No or unknown token: 401; another pixel's
token: 403; a reader token on settings: 403. Tokens never reach a log: the
access log omits query strings, and nothing here logs one.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

import anyio
import orjson
from clickhouse_connect.driver.client import Client
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from pixel_server import reports
from pixel_server.errors import ApiError
from pixel_server.install import InstallError, paste_instructions, snippet_tag
from pixel_server.reports import charts
from pixel_server.reports.base import CHANNELS, MODELS, WINDOWS, ParamError, ReportParams
from pixel_server.reports.export import to_csv
from pixel_server.snippet_route import snippet_settings
from pixel_server.storage.pixels import Pixel, PixelStore

if TYPE_CHECKING:
    from pixel_server.runtime import Runtime

DASHBOARDS_DIR: Final = Path(__file__).resolve().parent.parent / "dashboards"
COOKIE: Final = "px_report"
# Reports of one page run at once on this many ClickHouse clients (the
# embedded engine runs one query per client; two keep two cores busy).
REPORT_READERS: Final = 2
COOKIE_MAX_AGE: Final = 30 * 24 * 3600
STATIC_PREFIX: Final = "/static/dashboard"
_COUNTERS: Final = ("pixel_duplicates_collapsed_total", "pixel_events_missing_event_id_total")
_SOURCES: Final = ("browser", "server", "webhook")

_env = Environment(
    loader=FileSystemLoader(DASHBOARDS_DIR),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _amount(value: Any) -> str:
    """1234.5 -> '1,234.50' (amounts are shown with two decimals)."""
    if value is None:
        return "–"
    return f"{Decimal(value):,.2f}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


_env.filters["amount"] = _amount
_env.filters["percent"] = _percent
_env.filters["number"] = lambda v: f"{int(v):,}" if v is not None else "–"


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


# -------------------------------------------------------------------- access


@dataclass(frozen=True)
class Access:
    pixel: Pixel
    role: str  # owner | reader


class Denied(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _presented_token(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE, "")


def authorize(request: Request, pixel_id: str, *, owner: bool = False) -> Access:
    """The caller's access to ``pixel_id``, or :class:`Denied` (401/403/404)."""
    runtime = _runtime(request)
    presented = _presented_token(request)
    if not presented:
        raise Denied(401, "unauthorized", "send a report token: 'Authorization: Bearer <token>'")
    token = runtime.registry.token(presented)
    if token is None:
        raise Denied(401, "invalid_token", "the report token is not valid (revoked or mistyped)")
    if token.pixel_id != pixel_id:
        raise Denied(403, "wrong_pixel", "this token belongs to another pixel")
    pixel = runtime.registry.get(pixel_id)
    if pixel is None:
        raise Denied(404, "unknown_pixel", "no such pixel")
    if owner and token.role != "owner":
        raise Denied(403, "owner_only", "only the pixel's owner may see its settings")
    return Access(pixel, token.role)


# ------------------------------------------------------------------- running


def _counters(runtime: Runtime) -> dict[str, dict[str, float]]:
    # From the two counters themselves: collecting the whole registry would run
    # every scrape-time callback (log backlog, forwarder state) for two numbers.
    metrics = runtime.metrics
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
    runtime: Runtime, names: tuple[str, ...], params: ReportParams, *, draw: bool = False
) -> tuple[dict[str, reports.Report], dict[str, str]]:
    """Run reports in a worker thread (and draw their charts if ``draw``); the
    cache is checked once for all of them."""
    drawn: dict[str, str] = {}

    def one(client: Client, name: str, held: ReportParams, counters: Any) -> reports.Report:
        report = reports.run(client, name, held, counters, prepared=True)
        if draw and name in _CHARTS:
            drawn[name] = _CHARTS[name](report.data, held)
        return report

    def work() -> dict[str, reports.Report]:
        clients = runtime.database.readers(min(REPORT_READERS, len(names)))
        start = min(reports.needed_range(n, params)[0] for n in names)
        with reports.cache.reading(clients[0], params.pixel_id, start, params.end) as (
            rebuilt,
            state,
        ):
            runtime.metrics.report_days_rebuilt.labels("request").inc(len(rebuilt))
            counters = _counters(runtime)
            held = replace(params, cache_state=state)
            if len(clients) == 1:
                return {n: one(clients[0], n, held, counters) for n in names}
            # The reports read one snapshot (held above), so they may run at once.
            idle: queue.SimpleQueue[Client] = queue.SimpleQueue()
            for client in clients:
                idle.put(client)

            def on_idle_client(name: str) -> reports.Report:
                client = idle.get()
                try:
                    return one(client, name, held, counters)
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


async def report_api(request: Request) -> Response:
    pixel_id = request.path_params["pixel_id"]
    name = request.path_params["report"]
    csv = name.endswith(".csv")
    name = name.removesuffix(".csv")
    if name not in reports.REPORTS:
        raise ApiError(
            404, "unknown_report", f"reports are: {', '.join(reports.REPORTS)}", "report"
        )
    try:
        access = authorize(request, pixel_id)
        params = _params(access, request)
    except Denied as exc:
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        raise ApiError(exc.status, exc.code, exc.message, headers=headers) from None
    except ParamError as exc:
        raise ApiError(exc.status, "invalid_parameter", exc.message, exc.param) from None
    report = (await _run(_runtime(request), (name,), params))[0][name]
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


def _page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    body = _env.get_template(name).render(static=STATIC_PREFIX, **context)
    return HTMLResponse(body, status_code=status, headers={"cache-control": "private, no-store"})


def _denied_page(exc: Denied, pixel_id: str) -> HTMLResponse:
    return _page(
        "message.html",
        exc.status,
        title={401: "Log in", 403: "Not allowed"}.get(exc.status, "Not found"),
        message=exc.message,
        pixel_id=pixel_id,
        login=exc.status == 401,
    )


async def login(request: Request) -> Response:
    runtime = _runtime(request)
    token = runtime.registry.token(request.query_params.get("token", "").strip())
    if token is None:
        return _page(
            "message.html",
            401,
            title="Log in",
            login=True,
            pixel_id="",
            message="This login link is not valid (revoked or mistyped).",
        )
    response = RedirectResponse(f"/dashboard/{token.pixel_id}", status_code=303)
    response.set_cookie(
        COOKIE,
        request.query_params["token"].strip(),
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="lax",
        # Behind a TLS-terminating proxy the request looks like http; the public URL knows.
        secure=request.url.scheme == "https" or runtime.settings.base_url.startswith("https:"),
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    response = _page(
        "message.html", title="Logged out", message="You are logged out.", pixel_id="", login=False
    )
    response.delete_cookie(COOKIE, path="/")
    return response


async def dashboard(request: Request) -> Response:
    pixel_id = request.path_params["pixel_id"]
    try:
        access = authorize(request, pixel_id)
    except Denied as exc:
        return _denied_page(exc, pixel_id)
    try:
        params = _params(access, request)
        error = ""
    except ParamError as exc:
        params = reports.parse_params(access.pixel.id, {}, access.pixel.timezone)
        error = f"{exc.param}: {exc.message}"
    runtime = _runtime(request)
    started = time.perf_counter()
    try:
        done, drawn = await _run(runtime, _PAGE_ORDER, params, draw=True)
    except ApiError as exc:
        return _page(
            "message.html",
            exc.status,
            title="Reports unavailable",
            message=exc.message,
            pixel_id=pixel_id,
            login=False,
        )
    data = {n: r.data for n, r in done.items()}
    query = params.as_json()
    query.pop("pixel_id")
    return _page(
        "dashboard.html",
        pixel=access.pixel,
        role=access.role,
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


async def settings_page(request: Request) -> Response:
    pixel_id = request.path_params["pixel_id"]
    try:
        access = authorize(request, pixel_id, owner=True)
    except Denied as exc:
        return _denied_page(exc, pixel_id)
    runtime = _runtime(request)
    base = runtime.settings.base_url
    script_url = f"{base}/p/{pixel_id}.js"
    pixel = access.pixel
    try:
        pasted = paste_instructions(pixel.platform, script_url, snippet_settings(pixel, base))
    except (InstallError, ValueError):  # platforms with a theme file get the tag itself
        pasted = ""
    store = PixelStore(runtime.database.client())
    try:
        tokens = [t.public() for t in await anyio.to_thread.run_sync(store.tokens, pixel_id)]
    except Exception:  # the list is a convenience; the page works without it
        tokens = []
    return _page(
        "settings.html",
        pixel=pixel,
        role=access.role,
        settings=pixel.public(),
        script_tag=f'<script async src="{script_url}"></script>',
        full_tag=snippet_tag(script_url),
        pasted=pasted,
        tokens=tokens,
    )


def routes() -> list[BaseRoute]:
    out: list[BaseRoute] = [
        Route("/api/v1/reports/{pixel_id}/{report}", report_api, methods=["GET"]),
        Route("/dashboard/{pixel_id}", dashboard, methods=["GET"]),
        Route("/dashboard/{pixel_id}/settings", settings_page, methods=["GET"]),
        # The install page: the tag and the platform's steps (owner only).
        Route("/install/{pixel_id}", settings_page, methods=["GET"]),
        Route("/login", login, methods=["GET"]),
        Route("/logout", logout, methods=["GET"]),
        Mount(STATIC_PREFIX, app=StaticFiles(directory=DASHBOARDS_DIR / "static"), name="static"),
    ]
    return out
