"""A pixel and its settings: the model every part of the server passes around,
and the rules an operator's changes must follow. No storage here: the registry
keeps pixels in ClickHouse (:mod:`pixel_server.storage.pixels`), workers get
them from the storage process (:mod:`pixel_server.registry`).
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from pixel_server import zones
from pixel_server.events.schema import ISO_4217_CODES

PLATFORMS = ("ecwid", "bigcommerce", "shopify", "woocommerce", "html")
ROLES = ("owner", "reader")
SECRET_FIELDS = ("tiktok_access_token", "webhook_secret", "store_api_token")
_TIKTOK_CODE = re.compile(r"^[A-Z0-9]{5,40}$")
_WHOLE_NUMBERS = {
    "click_window_days": (1, 90),
    "catalog_sync_hours": (0, 720),
    "raw_retention_months": (1, 240),
}
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
    tiktok_catalog_id: str = ""  # TikTok catalog for the Catalog API push (optional)
    tiktok_bc_id: str = ""  # the Business Center that owns that catalog
    catalog_sync_hours: int = 24  # full catalog pull every N hours (0: webhooks only)
    feed_token_hash: str = ""  # the catalog feed URL's token, hashed
    raw_retention_months: int = 25  # raw events are deleted this long after they happened
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        """Settings safe to show: secrets replaced by whether they are set."""
        out = asdict(self)
        out.pop("api_key_hash")
        out["feed_token"] = bool(out.pop("feed_token_hash"))
        out["origins"] = list(self.origins)
        for name in SECRET_FIELDS:
            out[name] = bool(out[name])
        return out


# Fields an operator may change with `pixel update` (validated below).
EDITABLE = tuple(
    f.name
    for f in fields(Pixel)
    if f.name not in ("id", "api_key_hash", "feed_token_hash", "created_at", "updated_at")
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
        elif key in _WHOLE_NUMBERS:
            low, high = _WHOLE_NUMBERS[key]
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise RegistryError(f"{key} must be a whole number") from None
            if not low <= value <= high:
                raise RegistryError(f"{key} must be between {low} and {high}")
        elif key in ("tiktok_catalog_id", "tiktok_bc_id"):
            value = str(value).strip()
            if value and not value.isdigit():
                raise RegistryError(f"{key} must be TikTok's numeric id")
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
