"""The back end's copy of an order, sent to the real server as the platform's
webhook, and the purchase the server makes of both copies."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from pixel_server.runtime import Runtime
from pixel_server.storage.queries import merged_events_sql
from tests.conftest import ROOT

SECRET = "browser-webhook-secret"
# Per platform: the fixture order, its time fields, the signature and topic headers.
PLATFORMS: dict[str, tuple[str, tuple[str, ...], str, dict[str, str]]] = {
    "shopify": (
        "shopify_orders_create.json",
        ("created_at", "processed_at", "updated_at"),
        "x-shopify-hmac-sha256",
        {"x-shopify-topic": "orders/create", "x-shopify-webhook-id": "wh-browser-1"},
    ),
    "woocommerce": (
        "woocommerce_order_processing.json",
        ("date_created_gmt", "date_modified_gmt"),
        "x-wc-webhook-signature",
        {"x-wc-webhook-topic": "order.created", "x-wc-webhook-delivery-id": "d-browser-1"},
    ),
}


def merged_purchase(real: tuple[Runtime, str], pixel_id: str, platform: str) -> dict[str, Any]:
    """Send the fixture order (dated now) as ``platform``'s webhook; return the
    merged Purchase row once both copies are stored."""
    runtime, origin = real
    name, time_fields, signature_header, headers = PLATFORMS[platform]
    runtime.management.run(
        "pixel.update", {"id": pixel_id, "platform": platform, "webhook_secret": SECRET}
    )
    order = json.loads((ROOT / "tests/fixtures/webhooks" / name).read_text())
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for field in time_fields:
        if field in order:
            order[field] = (now.replace(tzinfo=None) if field.endswith("_gmt") else now).isoformat()
    body = json.dumps(order).encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    response = httpx.post(
        f"{origin}/webhooks/{platform}/{pixel_id}",
        content=body,
        headers={"content-type": "application/json", signature_header: signature, **headers},
    )
    assert response.status_code == 200, response.text
    client = runtime.database.client()
    sql = "SELECT * FROM (" + merged_events_sql("event = 'Purchase'") + ")"
    params = {
        "pixel": pixel_id,
        "start": now - dt.timedelta(days=1),
        "end": now + dt.timedelta(days=1),
    }
    deadline = time.monotonic() + 20
    while True:
        result = client.query(sql, parameters=params)
        rows = [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]
        if (rows and rows[0]["copies"] >= 2) or time.monotonic() > deadline:
            assert len(rows) == 1, rows
            return rows[0]
        time.sleep(0.1)
