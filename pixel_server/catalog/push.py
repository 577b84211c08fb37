"""Push the catalog to TikTok's Catalog API (optional per pixel).

A pixel with ``tiktok_catalog_id``, ``tiktok_bc_id`` and its TikTok access
token gets its catalog uploaded, besides (or instead of) the feed URL:

* ``POST {tiktok_api_base}/open_api/v1.3/catalog/product/upload/`` with
  ``{bc_id, catalog_id, products}``, at most :data:`UPLOAD_BATCH` products per
  request (the limit TikTok's integrations keep to); a product is the item in
  TikTok's JSON shape (:func:`product_json`);
* ``POST .../catalog/product/delete/`` with ``{bc_id, catalog_id, sku_ids}``,
  at most :data:`DELETE_BATCH` per request, for items that were uploaded and
  have since been deleted, hidden or become invalid.

What to send is worked out from ``catalog_pushes``, where every item's part in
every request is a row: an item is uploaded when its content hash differs from
the one last sent (or rejected), so a push after an unchanged sync sends
nothing, and an item that failed is tried again by the next push.

Answers are classified by the event forwarder's own rules
(:func:`pixel_server.sinks.answers.classify`): network errors, 5xx, 429 and
TikTok's 40100 are retried with its :class:`~pixel_server.sinks.answers.RetryPolicy`
(a resent batch replaces the same sku_ids, so it never duplicates); a 40002
batch is bisected so its good items still go and the bad one is recorded as
``rejected`` with TikTok's message (it is not sent again until it changes);
other permanent answers (no permission, bad token) end the push: the batch's
items are ``dead`` with the message, and are tried again by a later push
(after the settings are fixed). A push that runs out of retries ends the same
way.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import httpx
import orjson

from pixel_server.catalog.model import Item
from pixel_server.catalog.store import CatalogStore, PushAttempt, SyncRun
from pixel_server.pixel import Pixel
from pixel_server.sinks.answers import Answer, RetryPolicy, classify

UPLOAD_PATH: Final = "/open_api/v1.3/catalog/product/upload/"
DELETE_PATH: Final = "/open_api/v1.3/catalog/product/delete/"
UPLOAD_BATCH: Final = 20
DELETE_BATCH: Final = 1000
INVALID_PARAMETER: Final = 40002
_OPTIONAL: Final = ("item_group_id", "google_product_category", "product_type", "color", "size",
                    "material", "pattern", "gender", "gtin", "mpn")  # fmt: skip


def configured(pixel: Pixel) -> bool:
    return bool(pixel.enabled and pixel.tiktok_catalog_id and pixel.tiktok_bc_id
                and pixel.tiktok_access_token)  # fmt: skip


def product_json(item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sku_id": item.sku_id, "title": item.title, "description": item.description,
        "availability": item.availability.upper().replace(" ", "_"),
        "condition": item.condition.upper(),
        "price": {"price": str(item.price), "currency": item.currency},
        "landing_page_url": item.link, "image_link": item.image_link, "brand": item.brand,
    }  # fmt: skip
    if item.sale_price is not None:
        out["sale_price"] = {"sale_price": str(item.sale_price), "currency": item.currency}
    if item.additional_image_links:
        out["additional_image_link"] = list(item.additional_image_links)
    for key in _OPTIONAL:
        if value := getattr(item, key):
            out[key] = value
    return out


@dataclass(slots=True)
class _Entry:
    sku_id: str
    content_hash: str
    payload: Any  # the product (upload) or the sku_id (delete)


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class _Stop(Exception):
    """The push ends here (permanent answer, or retries exhausted)."""


class CatalogPush:
    def __init__(
        self,
        store: CatalogStore,
        policy: RetryPolicy | None = None,
        *,
        max_attempts: int = 6,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.policy = policy or RetryPolicy()
        self.max_attempts = max_attempts
        self.timeout = timeout
        self._sleep = sleep

    def plan(self, pixel_id: str) -> tuple[list[str], list[str]]:
        """(sku_ids to upload, sku_ids to delete) for the pixel now."""
        state = self.store.push_state(pixel_id)
        pushed = self.store.pushed(pixel_id)
        uploads = sorted(s for s, (h, valid) in state.items()
                         if valid and pushed.get(s, ("", "", ""))[:2] != (h, "upload"))  # fmt: skip
        deletes = sorted(s for s, (_, action, outcome) in pushed.items()
                         if action == "upload" and outcome == "sent"
                         and not state.get(s, ("", False))[1])  # fmt: skip
        return uploads, deletes

    def push(self, pixel: Pixel) -> SyncRun:
        run = SyncRun(pixel.id, uuid.uuid4().hex, "push")
        if not configured(pixel):
            run.status, run.error = (
                "failed",
                (
                    "the pixel has no TikTok catalog: set --tiktok-catalog-id, --tiktok-bc-id "
                    "and --tiktok-access-token"
                ),
            )
            run.finished_at = time.time()
            return run
        uploads, deletes = self.plan(pixel.id)
        headers = {"access-token": pixel.tiktok_access_token, "content-type": "application/json"}
        try:
            with httpx.Client(base_url=pixel.tiktok_api_base, headers=headers,
                              timeout=self.timeout) as http:  # fmt: skip
                for batch in _chunks(uploads, UPLOAD_BATCH):
                    found = self.store.items(pixel.id, batch)
                    entries = [_Entry(s, found[s].content_hash(), product_json(found[s]))
                               for s in batch if s in found]  # fmt: skip
                    self._send(http, pixel, "upload", entries, run)
                for batch in _chunks(deletes, DELETE_BATCH):
                    self._send(http, pixel, "delete", [_Entry(s, "", s) for s in batch], run)
            run.status = "ok"
        except _Stop as exc:
            run.status, run.error = "failed", str(exc)
        run.finished_at = time.time()
        self.store.record(run)
        return run

    def _send(
        self, http: httpx.Client, pixel: Pixel, action: str, entries: list[_Entry], run: SyncRun
    ) -> None:
        if not entries:
            return
        key, path = ("products", UPLOAD_PATH) if action == "upload" else ("sku_ids", DELETE_PATH)
        body = orjson.dumps({"bc_id": pixel.tiktok_bc_id, "catalog_id": pixel.tiktok_catalog_id,
                             key: [e.payload for e in entries]})  # fmt: skip
        failures = 0
        while True:
            answer = self._post(http, path, body)
            outcome = {"sent": "sent", "retry": "retrying", "dead": "dead"}[answer.kind]
            bisect = answer.kind == "dead" and answer.code == INVALID_PARAMETER
            if bisect and len(entries) == 1:
                outcome = "rejected"
            if not (bisect and len(entries) > 1):
                self._record(pixel, action, entries, outcome, failures + 1, answer)
            if answer.kind == "sent":
                if action == "upload":
                    run.changed += len(entries)
                else:
                    run.deleted += len(entries)
                return
            if bisect:
                if len(entries) == 1:
                    run.invalid += 1
                    return
                half = len(entries) // 2
                self._send(http, pixel, action, entries[:half], run)
                self._send(http, pixel, action, entries[half:], run)
                return
            if answer.kind == "dead":
                raise _Stop(f"TikTok refused the {action}: {answer.code} {answer.message}")
            failures += 1
            if failures >= self.max_attempts:
                raise _Stop(f"TikTok did not take the {action} after {failures} attempts: "
                            f"{answer.message}")  # fmt: skip
            self._sleep(self.policy.delay(failures, answer.retry_after))

    def _post(self, http: httpx.Client, path: str, body: bytes) -> Answer:
        try:
            response = http.post(path, content=body)
        except httpx.HTTPError as exc:
            return Answer("retry", 0, 0, f"{type(exc).__name__}: {exc}")
        return classify(response.status_code, response.content, response.headers.get("retry-after"))

    def _record(self, pixel: Pixel, action: str, entries: list[_Entry], outcome: str,
                attempt: int, answer: Answer) -> None:  # fmt: skip
        now = datetime.now(UTC)
        self.store.record_pushes([
            PushAttempt(pixel.id, e.sku_id, e.content_hash, action, outcome, attempt,
                        answer.http_status, answer.code, answer.message[:1000],
                        answer.request_id, now)
            for e in entries
        ])  # fmt: skip
