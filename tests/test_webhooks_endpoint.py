"""``POST /webhooks/{platform}/{pixel_id}``: every platform's authentication,
idempotency and error answers. A refused delivery stores nothing (neither log
moves) and is counted in ``pixel_webhooks_rejected_total{platform, reason}``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pixel_server.ingest.webhooks import FetchPolicy
from tests.ingest_helpers import shared_settings
from tests.webhook_helpers import (
    SECRET,
    bigcommerce_callback,
    bigcommerce_headers,
    ecwid_event,
    ecwid_headers,
    encode,
    log_ends,
    metric,
    post_webhook,
    runtime_of,
    shopify_headers,
    shopify_order,
    webhook_app,
    woo_headers,
    woo_order,
)
from tests.webhook_helpers import add_shop as _add_shop

PLATFORMS = ("ecwid", "bigcommerce", "shopify", "woocommerce")
SIGNED = ("ecwid", "shopify", "woocommerce")  # BigCommerce sends a shared secret, unsigned
AUTH_HEADER = {
    "ecwid": "x-ecwid-webhook-signature",
    "bigcommerce": "x-pixel-webhook-secret",
    "shopify": "x-shopify-hmac-sha256",
    "woocommerce": "x-wc-webhook-signature",
}


def delivery(platform: str, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    """A valid delivery (body, headers), signed the way the platform signs."""
    if platform == "shopify":
        raw = encode(shopify_order())
        return raw, shopify_headers(raw, secret=secret)
    if platform == "woocommerce":
        raw = encode(woo_order())
        return raw, woo_headers(raw, secret=secret)
    if platform == "ecwid":
        event = ecwid_event()
        return encode(event), ecwid_headers(event, secret=secret)
    return encode(bigcommerce_callback()), bigcommerce_headers(secret=secret)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[TestClient]:
    # Fetching paused: Ecwid/BigCommerce jobs stay queued, so only the request
    # under test can move the logs.
    paused = FetchPolicy(concurrency=0)
    with webhook_app(shared_settings(tmp_path_factory, engine_dir), paused) as c:
        yield c


@pytest.fixture(scope="module")
def shops(client: TestClient) -> dict[str, dict[str, Any]]:
    return {p: _add_shop(client, p) for p in PLATFORMS}


def refused(
    client: TestClient, platform: str, send: Callable[[], Any], status: int, code: str
) -> dict[str, Any]:
    """Send; expect ``status``/``code``, nothing stored, the refusal counted."""
    before = log_ends(client)
    counted = metric(client, "pixel_webhooks_rejected_total", platform=platform, reason=code)
    answer = send()
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert error["code"] == code and error["message"]
    assert log_ends(client) == before
    after = metric(client, "pixel_webhooks_rejected_total", platform=platform, reason=code)
    assert after == counted + 1
    return error


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_valid_delivery_is_accepted(
    client: TestClient, shops: dict[str, Any], platform: str
) -> None:
    before = log_ends(client)
    body, headers = delivery(platform)
    answer = post_webhook(client, platform, shops[platform]["id"], body, headers)
    assert answer.status_code == 200
    assert answer.json()["status"] == (
        "queued" if platform in ("ecwid", "bigcommerce") else "stored"
    )
    assert log_ends(client) != before


@pytest.mark.parametrize("platform", SIGNED)
def test_a_tampered_body_is_refused(
    client: TestClient, shops: dict[str, Any], platform: str
) -> None:
    body, headers = delivery(platform)
    if platform == "ecwid":  # Ecwid signs "{eventCreated}.{eventId}" only
        tampered = body.replace(b'"eventCreated":', b'"eventCreated":1', 1)
    else:
        tampered = body.replace(b'"total', b'"TOTAL', 1)
    assert tampered != body
    pixel = shops[platform]["id"]
    send = lambda: post_webhook(client, platform, pixel, tampered, headers)  # noqa: E731
    refused(client, platform, send, 401, "bad_signature")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_wrong_secret_is_refused(
    client: TestClient, shops: dict[str, Any], platform: str
) -> None:
    body, headers = delivery(platform, secret="not-the-shops-secret")
    pixel = shops[platform]["id"]
    send = lambda: post_webhook(client, platform, pixel, body, headers)  # noqa: E731
    refused(client, platform, send, 401, "bad_signature")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_missing_signature_is_refused(
    client: TestClient, shops: dict[str, Any], platform: str
) -> None:
    body, headers = delivery(platform)
    del headers[AUTH_HEADER[platform]]
    pixel = shops[platform]["id"]
    send = lambda: post_webhook(client, platform, pixel, body, headers)  # noqa: E731
    refused(client, platform, send, 401, "missing_signature")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_replayed_delivery_is_acknowledged_and_ignored(
    client: TestClient, shops: dict[str, Any], platform: str
) -> None:
    pixel = shops[platform]["id"]
    body, headers = delivery(platform)
    assert post_webhook(client, platform, pixel, body, headers).status_code == 200
    before = log_ends(client)
    duplicates = metric(client, "pixel_webhook_deliveries_total", platform=platform,
                        outcome="duplicate")  # fmt: skip
    again = post_webhook(client, platform, pixel, body, headers)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert log_ends(client) == before
    assert metric(client, "pixel_webhook_deliveries_total", platform=platform,
                  outcome="duplicate") == duplicates + 1  # fmt: skip


@pytest.mark.parametrize("platform", PLATFORMS)
def test_malformed_json_is_400(client: TestClient, shops: dict[str, Any], platform: str) -> None:
    body = b'{"id": 1, "line_items": [}'
    if platform == "shopify":
        headers = shopify_headers(body)
    elif platform == "woocommerce":
        headers = woo_headers(body)
    elif platform == "ecwid":  # the signed fields cannot even be read
        headers = {"x-ecwid-webhook-signature": "c2lnbmF0dXJl"}
    else:
        headers = bigcommerce_headers()
    pixel = shops[platform]["id"]
    send = lambda: post_webhook(client, platform, pixel, body, headers)  # noqa: E731
    refused(client, platform, send, 400, "invalid_json")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_unknown_pixel_is_404(client: TestClient, platform: str) -> None:
    body, headers = delivery(platform)
    send = lambda: post_webhook(client, platform, "px_nosuchpixel", body, headers)  # noqa: E731
    error = refused(client, platform, send, 404, "unknown_pixel")
    assert error["field"] == "pixel_id"


def test_an_unknown_platform_is_404(client: TestClient, shops: dict[str, Any]) -> None:
    body, headers = delivery("shopify")
    pixel = shops["shopify"]["id"]
    send = lambda: post_webhook(client, "magento", pixel, body, headers)  # noqa: E731
    error = refused(client, "unknown", send, 404, "unknown_platform")
    assert error["field"] == "platform"


def test_an_oversized_body_is_413(client: TestClient, shops: dict[str, Any]) -> None:
    order = shopify_order(note="x" * (3 * 1024 * 1024))
    raw = encode(order)
    pixel = shops["shopify"]["id"]
    send = lambda: post_webhook(client, "shopify", pixel, raw, shopify_headers(raw))  # noqa: E731
    refused(client, "shopify", send, 413, "body_too_large")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_pixel_without_a_webhook_secret_accepts_nothing(
    client: TestClient, platform: str
) -> None:
    pixel = _add_shop(client, platform, webhook_secret="")
    body, headers = delivery(platform, secret="")
    send = lambda: post_webhook(client, platform, pixel["id"], body, headers)  # noqa: E731
    error = refused(client, platform, send, 401, "no_secret")
    assert "--webhook-secret" in error["message"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_without_a_secret_the_body_is_not_even_read(client: TestClient, platform: str) -> None:
    pixel = _add_shop(client, platform, webhook_secret="")
    huge = b"x" * (3 * 1024 * 1024)  # past every limit: 413 if it were read
    send = lambda: post_webhook(client, platform, pixel["id"], huge, {})  # noqa: E731
    refused(client, platform, send, 401, "no_secret")


@pytest.mark.parametrize(("platform", "size"), [("ecwid", 65 * 1024), ("bigcommerce", 65 * 1024)])
def test_platforms_that_send_ids_only_get_a_small_limit(
    client: TestClient, shops: dict[str, Any], platform: str, size: int
) -> None:
    body, headers = delivery(platform)
    padded = body[:-1] + b', "pad": "' + b"x" * size + b'"}'
    send = lambda: post_webhook(client, platform, shops[platform]["id"], padded, headers)  # noqa: E731
    refused(client, platform, send, 413, "body_too_large")


def test_a_disabled_pixel_is_403(client: TestClient) -> None:
    pixel = _add_shop(client, "shopify")
    runtime_of(client).management.run("pixel.update", {"id": pixel["id"], "enabled": False})
    body, headers = delivery("shopify")
    send = lambda: post_webhook(client, "shopify", pixel["id"], body, headers)  # noqa: E731
    refused(client, "shopify", send, 403, "pixel_disabled")


def test_only_post_is_allowed(client: TestClient, shops: dict[str, Any]) -> None:
    answer = client.get(f"/webhooks/shopify/{shops['shopify']['id']}")
    assert answer.status_code == 405 and answer.json()["error"]["code"] == "method_not_allowed"


def test_a_signed_order_without_an_id_is_422(client: TestClient, shops: dict[str, Any]) -> None:
    order = shopify_order()
    del order["id"], order["admin_graphql_api_id"]
    raw = encode(order)
    pixel = shops["shopify"]["id"]
    send = lambda: post_webhook(client, "shopify", pixel, raw, shopify_headers(raw))  # noqa: E731
    error = refused(client, "shopify", send, 422, "invalid_order")
    assert error["field"] == "id"


def test_a_copy_arriving_while_the_first_is_handled_is_told_to_retry(
    client: TestClient, shops: dict[str, Any]
) -> None:
    pixel = shops["shopify"]["id"]
    body, headers = delivery("shopify")
    ledger = runtime_of(client).webhooks.ledger
    key = f"delivery|{pixel}|shopify|{headers['x-shopify-webhook-id']}"
    assert ledger.claim(key)  # as if the first copy were still being stored
    try:
        send = lambda: post_webhook(client, "shopify", pixel, body, headers)  # noqa: E731
        refused(client, "shopify", send, 409, "delivery_in_progress")
    finally:
        ledger.release(key)
    assert post_webhook(client, "shopify", pixel, body, headers).json()["status"] == "stored"


@pytest.mark.parametrize(
    ("platform", "ours", "field"),
    [("ecwid", "1003", "storeId"), ("bigcommerce", "abc123xyz", "producer")],
)
def test_a_webhook_for_another_store_is_refused(
    client: TestClient, platform: str, ours: str, field: str
) -> None:
    body, headers = delivery(platform)
    other = _add_shop(client, platform, store_id="999999" if platform == "ecwid" else "zzz999")
    send = lambda: post_webhook(client, platform, other["id"], body, headers)  # noqa: E731
    error = refused(client, platform, send, 422, "wrong_store")
    assert error["field"] == field
    mine = _add_shop(client, platform, store_id=ours)  # the store the delivery names
    answer = post_webhook(client, platform, mine["id"], body, headers)
    assert answer.status_code == 200 and answer.json()["status"] == "queued"
