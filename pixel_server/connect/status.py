"""``connect status``: is the installation healthy, checked live.

* script: the storefront's home page (its URL from the store API) is fetched
  and searched for the pixel id (our ``/p/{id}.js`` tag, or a web pixel's
  settings). Shopify web/custom pixels and Ecwid's app JS are loaded by the
  platform's own script and may not show in the HTML, so a browser event
  received in the last 24 hours also counts as proof;
* store resources: each resource connect recorded is still in the store;
* webhooks: each wanted one is registered with our URL and active (BigCommerce
  and WooCommerce deactivate hooks whose deliveries keep failing), and the
  last webhook copy we received;
* events: per event name and source, copies and the last one's time;
* TikTok: pixel code and access token set, and the last delivery attempt's
  outcome (TikTok's answer is the credential check);
* catalog: the catalog's item counts and its last full pull.

Every failed check adds a sentence to ``problems``; ``ok`` is no problems.
A store API that does not answer is a problem, not an error: the rest is
still reported.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx
from clickhouse_connect.driver.client import Client

from pixel_server.catalog.store import CatalogStore
from pixel_server.connect.plan import TIMEOUT, ConnectError, Connector, Live, Target
from pixel_server.sinks import ledger
from pixel_server.storage import connections
from pixel_server.storage.connections import ConnectionStore

RECENT_SECONDS = 24 * 3600


def status(target: Target, connector: Connector, client: Client) -> dict[str, Any]:
    pixel = target.pixel
    problems: list[str] = []
    events = connections.last_events(client, pixel.id)
    recorded = ConnectionStore(client).list(pixel.id)
    live: list[Live] | None = None
    storefront = ""
    try:
        connector.check_access()
        live = connector.live()
        storefront = connector.storefront_url()
    except ConnectError as exc:
        problems.append(f"store API: {exc}")

    script = _script(pixel.id, storefront, events, problems)
    resources = _resources(recorded, live, problems)
    webhooks = _webhooks(connector, live, events, problems)
    tiktok = _tiktok(
        client, pixel.id, bool(pixel.tiktok_pixel_code and pixel.tiktok_access_token), problems
    )
    catalog = _catalog(client, pixel.id, problems)
    return {
        "pixel_id": pixel.id,
        "platform": pixel.platform,
        "ok": not problems,
        "problems": problems,
        "script": script,
        "resources": resources,
        "webhooks": webhooks,
        "events": events,
        "tiktok": tiktok,
        "catalog": catalog,
    }


def _recent_browser_event(events: list[dict[str, Any]]) -> str:
    browser = [e["last_received_at"] for e in events if e["source"] == "browser"]
    if not browser:
        return ""
    last = max(browser)
    return last if time.time() - datetime.fromisoformat(last).timestamp() < RECENT_SECONDS else ""


def _script(
    pixel_id: str, url: str, events: list[dict[str, Any]], problems: list[str]
) -> dict[str, Any]:
    found: bool | None = None
    error = ""
    if url:
        try:
            with httpx.Client(timeout=TIMEOUT, follow_redirects=True) as http:
                page = http.get(url)
            found = pixel_id in page.text
            if page.status_code != 200:
                error = f"the home page answered {page.status_code}"
        except httpx.HTTPError as exc:
            error = f"the home page did not answer ({type(exc).__name__})"
    last_browser = _recent_browser_event(events)
    if not found and not last_browser:
        where = url or "the storefront"
        reason = error or "the tag is not on the home page"
        problems.append(f"script: {reason} ({where}) and no browser event in the last 24 hours")
    return {
        "storefront_url": url,
        "found_in_page": found,
        "error": error,
        "last_browser_event": last_browser,
    }


def _resources(
    recorded: list[Any], live: list[Live] | None, problems: list[str]
) -> list[dict[str, Any]]:
    there = {r.remote_id for r in live} if live is not None else None
    out = []
    for c in recorded:
        present = None if there is None else c.remote_id in there
        if present is False:
            problems.append(
                f"{c.kind} {c.key} ({c.remote_id}) was removed from the store: "
                "run `pixel-server connect` again"
            )
        out.append({**c.public(), "present": present})
    return out


def _webhooks(
    connector: Connector, live: list[Live] | None, events: list[dict[str, Any]], problems: list[str]
) -> list[dict[str, Any]]:
    if live is None:
        return []
    by_key = {(r.kind, r.key): r for r in live}
    webhook_copies = [e["last_received_at"] for e in events if e["source"] == "webhook"]
    last = max(webhook_copies) if webhook_copies else ""
    out = []
    for want in connector.wanted():
        if want.kind != "webhook":
            continue
        hook = by_key.get((want.kind, want.key))
        item: dict[str, Any] = {
            "topic": want.key,
            "destination": want.destination,
            "registered": hook is not None,
            "last_delivery": last,
        }
        if hook is None:
            problems.append(f"webhook {want.key}: not registered: run `pixel-server connect`")
        else:
            item.update(id=hook.remote_id, active=hook.active, **hook.detail)
            if not hook.active:
                problems.append(
                    f"webhook {want.key} ({hook.remote_id}): deactivated by the store after "
                    "failing deliveries: check that the server is reachable, then connect again"
                )
        out.append(item)
    return out


def _tiktok(client: Client, pixel_id: str, configured: bool, problems: list[str]) -> dict[str, Any]:
    if not configured:
        problems.append("TikTok: pixel code or access token not set")
        return {"configured": False}
    last = ledger.list_deliveries(client, pixel_id, None, 1)
    if not last:
        return {"configured": True, "verified": None, "note": "nothing sent to TikTok yet"}
    attempt = last[0]
    verified = attempt["outcome"] == "sent"
    if attempt["outcome"] == "dead":
        problems.append(f"TikTok: the last delivery was refused: {attempt['tiktok_message']}")
    return {
        "configured": True,
        "verified": verified,
        "last_attempt": attempt["attempted_at"],
        "outcome": attempt["outcome"],
        "message": attempt["tiktok_message"],
    }


def _catalog(client: Client, pixel_id: str, problems: list[str]) -> dict[str, Any]:
    store = CatalogStore(lambda: client)
    counts: dict[str, Any] = dict(store.counts(pixel_id))
    runs = store.runs(pixel_id, limit=1, kind="full")
    if runs:
        counts["last_full_sync"] = {"status": runs[0].status, "error": runs[0].error}
    if not counts["items"]:
        problems.append("catalog: no items synced yet")
    elif runs and runs[0].status != "ok":
        problems.append(f"catalog: the last full pull failed: {runs[0].error}")
    return counts
