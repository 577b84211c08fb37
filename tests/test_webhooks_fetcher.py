"""The order fetch queue across restarts: a queued job is on disk before the
webhook is acknowledged, so a job still failing when the server stops runs again
at the next start; handled deliveries are remembered across restarts; parked
jobs stay counted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from pixel_server.config import Settings
from pixel_server.ingest.webhooks import FetchPolicy
from tests.standins.ecwid_api import EcwidApi
from tests.standins.ecwid_api import running as ecwid_running
from tests.webhook_helpers import (
    FAST,
    STORE_TOKEN,
    add_shop,
    copies,
    ecwid_event,
    ecwid_headers,
    ecwid_order,
    encode,
    log_ends,
    metric,
    post_webhook,
    shopify_headers,
    shopify_order,
    wait_for,
    webhook_app,
)

# Keeps retrying (every 20-50 ms) for as long as a test needs.
PATIENT = FetchPolicy(first_delay=0.02, max_delay=0.05, max_attempts=1000, timeout=0.5)


@pytest.fixture
def api() -> Iterator[EcwidApi]:
    with ecwid_running(STORE_TOKEN, store_id="1003") as a:
        yield a


def ecwid_shop(client: TestClient, api: EcwidApi) -> dict[str, Any]:
    return add_shop(client, "ecwid", store_api_base=api.base_url, store_api_token=STORE_TOKEN)


def test_a_queued_fetch_survives_a_restart(settings: Settings, api: EcwidApi) -> None:
    api.add_order(ecwid_order())
    api.fail_always(503)
    with webhook_app(settings, PATIENT) as c:
        shop = ecwid_shop(c, api)
        event = ecwid_event("XJ12H")
        answer = post_webhook(c, "ecwid", shop["id"], encode(event), ecwid_headers(event))
        assert answer.json()["status"] == "queued"
        wait_for(lambda: api.order_requests("XJ12H") >= 2)  # failing, retrying
    api.heal()
    with webhook_app(settings, PATIENT) as c:
        wait_for(lambda: copies(c, shop["id"]) == [("Purchase", "purchase:XJ12H", "webhook")])
        # the same delivery, retried by Ecwid after the restart: still a duplicate
        again = post_webhook(c, "ecwid", shop["id"], encode(event), ecwid_headers(event))
        assert again.json()["status"] == "duplicate"


def test_a_delivery_is_remembered_across_a_restart(settings: Settings) -> None:
    raw = encode(shopify_order())
    headers = shopify_headers(raw, webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70fcd043")
    with webhook_app(settings) as c:
        shop = add_shop(c, "shopify")
        assert post_webhook(c, "shopify", shop["id"], raw, headers).json()["status"] == "stored"
    with webhook_app(settings) as c:
        before = log_ends(c)
        again = post_webhook(c, "shopify", shop["id"], raw, headers)
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        assert log_ends(c) == before


def test_parked_jobs_stay_visible_after_a_restart(settings: Settings, api: EcwidApi) -> None:
    api.fail_always(500)
    with webhook_app(settings, FAST) as c:
        shop = ecwid_shop(c, api)
        event = ecwid_event("XJ12H")
        post_webhook(c, "ecwid", shop["id"], encode(event), ecwid_headers(event))
        wait_for(lambda: metric(c, "pixel_webhook_jobs_failed") == 1)
    with webhook_app(settings, FAST) as c:
        assert metric(c, "pixel_webhook_jobs_failed") == 1
        assert metric(c, "pixel_webhook_jobs_waiting") == 0
    parked = (settings.data_dir / "webhooks" / "failed.jsonl").read_text().splitlines()
    assert [json.loads(line)["job"]["order_id"] for line in parked] == ["XJ12H"]


def test_many_orders_of_a_failing_store_do_not_hold_up_each_other(
    settings: Settings, api: EcwidApi
) -> None:
    for n in range(6):
        api.add_order(ecwid_order(id=f"ORD{n}", vendorOrderNumber=f"ORD{n}"))
    api.inject(6, status=503)  # each order's first attempt fails
    with webhook_app(settings, PATIENT) as c:
        shop = ecwid_shop(c, api)
        for n in range(6):
            event = ecwid_event(f"ORD{n}")
            post_webhook(c, "ecwid", shop["id"], encode(event), ecwid_headers(event))
        wait_for(lambda: len(copies(c, shop["id"])) == 6)
        # every job finished and committed
        wait_for(lambda: metric(c, "pixel_webhook_job_log_backlog_bytes") == 0)
        assert metric(c, "pixel_webhook_jobs_waiting") == 0
