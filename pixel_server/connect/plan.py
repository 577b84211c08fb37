"""The shared shape of connecting a store: what we want, what exists, what we made.

A platform module describes its store through the :class:`Connector` contract;
:func:`connect` and :func:`disconnect` do the rest the same way everywhere:

1. ``check_access``: the token works and has every scope needed (else
   :class:`ConnectError` ``missing_scope`` naming it, before anything is made);
2. for each :class:`Wanted` resource (the script or web pixel, one webhook per
   topic): kept when recorded and still in the store, adopted when the store
   already has ours (same destination) but it was not recorded, else created
   and recorded at once;
3. a failure part way (revoked token, API down) removes what this run created,
   newest first, and the error says what was rolled back and anything that
   could not be (still recorded, so ``disconnect`` can retry it).

``disconnect`` removes every recorded resource (gone already is fine) and
forgets it; ones the store refused to remove stay recorded and are reported.
Nothing in ClickHouse's event history is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from pixel_server.pixel import Pixel
from pixel_server.storage.connections import ConnectionStore, Created

TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class Unavailable(Exception):
    """This store cannot hold the resource (e.g. a Shopify app without a
    web-pixel extension); the connector's manual steps cover it instead."""


class ConnectError(Exception):
    """Connecting failed; the message is for the merchant. ``code`` is one of
    ``not_configured``, ``unauthorized``, ``missing_scope``, ``unavailable``,
    ``rejected`` (the store refused a payload), ``unsupported``."""

    def __init__(self, code: str, message: str, *, scope: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.scope = scope
        self.rolled_back: list[Created] = []
        self.left_over: list[Created] = []

    def report(self) -> str:
        text = str(self)
        if self.rolled_back:
            text += f"; removed again what this attempt created ({_names(self.rolled_back)})"
        if self.left_over:
            text += (
                f"; could not remove {_names(self.left_over)}: still recorded, "
                "run `pixel-server disconnect` once the store API answers"
            )
        return text


def _names(items: list[Created]) -> str:
    return ", ".join(f"{c.kind} {c.key} ({c.remote_id})" for c in items)


@dataclass(frozen=True)
class Wanted:
    kind: str  # script | web_pixel | webhook
    key: str  # "storefront" or the webhook topic
    destination: str  # the script URL or the webhook URL: how ours is recognised


@dataclass(frozen=True)
class Live:
    """A resource the store has now that is ours (its destination is our URL)."""

    kind: str
    key: str
    remote_id: str
    active: bool = True
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """Where our things live: the pixel's script and its webhook endpoints."""

    pixel: Pixel
    base_url: str

    @property
    def script_url(self) -> str:
        return f"{self.base_url}/p/{self.pixel.id}.js"

    def webhook_url(self, catalog: bool = False) -> str:
        url = f"{self.base_url}/webhooks/{self.pixel.platform}/{self.pixel.id}"
        return url + "/catalog" if catalog else url


class Connector(Protocol):
    platform: str

    def check_access(self) -> None: ...
    def storefront_url(self) -> str: ...
    def close(self) -> None: ...
    def wanted(self) -> list[Wanted]: ...
    def live(self) -> list[Live]: ...
    def create(self, wanted: Wanted) -> Created: ...
    def delete(self, created: Created) -> None: ...
    def manual_steps(self) -> list[str]: ...


@dataclass
class Outcome:
    platform: str
    created: list[Created] = field(default_factory=list)
    kept: list[Created] = field(default_factory=list)
    removed: list[Created] = field(default_factory=list)
    left_over: list[Created] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # what the merchant still does by hand

    def as_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "created": [c.public() for c in self.created],
            "kept": [c.public() for c in self.kept],
            "removed": [c.public() for c in self.removed],
            "left_over": [c.public() for c in self.left_over],
            "steps": self.steps,
        }


def connect(pixel: Pixel, connector: Connector, records: ConnectionStore) -> Outcome:
    connector.check_access()
    outcome = Outcome(connector.platform)
    recorded = {(c.kind, c.key): c for c in records.list(pixel.id)}
    live = {(r.kind, r.key): r for r in connector.live()}
    try:
        for want in connector.wanted():
            key = (want.kind, want.key)
            known, there = recorded.get(key), live.get(key)
            if known is not None and there is not None and known.remote_id == there.remote_id:
                outcome.kept.append(known)
                continue
            if there is not None:  # ours, made before but not recorded (or recorded stale)
                made = Created(
                    want.kind, want.key, there.remote_id, {"destination": want.destination}
                )
                records.record(pixel.id, connector.platform, made)
                outcome.kept.append(made)
                continue
            try:
                made = connector.create(want)
            except Unavailable:
                continue
            records.record(pixel.id, connector.platform, made)
            outcome.created.append(made)
    except ConnectError as exc:
        exc.rolled_back, exc.left_over = _remove(pixel, connector, records, outcome.created)
        raise
    outcome.steps = connector.manual_steps()
    return outcome


def disconnect(pixel: Pixel, connector: Connector, records: ConnectionStore) -> Outcome:
    outcome = Outcome(connector.platform)
    outcome.removed, outcome.left_over = _remove(pixel, connector, records, records.list(pixel.id))
    return outcome


def _remove(
    pixel: Pixel, connector: Connector, records: ConnectionStore, items: list[Created]
) -> tuple[list[Created], list[Created]]:
    """Delete ``items`` from the store, newest first, forgetting each one removed
    (already gone counts as removed); returns (removed, not removed)."""
    removed: list[Created] = []
    left: list[Created] = []
    for made in reversed(items):
        try:
            connector.delete(made)
        except ConnectError:
            left.append(made)
            continue
        records.forget(pixel.id, connector.platform, made)
        removed.append(made)
    return removed, left


# ------------------------------------------------------------------ HTTP


class StoreHttp:
    """A store admin API client that turns every failure into a ConnectError.

    ``scope`` names what a 403 means for that call (the permission the token
    lacks), so the merchant reads which one to add. ``denied_codes``: error
    ``code`` prefixes that mean "no permission" on a 401 (WooCommerce answers
    a key without the permission 401, like a wrong key).
    """

    def __init__(
        self,
        name: str,
        base: str,
        headers: dict[str, str],
        auth: httpx.Auth | None = None,
        denied_codes: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self._denied_codes = denied_codes
        self.base = base.rstrip("/")
        self._http = httpx.Client(
            headers={"accept": "application/json", **headers}, auth=auth, timeout=TIMEOUT
        )

    def close(self) -> None:
        self._http.close()

    def call(
        self, method: str, path: str, *, scope: str = "", json: Any = None, missing_ok: bool = False
    ) -> Any:
        where = f"{self.name} API {method} {path}"
        try:
            response = self._http.request(method, self.base + path, json=json)
        except httpx.HTTPError as exc:
            raise ConnectError(
                "unavailable", f"{where}: no answer ({type(exc).__name__})"
            ) from None
        status = response.status_code
        if status == 404 and missing_ok:
            return None
        if status == 401 and self._denied(response):
            status = 403
        if status == 401:
            raise ConnectError(
                "unauthorized",
                f"{where}: 401: the store refused the API token (wrong or revoked); "
                "set a valid one with `pixel-server pixel update <id> --store-api-token ...`",
            )
        if status == 403:
            need = f": the token lacks the {scope!r} permission" if scope else ""
            raise ConnectError("missing_scope", f"{where}: 403{need}", scope=scope)
        if status == 429 or status >= 500:
            raise ConnectError("unavailable", f"{where}: {status}: the store API is unavailable")
        if status >= 400:
            raise ConnectError("rejected", f"{where}: {status}: {_message(response)}")
        if status == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ConnectError("unavailable", f"{where}: the answer is not JSON") from None

    def _denied(self, response: httpx.Response) -> bool:
        if not self._denied_codes:
            return False
        try:
            code = str(response.json().get("code", ""))
        except (ValueError, AttributeError):
            return False
        return code.startswith(self._denied_codes)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        for key in ("message", "title", "errorMessage", "errors"):
            if body.get(key):
                return str(body[key])[:200]
    return str(body)[:200]


def require(pixel: Pixel, *names: str) -> None:
    """Every named pixel setting is set, else ConnectError ``not_configured``."""
    flags = {
        "store_id": "--store-id",
        "store_api_base": "--store-api-base",
        "store_api_token": "--store-api-token",
        "webhook_secret": "--webhook-secret",
    }
    missing = [flags[n] for n in names if not getattr(pixel, n)]
    if missing:
        raise ConnectError(
            "not_configured",
            f"connect needs {', '.join(missing)}: set with `pixel-server pixel update "
            f"{pixel.id} {' ... '.join(missing)} ...`",
        )
