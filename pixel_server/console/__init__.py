"""The merchant console: log in, settings, team, TikTok check, live events.

Each module is one page or one concept and exposes a route factory over the
narrow dependencies it needs; :class:`Console` builds the shared parts (the
session store, the gate, the page renderer) and hands them out. The reports
dashboard itself is :mod:`pixel_server.dashboard`, which uses the same gate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client
from prometheus_client.core import GaugeMetricFamily
from starlette.routing import BaseRoute

from pixel_server.console import (
    checklist,
    home,
    install_page,
    live,
    login,
    settings_page,
    team,
    tiktok_check,
)
from pixel_server.console.access import Gate, Registry
from pixel_server.console.pages import Pages
from pixel_server.console.sessions import FILE_NAME, SessionStore
from pixel_server.pixel import Pixel
from pixel_server.sinks import backfill
from pixel_server.storage import audit

Run = Callable[[str, dict[str, Any]], Any]


class Console:
    def __init__(
        self,
        registry: Registry,
        run: Run,
        client: Callable[[], Client],
        data_dir: Path,
        base_url: str,
        forwarding: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        """``forwarding``: the TikTok forwarder's status (problems per pixel)."""
        self.run = run
        self.data_dir = data_dir
        self.forwarding = forwarding
        self.client = client
        self.base_url = base_url
        self.sessions = SessionStore(data_dir / FILE_NAME)
        self.gate = Gate(registry, self.sessions)
        self.pages = Pages()
        self.live = live.LiveFeed(registry.get)  # fed with every stored batch

    def _record(self, pixel_id: str, actor: str, action: str, changes: dict[str, Any]) -> None:
        audit.record(self.client(), pixel_id, actor, action, changes)

    def setup_steps(self, pixel: Pixel) -> list[checklist.Step]:
        return checklist.steps(self.client(), pixel)

    def _settings_extra(self, pixel: Pixel) -> dict[str, Any]:
        problem = self.forwarding().get("pixels", {}).get(pixel.id, {})
        return {"forwarding": problem, "backfill": self._backfill(pixel)}

    def _backfill(self, pixel: Pixel) -> dict[str, Any] | None:
        job = backfill.load(self.data_dir / backfill.JOBS_DIR, pixel.id)
        if job is None:
            return None
        p = job.progress()
        if p["done"]:
            text = f"{p['queued']} stored events queued for TikTok (all sent once the queue drains)"
        elif job.total < 0:
            text = "starting: waiting for the forwarder to catch up"
        else:
            text = f"{p['queued']} of {p['total']} stored events queued for TikTok"
        return {**p, "text": text}

    def collect_metrics(self) -> list[GaugeMetricFamily]:
        """Gauges read at scrape time (registered by the runtime)."""
        sessions = GaugeMetricFamily("pixel_console_sessions", "Open console sessions.")
        sessions.add_metric([], self.sessions.count())
        viewers = GaugeMetricFamily("pixel_live_viewers", "Open live-events streams.")
        viewers.add_metric([], self.live.viewers())
        return [sessions, viewers]

    def routes(self) -> list[BaseRoute]:
        gate, pages = self.gate, self.pages
        return [
            *login.routes(gate, pages, https=self.base_url.startswith("https:")),
            *home.routes(gate, pages, self.client),
            *settings_page.routes(gate, pages, self.run, self._settings_extra),
            *tiktok_check.routes(gate, pages, self._record),
            *team.routes(gate, pages, self.run, self.base_url),
            *install_page.routes(gate, pages, self.base_url),
            *live.routes(gate, pages, self.live, self.client),
        ]
