"""Helpers for the webhook tests: fixtures made recent, deliveries signed the
way each platform signs them (computed here, independently of the server's
code), the browser copy of a purchase, merged rows, what the logs hold.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from pixel_server.app import create_app
from pixel_server.config import Settings
from pixel_server.ingest.webhooks import FetchPolicy
from pixel_server.pipeline.wal import Position
from pixel_server.runtime import Runtime
from pixel_server.storage.queries import merged_events_sql

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "webhooks"
ORIGIN = "https://shop.example.com"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
SECRET = "whsec_5f0c2a9e8b7d4c1a"
STORE_TOKEN = "tok_live_9a8b7c6d5e4f"
# Retries in milliseconds, so a test about retries stays fast.
FAST = FetchPolicy(first_delay=0.01, max_delay=0.05, max_attempts=4, timeout=0.5, concurrency=4)
WAIT = 20.0  # an upper bound, never an expectation


def runtime_of(client: TestClient) -> Runtime:
    return client.app.state.runtime  # type: ignore[attr-defined,no-any-return]


@contextmanager
def webhook_app(settings: Settings, policy: FetchPolicy = FAST) -> Iterator[TestClient]:
    app = create_app(settings, webhook_policy=policy)
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def add_shop(client: TestClient, platform: str, **settings: Any) -> dict[str, Any]:
    """A pixel with a webhook secret (and whatever else is given)."""
    args: dict[str, Any] = {"name": f"{platform} shop", "origins": [ORIGIN],
                            "platform": platform, "webhook_secret": SECRET, **settings}  # fmt: skip
    result: dict[str, Any] = runtime_of(client).management.run("pixel.add", args)
    return result


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def b64_hmac(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


# ----------------------------------------------------------------- times

EDT = timezone(timedelta(hours=-4))


def ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def iso_local(at: datetime) -> str:
    """Shopify's form: local time with an offset."""
    return at.astimezone(EDT).replace(microsecond=0).isoformat()


def iso_gmt(at: datetime) -> str:
    """WooCommerce's ``*_gmt`` form: UTC without a zone."""
    return at.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat()


def rfc2822(at: datetime) -> str:
    """BigCommerce v2's form."""
    return format_datetime(at.astimezone(UTC).replace(microsecond=0))


# ----------------------------------------------------------- platform bodies


def shopify_order(created: datetime | None = None, **changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = copy.deepcopy(fixture("shopify_orders_create.json"))
    at = created or ago(30)
    order.update(created_at=iso_local(at), processed_at=iso_local(at),
                 updated_at=iso_local(at + timedelta(seconds=2)))  # fmt: skip
    order.update(changes)
    return order


def shopify_headers(
    body: bytes, topic: str = "orders/create", secret: str = SECRET, webhook_id: str = ""
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-shopify-topic": topic,
        "x-shopify-hmac-sha256": b64_hmac(secret, body),
        "x-shopify-shop-domain": "acme-apparel.myshopify.com",
        "x-shopify-api-version": "2024-04",
        "x-shopify-webhook-id": webhook_id or str(uuid.uuid4()),
        "x-shopify-triggered-at": datetime.now(UTC).isoformat(),
    }


def woo_order(created: datetime | None = None, **changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = copy.deepcopy(fixture("woocommerce_order_processing.json"))
    at = created or ago(30)
    paid = iso_gmt(at + timedelta(seconds=12))
    order.update(date_created_gmt=iso_gmt(at), date_modified_gmt=paid, date_paid_gmt=paid)
    order.update(changes)
    return order


def woo_headers(
    body: bytes, topic: str = "order.created", secret: str = SECRET, delivery_id: str = ""
) -> dict[str, str]:
    resource, _, event = topic.partition(".")
    return {
        "content-type": "application/json",
        "user-agent": "WooCommerce/8.8.3 Hookshot (WordPress/6.5.2)",
        "x-wc-webhook-source": "https://shop.example.com/",
        "x-wc-webhook-topic": topic,
        "x-wc-webhook-resource": resource,
        "x-wc-webhook-event": event,
        "x-wc-webhook-signature": b64_hmac(secret, body),
        "x-wc-webhook-id": "7",
        "x-wc-webhook-delivery-id": delivery_id or uuid.uuid4().hex,
    }


def ecwid_event(order_id: str = "XJ12H", event_type: str = "order.created") -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(fixture("ecwid_order_created.json"))
    event.update(eventId=str(uuid.uuid4()), eventCreated=int(time.time()), eventType=event_type)
    event["data"]["orderId"] = order_id
    return event


def ecwid_headers(event: dict[str, Any], secret: str = SECRET) -> dict[str, str]:
    signed = f"{event['eventCreated']}.{event['eventId']}".encode()
    return {
        "content-type": "application/json",
        "x-ecwid-webhook-signature": b64_hmac(secret, signed),
    }


def ecwid_order(created: datetime | None = None, **changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = copy.deepcopy(fixture("ecwid_order_XJ12H.json"))
    at = created or ago(30)
    stamp = int(at.timestamp())
    order.update(
        createTimestamp=stamp,
        updateTimestamp=stamp + 4,
        createDate=at.strftime("%Y-%m-%d %H:%M:%S +0000"),
        updateDate=(at + timedelta(seconds=4)).strftime("%Y-%m-%d %H:%M:%S +0000"),
    )
    order.update(changes)
    return order


def bigcommerce_callback(
    order_id: int = 250, scope: str = "store/order/created", store_hash: str = "abc123xyz"
) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(fixture("bigcommerce_order_created.json"))
    body.update(scope=scope, producer=f"stores/{store_hash}", created_at=int(time.time()),
                hash=hashlib.sha1(uuid.uuid4().bytes).hexdigest())  # fmt: skip
    body["data"]["id"] = order_id
    return body


def bigcommerce_headers(secret: str = SECRET) -> dict[str, str]:
    return {"content-type": "application/json", "x-pixel-webhook-secret": secret}


def bigcommerce_order(created: datetime | None = None, **changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = copy.deepcopy(fixture("bigcommerce_order_250.json"))
    at = created or ago(30)
    order.update(date_created=rfc2822(at), date_modified=rfc2822(at + timedelta(seconds=5)))
    order.update(changes)
    return order


# ------------------------------------------------------------------ posting


def post_webhook(
    client: TestClient, platform: str, pixel_id: str, body: bytes, headers: dict[str, str]
) -> Any:
    return client.post(f"/webhooks/{platform}/{pixel_id}", content=body, headers=headers)


def post_browser_purchase(
    client: TestClient,
    pixel_id: str,
    order_id: str,
    anonymous_id: str = "anon-42",
    ttclid: str = "E.C.P.tt-click-1",
) -> Any:
    """What the snippet sends on the thank-you page: its guess at the order data."""
    event = {
        "event": "Purchase",
        "event_id": f"purchase:{order_id}",
        "event_time": time.time(),
        "user": {"anonymous_id": anonymous_id, "ttclid": ttclid},
        "properties": {"value": 1, "currency": "USD", "order_id": order_id},
        "page": {"url": f"{ORIGIN}/thank-you?ttclid={ttclid}", "referrer": ""},
    }
    return client.post(
        f"/collect?p={pixel_id}",
        json={"events": [event]},
        headers={"origin": ORIGIN, "user-agent": BROWSER_UA},
    )


# ----------------------------------------------------------------- reading


def log_ends(client: TestClient) -> tuple[Position, Position]:
    """Where the event log and the job log end: unchanged means nothing was stored."""
    runtime = runtime_of(client)
    assert runtime.wal is not None
    return runtime.wal.write_end, runtime.webhooks.fetcher.log_end()


def loaded(client: TestClient) -> bool:
    wal = runtime_of(client).wal
    assert wal is not None
    return wal.reader("loader").backlog().bytes == 0


def merged(client: TestClient, pixel_id: str) -> list[dict[str, Any]]:
    """One row per event (the reports' merge), once the loader has caught up."""
    wait_for(lambda: loaded(client))
    ch = runtime_of(client).database.client()
    result = ch.query(
        f"SELECT * FROM ({merged_events_sql()}) ORDER BY event_time, event_id",
        parameters={"pixel": pixel_id, "start": datetime(2000, 1, 1, tzinfo=UTC),
                    "end": datetime(2100, 1, 1, tzinfo=UTC)},
    )  # fmt: skip
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def wait_merged(
    client: TestClient, pixel_id: str, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """Merged rows once ``done(rows)`` (asynchronous fetches land later)."""
    rows: list[dict[str, Any]] = []

    def ready() -> bool:
        nonlocal rows
        rows = merged(client, pixel_id)
        return done(rows)

    wait_for(ready)
    return rows


def copies(client: TestClient, pixel_id: str) -> list[tuple[str, str, str]]:
    """Every stored copy: (event, event_id, source)."""
    wait_for(lambda: loaded(client))
    result = (
        runtime_of(client)
        .database.client()
        .query(
            "SELECT event, event_id, toString(source) FROM events WHERE pixel_id = {p:String}"
            " ORDER BY event, event_id, source",
            parameters={"p": pixel_id},
        )
    )
    return [tuple(r) for r in result.result_rows]  # type: ignore[misc]


def metric(client: TestClient, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric_name, _, rest = head.partition("{")
        if metric_name != name:
            continue
        have = set(filter(None, rest.rstrip("}").split(",")))
        if wanted <= have:
            total += float(value)
    return total
