"""The audit log: who changed a pixel's settings or team, when, and what.

One row per change in ``audit_log`` (migration 0009). *Who* is the console
token's label and id, or ``command line`` for the CLI and the admin API.
*What* is a JSON object: for settings, each changed field with its new value,
except credentials, which appear only as ``set``, ``changed`` or ``cleared``:
a secret's value never reaches this table (nor the page that shows it).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from clickhouse_connect.driver.client import Client

from pixel_server.pixel import EDITABLE, SECRET_FIELDS, Pixel

COMMAND_LINE: Final = "command line"


def _secret_change(before: str, after: str) -> str:
    if not after:
        return "cleared"
    return "set" if not before else "changed"


def settings_diff(before: Pixel, after: Pixel) -> dict[str, Any]:
    """The fields that differ, with their new values (secrets as set/changed/cleared)."""
    old, new = asdict(before), asdict(after)
    out: dict[str, Any] = {}
    for name in EDITABLE:
        if old[name] == new[name]:
            continue
        if name in SECRET_FIELDS:
            out[name] = _secret_change(old[name], new[name])
        else:
            value = new[name]
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def record(client: Client, pixel_id: str, actor: str, action: str, changes: dict[str, Any]) -> None:
    client.insert(
        "audit_log",
        [
            [
                pixel_id,
                round(time.time() * 1000),
                actor[:200],
                action,
                orjson.dumps(changes).decode(),
            ]
        ],
        column_names=["pixel_id", "at", "actor", "action", "changes"],
    )


def record_settings(client: Client, actor: str, before: Pixel, after: Pixel) -> dict[str, Any]:
    """Record a settings change (nothing when nothing changed); returns the diff."""
    diff = settings_diff(before, after)
    if diff:
        record(client, after.id, actor, "settings", diff)
    return diff


def entries(client: Client, pixel_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The newest entries first."""
    result = client.query(
        "SELECT toUnixTimestamp64Milli(at), actor, action, changes FROM audit_log "
        "WHERE pixel_id = {p:String} ORDER BY at DESC LIMIT {n:UInt32}",
        parameters={"p": pixel_id, "n": max(1, min(limit, 1000))},
    )
    return [
        {
            "at": datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds"),
            "actor": actor,
            "action": action,
            "changes": orjson.loads(changes),
        }
        for ms, actor, action, changes in result.result_rows
    ]
