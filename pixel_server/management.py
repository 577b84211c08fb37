"""Management operations shared by the CLI and the server's local admin API.

Each operation takes and returns plain JSON values, so ``pixel-server pixel
...`` prints the same thing whether it opened the data directory itself or
asked the running server to do the work.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pixel_server.catalog import operations as catalog_operations
from pixel_server.storage.database import Database
from pixel_server.storage.pixels import PixelStore, RegistryError

Operation = Callable[["Management", dict[str, Any]], Any]


class Management:
    def __init__(
        self,
        database: Database,
        on_change: Callable[[], None] | None = None,
        data_dir: Path | None = None,  # where the forwarder's retry store lives (replay)
    ) -> None:
        self.database = database
        self.data_dir = data_dir
        self._on_change = on_change or (lambda: None)

    @property
    def store(self) -> PixelStore:
        return PixelStore(self.database.client())

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
    return m.store.update(changes.pop("id"), **changes).public()


def _pixel_rotate_key(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    pixel, api_key = m.store.rotate_key(args["id"])
    return {**pixel.public(), "api_key": api_key}


def _token_add(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    token = m.store.add_token(args["pixel"], args["role"], args.get("label", ""))
    return {"pixel_id": args["pixel"], "role": args["role"], "token": token}


def _token_list(m: Management, args: dict[str, Any]) -> list[dict[str, Any]]:
    return [t.public() for t in m.store.tokens(args.get("pixel"))]


def _token_revoke(m: Management, args: dict[str, Any]) -> dict[str, Any]:
    return m.store.revoke_token(args["token"]).public()


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


def _parse_time(value: Any, name: str) -> float:
    """An ISO-8601 time (UTC when it names no zone) as Unix seconds; None is 0."""
    if value in (None, ""):
        return 0.0
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise RegistryError(f"{name} must be an ISO-8601 time, got {value!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


OPERATIONS: dict[str, Operation] = {
    "pixel.add": _pixel_add,
    "pixel.list": _pixel_list,
    "pixel.show": _pixel_show,
    "pixel.update": _pixel_update,
    "pixel.rotate_key": _pixel_rotate_key,
    "token.add": _token_add,
    "token.list": _token_list,
    "token.revoke": _token_revoke,
    "migrate": _migrate,
    "deliveries.list": _deliveries_list,
    "deliveries.replay": _deliveries_replay,
    **catalog_operations.OPERATIONS,
}
READ_ONLY = {"pixel.list", "pixel.show", "token.list", "migrate", "deliveries.list",
             *catalog_operations.READ_ONLY}  # fmt: skip
