"""The setup checklist on a pixel's home page: each step read live from what
has been stored, with a link to where it is fixed.

Steps: the snippet seen on the storefront (a first browser event); PageView,
ViewContent, AddToCart, InitiateCheckout and Purchase seen; an order webhook
received; a purchase's browser and server copies merged; TikTok credentials
verified (since the TikTok settings last changed, "Check TikTok connection"
succeeded or TikTok took an event); the catalog synced, with how many of the
last 7 days' product ids it matches. Events of the last ``DAYS`` days count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import orjson
from clickhouse_connect.driver.client import Client

from pixel_server.catalog.match import match_rate
from pixel_server.catalog.store import CatalogStore
from pixel_server.console.tiktok_check import CHECK_ACTION
from pixel_server.pixel import Pixel

DAYS: Final = 90
FUNNEL: Final = ("PageView", "ViewContent", "AddToCart", "InitiateCheckout", "Purchase")
_TIKTOK_FIELDS: Final = ("tiktok_pixel_code", "tiktok_access_token", "tiktok_api_base")

_EVENTS_SQL: Final = f"""
SELECT countIf(source = 'browser') > 0, groupUniqArrayIf(event, event IN {{names:Array(String)}}),
       countIf(source = 'webhook') > 0
FROM events
WHERE pixel_id = {{p:String}} AND event_time > now64(3) - INTERVAL {DAYS} DAY
"""
_MERGED_SQL: Final = f"""
SELECT count() FROM (
    SELECT event_id FROM events
    WHERE pixel_id = {{p:String}} AND event = 'Purchase'
      AND event_time > now64(3) - INTERVAL {DAYS} DAY
    GROUP BY event_id
    HAVING has(groupUniqArray(source), 'browser') AND uniqExact(source) > 1
    LIMIT 1
)
"""
_AUDIT_SQL: Final = """
SELECT action, changes, at FROM audit_log
WHERE pixel_id = {p:String} AND (action = {check:String} OR action = 'settings')
ORDER BY at DESC LIMIT 50
"""


@dataclass(frozen=True)
class Step:
    title: str
    done: bool
    hint: str  # what to do while not done
    link: str  # where to do it (owner pages; readers see the hint only)


_SENT_SQL: Final = """
SELECT count() FROM deliveries
WHERE pixel_id = {p:String} AND outcome = 'sent' AND attempted_at > {since:DateTime64(3)}
"""


def _tiktok_verified(client: Client, pixel_id: str) -> bool:
    """Since the TikTok settings last changed, the newest check succeeded, or
    TikTok took an event (the forwarder's ledger says so)."""
    rows = client.query(_AUDIT_SQL, parameters={"p": pixel_id, "check": CHECK_ACTION})
    changed_at = datetime(2000, 1, 1, tzinfo=UTC)
    for action, changes, at in rows.result_rows:
        values = orjson.loads(changes)
        if action == CHECK_ACTION:
            if values.get("ok"):
                return True
            changed_at = at  # failed: only events TikTok took after it count
            break
        if any(name in values for name in _TIKTOK_FIELDS):
            changed_at = at
            break
    sent = client.query(_SENT_SQL, parameters={"p": pixel_id, "since": changed_at})
    return int(sent.result_rows[0][0]) > 0


def _catalog_step(client: Client, pixel: Pixel, base: str) -> Step:
    """Done once a full pull succeeded; the title carries the match rate, which
    says whether Dynamic Showcase Ads can find the products events name."""
    runs = CatalogStore(lambda: client).runs(pixel.id, limit=20, kind="full")
    synced = any(r.status == "ok" for r in runs)
    title = "Catalog synced"
    if synced:
        rate = match_rate(client, pixel.id)
        if rate.rate is not None:
            title += f": {rate.rate * 100:.0f}% of product ids match it"
    return Step(title, synced,
                "set the store id and store API token, then run `pixel-server catalog sync`",
                f"{base}/settings")  # fmt: skip


def steps(client: Client, pixel: Pixel) -> list[Step]:
    p = {"p": pixel.id}
    browser, seen, webhook = client.query(
        _EVENTS_SQL, parameters={**p, "names": list(FUNNEL)}
    ).result_rows[0]
    merged = client.query(_MERGED_SQL, parameters=p).result_rows[0][0] > 0
    base = f"/dashboard/{pixel.id}"
    out = [
        Step("Snippet seen on the storefront", bool(browser),
             "put the tag on every page of the store, then open one", f"/install/{pixel.id}"),
    ]  # fmt: skip
    for name in FUNNEL:
        out.append(
            Step(f"{name} seen", name in seen,
                 f"do a {name} on the store (the live view shows it arrive)", f"{base}/live")
        )  # fmt: skip
    out += [
        Step("Order webhook received", bool(webhook),
             "register the store's order webhook and set its secret", f"{base}/settings"),
        Step("Browser and server purchase copies merged", merged,
             "send purchases from the store's back end too, with the same event_id",
             f"{base}/live"),
        Step("TikTok credentials verified", _tiktok_verified(client, pixel.id),
             "enter the TikTok pixel code and access token, then Check TikTok connection",
             f"{base}/settings#check-tiktok"),
        _catalog_step(client, pixel, base),
    ]  # fmt: skip
    return out
