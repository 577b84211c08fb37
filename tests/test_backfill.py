"""Backfill to TikTok: events stored before a pixel's credentials were set are
sent once TikTok is configured, each exactly once, oldest first, none older
than the age limit; also when the queueing is cut short, and across kill -9."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixel_server.pipeline import record as records
from pixel_server.sinks import backfill
from pixel_server.sinks.spill import read_chunk
from tests.conftest import free_port
from tests.ingest_helpers import (
    add_pixel,
    api_body,
    api_headers,
    metric,
    runtime_of,
    settings_with,
    wait_for_rows,
)
from tests.standins.tiktok_api import Fault, TikTokStandIn
from tests.test_cli import cli_json
from tests.test_crash import start_server
from tests.test_forwarder import forwarding_app
from tests.test_forwarder import wait_for as wait

DAY = 86_400.0
MAX_AGE_DAYS = 2
CODE, TOKEN = "BACKFILL1CODE", "backfill-token-1"


def events(now: float) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """100 purchases over the last 5 days: (bodies, eligible ids oldest first, too old)."""
    bodies, young, old = [], [], []
    for n in range(100):
        age = (n % 50) * (4.8 * DAY / 50) + 60  # spread from 1 minute to ~4.8 days
        event_id = f"purchase:bf-{n}"
        props = {"value": 10 + n, "currency": "USD", "order_id": f"bf-{n}"}
        bodies.append(
            {
                "event": "Purchase",
                "event_id": event_id,
                "event_time": now - age,
                "properties": props,
            }
        )
        (young if age < MAX_AGE_DAYS * DAY - 3600 else old).append((now - age, event_id))
    return bodies, [i for _, i in sorted(young)], [i for _, i in old]


@pytest.fixture
def api() -> Iterator[TikTokStandIn]:
    with TikTokStandIn({TOKEN: {CODE}}) as standin:
        yield standin


def test_events_stored_before_tiktok_was_set_up_are_sent_once(
    settings: Any, api: TikTokStandIn
) -> None:
    settings = settings_with(settings, PIXEL_BACKFILL_MAX_AGE_DAYS=str(MAX_AGE_DAYS),
                             PIXEL_WAL_FSYNC="false")  # fmt: skip
    now = time.time()
    bodies, young, old = events(now)
    with forwarding_app(settings) as c:
        runtime = runtime_of(c)
        pixel = add_pixel(runtime, tiktok_api_base=api.base_url)
        r = c.post("/api/v1/events", json=api_body(pixel["id"], bodies),
                   headers=api_headers(pixel["api_key"]))  # fmt: skip
        assert r.status_code == 200 and r.json()["accepted"] == 100, r.text
        assert wait_for_rows(runtime, 100, pixel["id"]) == 100
        assert wait(
            lambda: metric(c, "pixel_forward_skipped_total", reason="nothing_to_forward") >= 100
        )
        assert api.event_ids() == []  # nothing to send to yet
        runtime.management.run(
            "pixel.update",
            {"id": pixel["id"], "tiktok_pixel_code": CODE, "tiktok_access_token": TOKEN},
        )
        assert wait(lambda: len(api.event_ids(CODE)) >= len(young))
        time.sleep(1.0)  # anything sent twice would arrive meanwhile
        sent = api.event_ids(CODE)
        assert sorted(sent) == sorted(young) and len(sent) == len(set(sent))
        assert not set(old) & set(sent)
        assert sent == young  # oldest first
        assert metric(c, "pixel_backfill_events", pixel_id=pixel["id"], state="queued") == len(
            young
        )
        page = c.get(f"/dashboard/{pixel['id']}/settings",
                     headers={"authorization": f"Bearer {pixel['owner_token']}"})  # fmt: skip
        assert f"{len(young)} stored events queued for TikTok" in page.text
        # Setting the same credentials again (or other settings) queues nothing more.
        runtime.management.run("pixel.update", {"id": pixel["id"], "name": "Renamed"})
        time.sleep(1.5)
        assert len(api.event_ids(CODE)) == len(young)


def test_queueing_cut_short_resumes_without_duplicates(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between writing a part's chunk and saving the cursor writes the
    same part under the same name again: replaced, not added."""
    now = time.time()
    bodies, young, _ = events(now)
    settings = settings_with(settings, PIXEL_WAL_FSYNC="false")
    with forwarding_app(settings) as c:
        runtime = runtime_of(c)
        pixel = add_pixel(runtime)
        c.post("/api/v1/events", json=api_body(pixel["id"], bodies),
               headers=api_headers(pixel["api_key"]))  # fmt: skip
        assert wait_for_rows(runtime, 100, pixel["id"]) == 100
        # A runner of its own (own directories: the app's forwarder does not see them).
        root = tmp_path / "cut-short"
        configured = replace(runtime.registry.get(pixel["id"]), tiktok_pixel_code="X1234",
                             tiktok_access_token="t")  # fmt: skip

        def runner() -> backfill.Backfill:
            return backfill.Backfill(
                runtime.database.client, lambda _: configured, root, root / "spill",
                lambda: (0, 0), lambda: (0, 0), max_age_s=MAX_AGE_DAYS * DAY, part_events=7,
                fsync=False,
            )  # fmt: skip

        jobs = runner().jobs_dir
        backfill.save(jobs, backfill.Job(pixel["id"], time.time_ns(), round(time.time() * 1000)))
        real_save = backfill.save

        def crashing_save(directory: Path, job: backfill.Job) -> None:
            if job.part == 3:  # the third part's chunk is written, its cursor never saved
                raise KeyboardInterrupt("killed")
            real_save(directory, job)

        monkeypatch.setattr(backfill, "save", crashing_save)
        with pytest.raises(KeyboardInterrupt):
            runner().run(backfill.load(jobs, pixel["id"]))  # type: ignore[arg-type]
        monkeypatch.setattr(backfill, "save", real_save)
        runner().run(backfill.load(jobs, pixel["id"]))  # type: ignore[arg-type]
        done = backfill.load(jobs, pixel["id"])
        assert done is not None and done.done and done.queued == len(young)
        chunks = sorted((root / "spill" / pixel["id"]).glob("*.chunk"))
        assert len(chunks) == -(-len(young) // 7)
        queued = [records.decode(e.record).event_id for p in chunks for e in read_chunk(p)]
        assert queued == young  # each once, oldest first


# ------------------------------------------------------------------- kill -9


def test_kill_9_mid_backfill_still_sends_each_event_once(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "server.log"
    port = free_port()
    env = {"PIXEL_BACKFILL_MAX_AGE_DAYS": str(MAX_AGE_DAYS)}
    with TikTokStandIn({TOKEN: {CODE}}) as api:
        pixel = cli_json(data, "pixel", "add", "--name", "Kill", "--tiktok-api-base", api.base_url)
        proc = start_server(data, port, log, **env)
        try:
            bodies, young, old = events(time.time())
            r = httpx.post(f"http://127.0.0.1:{port}/api/v1/events",
                           json=api_body(pixel["id"], bodies),
                           headers=api_headers(pixel["api_key"]), timeout=30)  # fmt: skip
            assert r.status_code == 200, r.text
            # TikTok fails for now: the backfill is queued on disk, nothing is taken.
            api.inject(Fault("http_5xx", status=503))
            cli_json(data, "pixel", "update", pixel["id"], "--tiktok-pixel-code", CODE,
                "--tiktok-access-token", TOKEN)  # fmt: skip
            job_file = data / backfill.JOBS_DIR / f"{pixel['id']}.json"
            assert wait(lambda: job_file.exists() and json.loads(job_file.read_text())["done"], 60)
            assert wait(lambda: len(api.exchanges) >= 1, 30)  # the forwarder is trying
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            api.clear_faults()
            proc = start_server(data, port, log, **env)
            assert wait(lambda: len(api.event_ids(CODE)) >= len(young), 60), log.read_text()[-2000:]
            time.sleep(1.5)
            sent = api.event_ids(CODE)
            assert sorted(sent) == sorted(young) and len(sent) == len(set(sent))
            assert not set(old) & set(sent)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
