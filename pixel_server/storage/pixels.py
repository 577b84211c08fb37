"""The pixel registry and report tokens, kept in ClickHouse.

Every change inserts a new version of the row (ReplacingMergeTree + FINAL), so
an update is one insert. Secrets we issue (API key, report tokens) are stored
as SHA-256 hashes only. Credentials we must *use* (TikTok access token, webhook
secret, store API token) are sealed with the server's secret key
(:mod:`pixel_server.secretbox`) before they are written, opened when read, and
never printed or logged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from clickhouse_connect.driver.client import Client

from pixel_server import credentials
from pixel_server.pixel import (
    ROLES,
    SECRET_FIELDS,
    Pixel,
    RegistryError,
    check_store_id,
    validate_changes,
)
from pixel_server.secretbox import SecretBox

_COLUMNS = [f.name for f in fields(Pixel)]


def _row(pixel: Pixel, version: int, box: SecretBox) -> list[Any]:
    values = asdict(pixel)
    for name in SECRET_FIELDS:
        values[name] = box.seal(values[name], f"{pixel.id}/{name}")
    values["origins"] = list(pixel.origins)
    values["created_at"] = int(pixel.created_at * 1000)
    values["updated_at"] = int(pixel.updated_at * 1000)
    return [version] + [values[c] for c in _COLUMNS]


def _from_row(row: dict[str, Any], box: SecretBox) -> Pixel:
    values = {c: row[c] for c in _COLUMNS}
    for name in SECRET_FIELDS:
        values[name] = box.open(values[name], f"{values['id']}/{name}")
    values["origins"] = tuple(row["origins"])
    values["created_at"] = row["created_at"].timestamp()
    values["updated_at"] = row["updated_at"].timestamp()
    return Pixel(**values)


@dataclass(frozen=True)
class ReportToken:
    token_hash: str
    pixel_id: str
    role: str
    label: str
    created_at: float
    revoked: bool = False
    pixel_ids: tuple[str, ...] = ()  # an agency token's pixels; () means (pixel_id,)
    expires_at: float = 0.0  # Unix seconds; 0: never

    @property
    def id(self) -> str:
        return credentials.token_id(self.token_hash)

    @property
    def pixels(self) -> tuple[str, ...]:
        return self.pixel_ids or (self.pixel_id,)

    def valid(self, now: float) -> bool:
        return not self.revoked and (not self.expires_at or now < self.expires_at)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pixel_id": self.pixel_id,
            "pixel_ids": list(self.pixels),
            "role": self.role,
            "label": self.label,
            "created_at": self.created_at,
            "expires_at": self.expires_at or None,
            "revoked": self.revoked,
        }


class PixelStore:
    """Reads and writes pixels and report tokens; thread-safe."""

    def __init__(self, client: Client, box: SecretBox) -> None:
        self._client = client
        self._box = box
        self._lock = threading.Lock()
        self._last_version = 0

    def _version(self) -> int:
        # Strictly increasing even when two writes share a nanosecond tick.
        self._last_version = max(time.time_ns(), self._last_version + 1)
        return self._last_version

    def _write(self, pixel: Pixel) -> None:
        self._client.insert(
            "pixels",
            [_row(pixel, self._version(), self._box)],
            column_names=["version", *_COLUMNS],
        )

    # pixels ---------------------------------------------------------------

    def list(self) -> list[Pixel]:
        result = self._client.query(f"SELECT {', '.join(_COLUMNS)} FROM pixels FINAL ORDER BY id")
        return [
            _from_row(dict(zip(_COLUMNS, r, strict=True)), self._box) for r in result.result_rows
        ]

    def get(self, pixel_id: str) -> Pixel:
        result = self._client.query(
            f"SELECT {', '.join(_COLUMNS)} FROM pixels FINAL WHERE id = {{id:String}}",
            parameters={"id": pixel_id},
        )
        if not result.result_rows:
            raise RegistryError(f"no pixel with id {pixel_id!r}", status=404)
        return _from_row(dict(zip(_COLUMNS, result.result_rows[0], strict=True)), self._box)

    def add(self, **settings: Any) -> tuple[Pixel, str, str]:
        """Create a pixel; returns it with its API key and owner token (shown once)."""
        values = validate_changes(settings)
        if "name" not in values:
            raise RegistryError("a pixel needs a name")
        api_key = credentials.new_api_key()
        with self._lock:
            pixel = Pixel(
                id=credentials.new_pixel_id(),
                api_key_hash=credentials.hash_secret(api_key),
                **values,
            )
            check_store_id(pixel)
            self._write(pixel)
        owner_token = self.add_token(pixel.id, "owner", label="created with the pixel")
        return pixel, api_key, owner_token

    def update(self, pixel_id: str, **changes: Any) -> Pixel:
        values = validate_changes(changes)
        with self._lock:
            pixel = replace(self.get(pixel_id), **values, updated_at=time.time())
            check_store_id(pixel)
            self._write(pixel)
        return pixel

    def reseal(self) -> int:
        """Write anew every pixel with a secret in clear or under an old key, then
        merge the old versions away; the number of pixels rewritten."""
        columns = ", ".join(SECRET_FIELDS)
        stale = [
            pixel_id
            for pixel_id, *values in self._client.query(
                f"SELECT id, {columns} FROM pixels FINAL"
            ).result_rows
            if not all(self._box.sealed_with_current(v) for v in values)
        ]
        with self._lock:
            for pixel_id in stale:
                self._write(self.get(pixel_id))
        if stale:
            self._client.command("OPTIMIZE TABLE pixels FINAL")
        return len(stale)

    def rotate_key(self, pixel_id: str) -> tuple[Pixel, str]:
        return self._rotate(pixel_id, "api_key_hash", credentials.new_api_key())

    def rotate_feed_token(self, pixel_id: str) -> tuple[Pixel, str]:
        """A new catalog feed token (the old feed URL stops working at once)."""
        return self._rotate(pixel_id, "feed_token_hash", credentials.new_feed_token())

    def _rotate(self, pixel_id: str, hash_field: str, secret: str) -> tuple[Pixel, str]:
        with self._lock:
            pixel = replace(
                self.get(pixel_id),
                **{hash_field: credentials.hash_secret(secret)},
                updated_at=time.time(),
            )
            self._write(pixel)
        return pixel, secret

    # report tokens -------------------------------------------------------

    def add_token(
        self,
        pixel_id: str | Sequence[str],
        role: str,
        label: str = "",
        expires_at: float = 0.0,
    ) -> str:
        """Issue a token for one pixel or several (an agency's); shown once."""
        pixel_ids = (pixel_id,) if isinstance(pixel_id, str) else tuple(dict.fromkeys(pixel_id))
        if role not in ROLES:
            raise RegistryError(f"role must be one of {', '.join(ROLES)}")
        if not pixel_ids:
            raise RegistryError("a token needs at least one pixel")
        if len(label) > 200:
            raise RegistryError("label must be at most 200 characters")
        if expires_at and expires_at <= time.time():
            raise RegistryError("expiry must be in the future")
        for pid in pixel_ids:
            self.get(pid)
        token = credentials.new_report_token()
        self._write_token(
            ReportToken(credentials.hash_secret(token), pixel_ids[0], role, label, time.time(),
                        pixel_ids=pixel_ids if len(pixel_ids) > 1 else (),
                        expires_at=expires_at)
        )  # fmt: skip
        return token

    def _write_token(self, token: ReportToken) -> None:
        self._client.insert(
            "report_tokens",
            [[token.token_hash, self._version(), token.pixel_id, token.role, token.label,
              int(token.created_at * 1000), token.revoked, list(token.pixel_ids),
              int(token.expires_at * 1000)]],
            column_names=["token_hash", "version", "pixel_id", "role", "label",
                          "created_at", "revoked", "pixel_ids", "expires_at"],
        )  # fmt: skip

    def tokens(self, pixel_id: str | None = None) -> list[ReportToken]:
        """Tokens (of one pixel: those that may read it, agency tokens included)."""
        where = "WHERE pixel_id = {p:String} OR has(pixel_ids, {p:String})" if pixel_id else ""
        result = self._client.query(
            "SELECT token_hash, pixel_id, role, label, created_at, revoked, pixel_ids, "
            f"toUnixTimestamp64Milli(expires_at) FROM report_tokens FINAL {where} "
            "ORDER BY created_at",
            parameters={"p": pixel_id} if pixel_id else None,
        )
        return [
            ReportToken(h, p, role, label, created.timestamp(), bool(revoked),
                        tuple(pids), expires / 1000)
            for h, p, role, label, created, revoked, pids, expires in result.result_rows
        ]  # fmt: skip

    def revoke_token(self, token_or_id: str, pixel_id: str | None = None) -> ReportToken:
        """Revoke a token (of ``pixel_id`` when given: a pixel's owner revokes its own)."""
        key = token_or_id.strip()
        wanted = credentials.hash_secret(key) if key.startswith(credentials.TOKEN_PREFIX) else key
        found = [t for t in self.tokens(pixel_id) if t.token_hash == wanted or t.id == wanted]
        if len(found) != 1:
            raise RegistryError(f"no token {key[:16]!r}", status=404)
        token = replace(found[0], revoked=True)
        self._write_token(token)
        return token
