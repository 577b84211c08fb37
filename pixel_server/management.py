"""Management operations shared by the CLI and the server's local admin API.

Each operation takes and returns plain JSON values, so ``pixel-server pixel
...`` prints the same thing whether it opened the data directory itself or
asked the running server to do the work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pixel_server.catalog import operations as catalog_operations
from pixel_server.pipeline.erasures import FILE_NAME as ERASURES_FILE
from pixel_server.pipeline.erasures import Erasures
from pixel_server.pixel import RegistryError
from pixel_server.secretbox import SecretBox
from pixel_server.storage import audit
from pixel_server.storage.database import Database
from pixel_server.storage.pixels import PixelStore

Operation = Callable[["Management", dict[str, Any]], Any]


class Management:
    def __init__(
        self,
        database: Database,
        on_change: Callable[[], None] | None = None,
        data_dir: Path | None = None,  # where the forwarder's retry store lives (replay)
        status: Callable[[], dict[str, Any]] | None = None,  # the running server's readiness
        *,
        box: SecretBox,
        erasures: Erasures | None = None,  # the running loader's and forwarder's
    ) -> None:
        self.database = database
        self.box = box
        self.data_dir = data_dir
        self.erasures = erasures or Erasures(data_dir / ERASURES_FILE if data_dir else None)
        self.status = status
        self._on_change = on_change or (lambda: None)

    @property
    def store(self) -> PixelStore:
        return PixelStore(self.database.client(), self.box)

    def run(self, op: str, args: dict[str, Any]) -> Any:
        handler = OPERATIONS.get(op)
        if handler is None:
            raise RegistryError(f"unknown operation {op!r}", status=404)
        result = handler(self, args)
        if op not in READ_ONLY:
            self._on_change()
        return result


def _pixel_add(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    pixel, api_key, owner_token = m.store.add(**args)
    return {**pixel.public(), "api_key": api_key, "owner_token": owner_token}


def _pixel_list(m: Management, args: dict[str, Any]) -> list[dict[str, Any]]:
    return [p.public() for p in m.store.list()]


def _pixel_show(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    return m.store.get(args["id"]).public()


def _pixel_update(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    changes = dict(args)
    actor = str(changes.pop("actor", "") or audit.COMMAND_LINE)  # the console names its token
    pixel_id = changes.pop("id")
    before = m.store.get(pixel_id)
    after = m.store.update(pixel_id, **changes)
    audit.record_settings(m.database.client(), actor, before, after)
    if after.raw_retention_months != before.raw_retention_months:
        from pixel_server.storage.events import EventStore

        EventStore(m.database.client).apply_retention(pixel_id, after.raw_retention_months)
    if m.data_dir is not None:  # first TikTok credentials: send what was stored meanwhile
        from pixel_server.sinks import backfill

        backfill.request(m.database.client(), m.data_dir / backfill.JOBS_DIR, before, after,
                         time.time())  # fmt: skip
    return after.public()


def _pixel_rotate_key(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    pixel, api_key = m.store.rotate_key(args["id"])
    return {**pixel.public(), "api_key": api_key}


def _token_add(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    """One pixel (``pixel``) or several (``pixels``, an agency's); optional expiry."""
    pixels = args.get("pixels") or [args["pixel"]]
    if isinstance(pixels, str):
        pixels = [p.strip() for p in pixels.split(",") if p.strip()]
    expires_at = _parse_time(args.get("expires"), "expires")
    label = str(args.get("label") or "")
    token = m.store.add_token(pixels, args["role"], label, expires_at)
    actor = str(args.get("actor") or audit.COMMAND_LINE)
    for pixel_id in dict.fromkeys(pixels):
        audit.record(m.database.client(), pixel_id, actor, "token.add",
                     {"role": args["role"], "label": label, "pixels": list(pixels),
                      "expires_at": expires_at or None})  # fmt: skip
    return {"pixel_id": pixels[0], "pixel_ids": list(pixels), "role": args["role"],
            "expires_at": expires_at or None, "token": token}  # fmt: skip


def _token_list(m: Management, args: dict[str, Any]) -> list[dict[str, Any]]:
    return [t.public() for t in m.store.tokens(args.get("pixel"))]


def _token_revoke(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    token = m.store.revoke_token(args["token"], args.get("pixel"))
    actor = str(args.get("actor") or audit.COMMAND_LINE)
    for pixel_id in token.pixels:
        audit.record(m.database.client(), pixel_id, actor, "token.revoke",
                     {"token": token.id, "label": token.label, "role": token.role})  # fmt: skip
    return token.public()


def _audit_list(m: Management, args: dict[str, Any]) -> list[dict[str, Any]]:
    m.store.get(args["pixel"])
    return audit.entries(m.database.client(), args["pixel"], int(args.get("limit", 50)))


def _migrate(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    from pixel_server.storage import migrate

    client = m.database.client()  # connecting applies pending migrations
    return {"applied": [m.version for m in migrate.available() if m.version in
                        migrate.applied_versions(client)]}  # fmt: skip


def _deliveries_list(m: Management, args: dict[str, Any]) -> list[dict[str, Any]]:
    from pixel_server.sinks import ledger

    m.store.get(args["pixel"])  # an unknown pixel is a 404, not an empty list
    status = args.get("status")
    if status is not None and status not in ledger.OUTCOMES:
        raise RegistryError(f"status must be one of {', '.join(ledger.OUTCOMES)}")
    return ledger.list_deliveries(
        m.database.client(), args["pixel"], status, int(args.get("limit", 100))
    )


def _deliveries_replay(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    from pixel_server.sinks import ledger, tiktok

    m.store.get(args["pixel"])
    if m.data_dir is None:
        raise RegistryError("replay needs the server's data directory", status=500)
    since = _parse_time(args.get("since"), "since")
    spill_root = m.data_dir / tiktok.SPILL_DIR
    return ledger.replay(m.database.client(), spill_root, args["pixel"], since)


def _rotate_secret_key(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    """Seal every stored credential under a new key; the old key goes only after."""
    old = m.box.current_key_id
    new = m.box.begin_rotation()
    resealed = m.store.reseal()
    m.box.finish_rotation()
    return {"old_key_id": old, "new_key_id": new, "pixels_resealed": resealed}


def _erase(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    """Delete every event of one person (docs/security.md, "Erasure")."""
    from pixel_server.events import normalise
    from pixel_server.pipeline.erasures import KINDS, Tombstone
    from pixel_server.sinks.clickhouse import QUARANTINE_FILE, drop_from_quarantine
    from pixel_server.storage import erasure

    pixel = m.store.get(args["pixel"])
    given = [(kind, str(args[kind])) for kind in KINDS if args.get(kind)]
    if len(given) != 1:
        raise RegistryError("name exactly one of email, phone, external_id, anonymous_id")
    kind, raw = given[0]
    hashed = {
        "email": lambda v: normalise.hash_email(v),
        "phone": lambda v: normalise.hash_phone(v, pixel.default_phone_region),
        "external_id": lambda v: normalise.hash_external_id(v),
        "anonymous_id": lambda v: normalise.sha256_hex(v.strip()) if v.strip() else None,
    }[kind](raw)
    if not hashed:
        raise RegistryError(f"the {kind.replace('_', ' ')} given is not valid")
    at = time.time()
    client = m.database.client()
    # Tombstone first, so the loader stops storing the person's copies; then
    # delete; then once more, for a batch that was being inserted meanwhile.
    m.erasures.add([Tombstone(pixel.id, kind, hashed, at)])
    erased = erasure.erase(client, pixel.id, kind, hashed)
    m.erasures.add([Tombstone(pixel.id, "anonymous_id", a, at) for a in erased.anonymous_ids])
    erased.add(erasure.erase(client, pixel.id, kind, hashed))
    quarantined = (
        drop_from_quarantine(m.data_dir / QUARANTINE_FILE, m.erasures) if m.data_dir else 0
    )
    actor = str(args.get("actor") or audit.COMMAND_LINE)
    erasure.record(client, pixel.id, actor, kind, hashed, erased, {"quarantined": quarantined})
    return {"pixel_id": pixel.id, "kind": kind, **erased.as_json(), "quarantined": quarantined}


def _erasures_list(m: Management, args: dict[str, Any]) -> list[dict[str, Any]]:
    from pixel_server.storage import erasure

    m.store.get(args["pixel"])
    return erasure.entries(m.database.client(), args["pixel"], int(args.get("limit", 50)))


def _status(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    if m.status is not None:
        return m.status()
    problem = m.database.check()
    return {
        "ready": False,
        "checks": {"server": "not running", "clickhouse": problem or "ok"},
    }


def _parse_time(value: Any, name: str) -> float:
    """An ISO-8601 time (UTC when it names no zone) as Unix seconds; None is 0."""
    if value in (None, ""):
        return 0.0
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise RegistryError(f"{name} must be an ISO-8601 time, got {value!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _store_connection(action: str) -> Operation:
    """connect / disconnect / connect.status: the pixel's store, through its API.
    ``base_url`` is this server's public URL (what the store's script and
    webhooks point at)."""

    def run(m: Management, args: dict[str, Any]) -> Any:
        from pixel_server import connect

        pixel = m.store.get(args["pixel"])
        operation = {"connect": connect.connect, "disconnect": connect.disconnect,
                     "status": connect.health}[action]  # fmt: skip
        try:
            return operation(m.database.client(), pixel, str(args["base_url"]))
        except connect.ConnectError as exc:
            raise RegistryError(
                exc.report(), status=502 if exc.code == "unavailable" else 400
            ) from None

    return run


OPERATIONS: dict[str, Operation] = {
    "pixel.add": _pixel_add,
    "pixel.list": _pixel_list,
    "pixel.show": _pixel_show,
    "pixel.update": _pixel_update,
    "pixel.rotate_key": _pixel_rotate_key,
    "token.add": _token_add,
    "token.list": _token_list,
    "token.revoke": _token_revoke,
    "audit.list": _audit_list,
    "migrate": _migrate,
    "deliveries.list": _deliveries_list,
    "deliveries.replay": _deliveries_replay,
    "status": _status,
    "erase": _erase,
    "erasures.list": _erasures_list,
    "secrets.rotate_key": _rotate_secret_key,
    "connect": _store_connection("connect"),
    "disconnect": _store_connection("disconnect"),
    "connect.status": _store_connection("status"),
    **catalog_operations.OPERATIONS,
}
# Store connections change no pixel setting: no registry refresh after them.
READ_ONLY = {
    "pixel.list", "pixel.show", "token.list", "audit.list", "migrate", "deliveries.list", "status",
    "erase", "erasures.list",
    "connect", "disconnect", "connect.status", *catalog_operations.READ_ONLY,
}  # fmt: skip
