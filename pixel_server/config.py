"""Settings: read once at start from ``PIXEL_*`` environment variables and an
optional TOML file, validated, then passed down as one frozen object.

Nothing below this module reads the environment. A wrong setting raises
:class:`ConfigError` naming the setting and the problem; the CLI turns that
into one line on stderr and exit code 2.

Precedence: defaults < TOML file < environment < command-line flags.
In the TOML file keys are the setting names in lower case without the
``PIXEL_`` prefix (``port = 8000``), at the top level or under ``[pixel]``.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "text")


class ConfigError(Exception):
    """A setting is wrong. ``setting`` is the name the operator typed."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./var")
    # Empty means "chdb://<data_dir>/clickhouse" (the embedded engine).
    clickhouse_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    log_format: str = "json"
    # Public base URL the snippet posts to; empty means http://host:port.
    public_url: str = ""
    # X-Forwarded-For is honoured only from these networks.
    trusted_proxies: tuple[Network, ...] = ()
    # Write-ahead log.
    wal_fsync: bool = True
    wal_commit_interval_ms: float = 2.0
    wal_segment_mb: int = 64
    wal_max_mb: int = 2048
    # ClickHouse loader.
    loader_batch_rows: int = 20000
    loader_interval_ms: int = 250
    # Event time horizons (how old an event may be when it arrives).
    browser_horizon_hours: float = 24.0
    server_horizon_hours: float = 24.0 * 7
    # Abuse limits (token buckets): sustained events/s and burst.
    rate_limit_ip: float = 50.0
    rate_limit_ip_burst: int = 200
    rate_limit_pixel: float = 5000.0
    rate_limit_pixel_burst: int = 20000
    # How old a stored event may be to be sent to TikTok when its pixel's
    # credentials are first set (TikTok publishes no limit; 7 days is safe).
    backfill_max_age_days: float = 7.0
    # Start with a demo pixel and the /demo storefront.
    demo: bool = False
    # The key that seals stored credentials; empty means <data_dir>/secret.key.
    # Hosts that share one ClickHouse server must share this file.
    secret_key_file: Path | None = None
    # Ingest worker processes for `serve` (0: one per core; 1: a single process).
    workers: int = 0

    @property
    def clickhouse_dsn(self) -> str:
        return self.clickhouse_url or f"chdb://{self.data_dir / 'clickhouse'}"

    @property
    def secret_key_path(self) -> Path:
        return self.secret_key_file or self.data_dir / "secret.key"

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"


def _int(lo: int, hi: int) -> Callable[[str, Any], int]:
    def parse(name: str, raw: Any) -> int:
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ConfigError(name, f"must be an integer, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ConfigError(name, f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _float(lo: float, hi: float) -> Callable[[str, Any], float]:
    def parse(name: str, raw: Any) -> float:
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise ConfigError(name, f"must be a number, got {raw!r}") from None
        if not lo <= value <= hi:  # also rejects NaN
            raise ConfigError(name, f"must be between {lo:g} and {hi:g}, got {raw}")
        return value

    return parse


def _bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"must be true or false, got {raw!r}")


def _choice(*options: str) -> Callable[[str, Any], str]:
    def parse(name: str, raw: Any) -> str:
        value = str(raw).strip().lower()
        if value not in options:
            raise ConfigError(name, f"must be one of {', '.join(options)}, got {raw!r}")
        return value

    return parse


def _path(name: str, raw: Any) -> Path:
    text = str(raw).strip()
    if not text:
        raise ConfigError(name, "must not be empty")
    return Path(text)


def _host(name: str, raw: Any) -> str:
    text = str(raw).strip()
    if not text or any(c.isspace() for c in text) or "/" in text:
        raise ConfigError(name, f"must be a host name or IP address, got {raw!r}")
    return text


def _clickhouse_url(name: str, raw: Any) -> str:
    text = str(raw).strip()
    if not text:
        return ""
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in ("chdb", "http", "https"):
        raise ConfigError(
            name, f"must start with chdb://, http:// or https://, got {_redact_url(text)!r}"
        )
    if scheme == "chdb" and not text[len("chdb://") :].split("?", 1)[0]:
        raise ConfigError(name, "chdb:// needs a directory, e.g. chdb://./var/clickhouse")
    return text


def _public_url(name: str, raw: Any) -> str:
    text = str(raw).strip()
    if text and not text.startswith(("http://", "https://")):
        raise ConfigError(name, f"must be an http(s) URL, got {raw!r}")
    return text


def _networks(name: str, raw: Any) -> tuple[Network, ...]:
    items = raw if isinstance(raw, list) else str(raw).replace(",", " ").split()
    out: list[Network] = []
    for item in items:
        try:
            out.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise ConfigError(name, f"{item!r} is not an IP address or CIDR network") from None
    return tuple(out)


def _redact_url(url: str) -> str:
    """Hide the password in ``scheme://user:pass@host`` for messages and logs."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


redact_url = _redact_url

_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "data_dir": _path,
    "clickhouse_url": _clickhouse_url,
    "host": _host,
    "port": _int(1, 65535),
    "log_level": _choice(*LOG_LEVELS),
    "log_format": _choice(*LOG_FORMATS),
    "public_url": _public_url,
    "trusted_proxies": _networks,
    "wal_fsync": _bool,
    "wal_commit_interval_ms": _float(0.0, 1000.0),
    "wal_segment_mb": _int(1, 4096),
    "wal_max_mb": _int(1, 10_000_000),
    "loader_batch_rows": _int(1, 1_000_000),
    "loader_interval_ms": _int(1, 60_000),
    "browser_horizon_hours": _float(0.1, 24.0 * 7),
    "server_horizon_hours": _float(0.1, 24.0 * 90),
    "rate_limit_ip": _float(0.01, 1e9),
    "rate_limit_ip_burst": _int(1, 10**9),
    "rate_limit_pixel": _float(0.01, 1e9),
    "rate_limit_pixel_burst": _int(1, 10**9),
    "backfill_max_age_days": _float(0.0, 90.0),
    "demo": _bool,
    "secret_key_file": _path,
    "workers": _int(0, 256),
}
assert set(_PARSERS) == {f.name for f in fields(Settings)}

ENV_PREFIX = "PIXEL_"


def env_name(setting: str) -> str:
    return ENV_PREFIX + setting.upper()


def setting_names() -> list[str]:
    """The environment variable names this program reads (docs, Docker test)."""
    return [env_name(f.name) for f in fields(Settings)] + [env_name("config")]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--config", f"file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--config", f"cannot read {str(path)!r}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{str(path)!r} is not valid TOML: {exc}") from None
    section = data.get("pixel", data)
    if not isinstance(section, dict):
        raise ConfigError("--config", "[pixel] must be a table")
    unknown = sorted(set(section) - set(_PARSERS) - {"pixel"})
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}", "is not a known setting")
    return {k: v for k, v in section.items() if k in _PARSERS}


def load_settings(
    environ: Mapping[str, str],
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build validated settings from a TOML file, the environment and overrides."""
    config_file = config_file or environ.get(env_name("config")) or None
    raw: dict[str, tuple[str, Any]] = {}
    if config_file:
        for key, value in _read_toml(Path(config_file)).items():
            raw[key] = (f"{key} (in {config_file})", value)
    for f in fields(Settings):
        name = env_name(f.name)
        if name in environ:
            raw[f.name] = (name, environ[name])
    unknown = sorted(
        k
        for k in environ
        if k.startswith(ENV_PREFIX) and k not in setting_names() and not k.startswith("PIXEL_TEST_")
    )
    if unknown:
        raise ConfigError(unknown[0], "is not a known setting (typo?)")
    for key, value in (overrides or {}).items():
        if value is not None:
            raw[key] = (f"--{key.replace('_', '-')}", value)
    values = {key: _PARSERS[key](label, value) for key, (label, value) in raw.items()}
    settings = replace(Settings(), **values)
    if settings.wal_max_mb < 2 * settings.wal_segment_mb:
        # Retention frees whole sealed segments only: the budget needs room for two.
        label = raw.get("wal_max_mb", (env_name("wal_max_mb"), None))[0]
        raise ConfigError(label, f"must be at least twice PIXEL_WAL_SEGMENT_MB "
                          f"({settings.wal_segment_mb})")  # fmt: skip
    return settings
