"""The pixel registry and report tokens, kept in ClickHouse.

Every change inserts a new version of the row (ReplacingMergeTree + FINAL), so
an update is one insert. Secrets we issue (API key, report tokens) are stored
as SHA-256 hashes only. Credentials we must *use* (TikTok access token, webhook
secret, store API token) are sealed with the server's secret key
(:mod:`pixel_server.secretbox`) before they are written, opened when read, and
never printed or logged.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from clickhouse_connect.driver.client import Client

from pixel_server import credentials, zones
from pixel_server.events.schema import ISO_4217_CODES
from pixel_server.secretbox import SecretBox

PLATFORMS = ("ecwid", "bigcommerce", "shopify", "woocommerce", "html")
ROLES = ("owner", "reader")
SECRET_FIELDS = ("tiktok_access_token", "webhook_secret", "store_api_token")
_TIKTOK_CODE = re.compile(r"^[A-Z0-9]{5,40}$")
# What each platform calls a store (checked once platform and store id are both known).
_STORE_ID_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "ecwid": (re.compile(r"^[0-9]{1,12}$"), "an Ecwid store id is digits, e.g. 1003"),
    "bigcommerce": (
        re.compile(r"^[a-z0-9]{4,32}$"),
        "a BigCommerce store hash is letters and digits, e.g. abc123def",
    ),
    "shopify": (
        re.compile(r"^[a-z0-9][a-z0-9-]{0,60}\.myshopify\.com$"),
        "a Shopify store id is its shop domain, e.g. acme.myshopify.com",
    ),
}


class RegistryError(Exception):
    """A registry request is wrong (unknown pixel, bad value). Safe to show."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Pixel:
    id: str
    name: str
    platform: str = "html"
    origins: tuple[str, ...] = ()
    enabled: bool = True
    timezone: str = "UTC"
    default_phone_region: str = "US"
    ip_truncation: bool = False
    forward_browser: bool = False
    load_tiktok_pixel: bool = False
    # TikTok's own pixel is on the store's pages: feed it our adapters' events too.
    mirror_to_tiktok_pixel: bool = False
    api_key_hash: str = ""
    tiktok_pixel_code: str = ""
    tiktok_access_token: str = ""
    tiktok_test_event_code: str = ""
    tiktok_api_base: str = "https://business-api.tiktok.com"
    webhook_secret: str = ""
    store_id: str = ""  # Ecwid store id, BigCommerce store hash, Shopify domain, Woo site URL
    store_api_base: str = ""
    store_api_token: str = ""
    consent_mode: str = "granted"  # "hold": send nothing until ttq.grantConsent()
    currency: str = ""  # the store's currency, for platforms whose events lack one
    click_window_days: int = 7
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        """Settings safe to show: secrets replaced by whether they are set."""
        out = asdict(self)
        out.pop("api_key_hash")
        out["origins"] = list(self.origins)
        for name in SECRET_FIELDS:
            out[name] = bool(out[name])
        return out


# Fields an operator may change with `pixel update` (validated below).
EDITABLE = tuple(
    f.name
    for f in fields(Pixel)
    if f.name not in ("id", "api_key_hash", "created_at", "updated_at")
)


def normalise_origin(value: str) -> str:
    if value.strip() == "null":
        # The opaque origin of sandboxed iframes, e.g. Shopify's custom pixels.
        return "null"
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RegistryError(f"origin {value!r} must look like https://shop.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise RegistryError(f"origin {value!r} must be scheme://host[:port] with no path")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def _http_url(name: str, value: str) -> str:
    value = value.strip().rstrip("/")
    if value and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname):
        raise RegistryError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def validate_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise operator-supplied values; unknown keys are errors."""
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if value is None:
            continue
        if key not in EDITABLE:
            raise RegistryError(f"{key} is not a pixel setting")
        if key == "name":
            value = str(value).strip()
            if not 1 <= len(value) <= 200:
                raise RegistryError("name must be 1 to 200 characters")
        elif key == "platform":
            if value not in PLATFORMS:
                raise RegistryError(f"platform must be one of {', '.join(PLATFORMS)}")
        elif key == "origins":
            value = tuple(dict.fromkeys(normalise_origin(v) for v in value))
        elif key == "timezone":
            value = str(value)
            if zones.zone(value) is None:
                raise RegistryError(f"timezone {value[:64]!r} is not an IANA time zone")
        elif key == "default_phone_region":
            value = str(value).upper()
            if value not in phonenumbers.SUPPORTED_REGIONS:
                raise RegistryError(f"default_phone_region {value!r} is not a region code")
        elif key == "tiktok_pixel_code":
            value = str(value).strip()
            if value and not _TIKTOK_CODE.match(value):
                raise RegistryError("tiktok_pixel_code must be letters and digits (e.g. C4A1B2)")
        elif key in ("tiktok_api_base", "store_api_base"):
            value = _http_url(key, str(value))
        elif key == "store_id":
            value = str(value).strip()
            value = _http_url(key, value) if "://" in value else value.lower()
            if len(value) > 255:
                raise RegistryError("store_id must be at most 255 characters")
        elif key == "consent_mode":
            if value not in ("granted", "hold"):
                raise RegistryError("consent_mode must be granted or hold")
        elif key == "currency":
            value = str(value).strip().upper()
            if value and value not in ISO_4217_CODES:
                raise RegistryError(f"currency {value!r} is not an ISO 4217 code")
        elif key == "click_window_days":
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise RegistryError("click_window_days must be a whole number") from None
            if not 1 <= value <= 90:
                raise RegistryError("click_window_days must be between 1 and 90")
        elif key in (
            "enabled", "ip_truncation", "forward_browser", "load_tiktok_pixel",
            "mirror_to_tiktok_pixel",
        ):  # fmt: skip
            value = bool(value)
        else:
            value = str(value).strip()
        out[key] = value
    return out


def check_store_id(pixel: Pixel) -> None:
    """The store id must be what the pixel's platform calls a store."""
    if not pixel.store_id:
        return
    if pixel.platform == "woocommerce":
        if "://" not in pixel.store_id:
            raise RegistryError(
                "a WooCommerce store id is the site's URL, e.g. https://shop.example.com"
            )
        return
    rule = _STORE_ID_RULES.get(pixel.platform)
    if rule is None:
        raise RegistryError(f"store_id has no meaning for platform {pixel.platform}")
    pattern, hint = rule
    if not pattern.match(pixel.store_id):
        raise RegistryError(f"store_id {pixel.store_id[:64]!r} is not valid: {hint}")


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
        api_key = credentials.new_api_key()
        with self._lock:
            pixel = replace(
                self.get(pixel_id),
                api_key_hash=credentials.hash_secret(api_key),
                updated_at=time.time(),
            )
            self._write(pixel)
        return pixel, api_key

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
