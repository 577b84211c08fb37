"""connect / disconnect / connect status on the BigCommerce stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pixel_server.connect.bigcommerce import ORDER_SCOPES, PRODUCT_SCOPES
from pixel_server.management import Management
from tests.connect_helpers import BASE_URL, SECRET, add_pixel, failing, management, run
from tests.standins.bigcommerce_admin import BigCommerceAdmin

__all__ = ["management"]
TOKEN = "bc-token-1"


@pytest.fixture
def store() -> Iterator[BigCommerceAdmin]:
    api = BigCommerceAdmin(TOKEN).start()
    yield api
    api.stop()


def pixel_for(m: Management, store: BigCommerceAdmin, token: str = TOKEN) -> str:
    return add_pixel(
        m,
        "bigcommerce",
        store_id=store.store_hash,
        store_api_base=store.base_url,
        store_api_token=token,
    )


def test_connect_creates_one_script_and_the_webhooks(
    management: Management, store: BigCommerceAdmin
) -> None:
    pixel = pixel_for(management, store)
    result = run(management, "connect", pixel)

    [script] = store.scripts.values()
    assert script["src"] == f"{BASE_URL}/p/{pixel}.js"
    assert script["kind"] == "src"
    assert script["visibility"] == "all_pages"  # checkout and order confirmation too
    assert script["consent_category"] == "targeting"
    hooks = {h["scope"]: h for h in store.hooks.values()}
    assert set(hooks) == set(ORDER_SCOPES) | set(PRODUCT_SCOPES)
    for scope, hook in hooks.items():
        catalog = "/catalog" if scope in PRODUCT_SCOPES else ""
        assert hook["destination"] == f"{BASE_URL}/webhooks/bigcommerce/{pixel}{catalog}"
        assert hook["headers"] == {"X-Pixel-Webhook-Secret": SECRET}
        assert hook["is_active"] is True
    assert len(result["created"]) == 1 + len(hooks)
    assert result["kept"] == []


def test_connecting_again_creates_nothing(management: Management, store: BigCommerceAdmin) -> None:
    pixel = pixel_for(management, store)
    run(management, "connect", pixel)
    before = store.state()
    again = run(management, "connect", pixel)
    assert again["created"] == []
    assert len(again["kept"]) == 1 + len(ORDER_SCOPES) + len(PRODUCT_SCOPES)
    assert store.state() == before


def test_disconnect_restores_the_store(management: Management, store: BigCommerceAdmin) -> None:
    unrelated = {
        "name": "chat widget",
        "kind": "src",
        "src": "https://chat.example/w.js",
        "visibility": "storefront",
        "uuid": "keep-me",
    }
    store.scripts["keep-me"] = unrelated
    before = store.state()
    pixel = pixel_for(management, store)
    run(management, "connect", pixel)
    result = run(management, "disconnect", pixel)
    assert store.state() == before
    assert len(result["removed"]) == 1 + len(ORDER_SCOPES) + len(PRODUCT_SCOPES)
    assert result["left_over"] == []
    assert run(management, "disconnect", pixel)["removed"] == []  # nothing left to remove


def test_a_removed_script_is_created_again(management: Management, store: BigCommerceAdmin) -> None:
    pixel = pixel_for(management, store)
    run(management, "connect", pixel)
    store.scripts.clear()  # the merchant deleted it in the control panel
    again = run(management, "connect", pixel)
    assert [c["kind"] for c in again["created"]] == ["script"]
    assert len(store.scripts) == 1


def test_missing_scope_is_named_and_nothing_is_created(
    management: Management, store: BigCommerceAdmin
) -> None:
    store.scopes.discard("content")
    pixel = pixel_for(management, store)
    message = failing(management, "connect", pixel)
    assert "Content: modify" in message
    assert store.state() == ({}, {})


def test_revoked_token(management: Management, store: BigCommerceAdmin) -> None:
    pixel = pixel_for(management, store, token="revoked")
    message = failing(management, "connect", pixel)
    assert "refused the API token" in message
    assert store.state() == ({}, {})


def test_api_down_mid_connect_rolls_back(management: Management, store: BigCommerceAdmin) -> None:
    pixel = pixel_for(management, store)
    # access checks (4) + listings (2) + the script + two hooks answer; then the API fails.
    original = store._admin
    calls = {"n": 0}

    def flaky(request, rest):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if request.command == "POST" and calls["n"] > 9:
            store.fail_always(503)
        return original(request, rest)

    store._admin = flaky  # type: ignore[method-assign]
    message = failing(management, "connect", pixel)
    assert "unavailable" in message
    assert "could not remove" in message  # still down: reported, kept for disconnect
    store.heal()
    store._admin = original  # type: ignore[method-assign]
    assert store.state() != ({}, {})
    run(management, "disconnect", pixel)
    assert store.state() == ({}, {})


def test_api_down_then_rollback_succeeds(management: Management, store: BigCommerceAdmin) -> None:
    pixel = pixel_for(management, store)
    original = store._admin
    posts = {"n": 0}

    def one_failure(request, rest):  # type: ignore[no-untyped-def]
        if request.command == "POST":
            posts["n"] += 1
            if posts["n"] == 4:  # the script and two hooks exist by now
                store.inject(1, 503)
        return original(request, rest)

    store._admin = one_failure  # type: ignore[method-assign]
    message = failing(management, "connect", pixel)
    assert "removed again what this attempt created" in message
    assert store.state() == ({}, {})
    assert run(management, "disconnect", pixel)["removed"] == []


def test_status_reports_missing_script_and_failing_webhook(
    management: Management, store: BigCommerceAdmin
) -> None:
    pixel = pixel_for(management, store)
    run(management, "connect", pixel)
    healthy = run(management, "connect.status", pixel)
    assert healthy["script"]["found_in_page"] is True
    assert all(h["registered"] and h["active"] for h in healthy["webhooks"])

    store.scripts.clear()
    failing_hook = next(k for k, h in store.hooks.items() if h["scope"] == "store/order/created")
    store.fail_hook(failing_hook)
    status = run(management, "connect.status", pixel)
    assert status["ok"] is False
    assert status["script"]["found_in_page"] is False
    assert any(p.startswith("script:") for p in status["problems"])
    [bad] = [h for h in status["webhooks"] if not h["active"]]
    assert bad["topic"] == "store/order/created"
    assert any("failing deliveries" in p for p in status["problems"])
    assert any(r["present"] is False and r["kind"] == "script" for r in status["resources"])
