"""Build a clickhouse-connect client from one URL.

``chdb://<dir>[?database=name]`` opens the embedded engine (chDB registers
itself as a clickhouse-connect backend); ``http(s)://user:pass@host:port/db``
talks to a ClickHouse server. Everything above this module uses only the
``clickhouse_connect.driver.Client`` API, so both transports share one path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from pixel_server.config import redact_url

DEFAULT_DATABASE = "pixel"
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class StorageError(Exception):
    """ClickHouse cannot be reached or used; the message is safe to show."""


class DataDirInUse(StorageError):
    """Another process owns the embedded engine's directory."""


@dataclass(frozen=True)
class Target:
    """Where the data lives, parsed from the URL."""

    kind: str  # "chdb" or "http"
    database: str
    path: Path | None = None  # chdb
    host: str = ""
    port: int = 0
    username: str = "default"
    password: str = ""
    secure: bool = False
    display: str = ""  # the URL without its password

    @property
    def embedded(self) -> bool:
        return self.kind == "chdb"


def parse_url(url: str, database: str | None = None) -> Target:
    """Parse a storage URL; ``database`` overrides the one in the URL (tests)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if parts.scheme == "chdb":
        raw_path = url[len("chdb://") :].split("?", 1)[0]
        db = database or query.get("database", [DEFAULT_DATABASE])[0]
        target = Target("chdb", db, path=Path(raw_path).resolve(), display=url)
    elif parts.scheme in ("http", "https"):
        db = database or parts.path.strip("/") or DEFAULT_DATABASE
        secure = parts.scheme == "https"
        target = Target(
            "http",
            db,
            host=parts.hostname or "localhost",
            port=parts.port or (8443 if secure else 8123),
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            secure=secure,
            display=redact_url(url),
        )
    else:
        raise StorageError(f"unsupported ClickHouse URL scheme {parts.scheme!r}")
    if not _DB_NAME.match(target.database):
        raise StorageError(f"invalid database name {target.database!r}")
    return target


def _open(target: Target, database: str | None) -> Client:
    if target.embedded:
        assert target.path is not None
        target.path.mkdir(parents=True, exist_ok=True)
        kwargs = {"database": database} if database else {}
        return clickhouse_connect.get_client(dsn=f"chdb://{target.path}", **kwargs)
    return clickhouse_connect.get_client(
        host=target.host,
        port=target.port,
        username=target.username,
        password=target.password,
        secure=target.secure,
        database=database or "default",
        connect_timeout=3,
        send_receive_timeout=30,
        # Several threads (loader, reports, admin) share one client.
        autogenerate_session_id=False,
    )


def connect(target: Target) -> Client:
    """Open a client on ``target.database``, creating the database if needed."""
    try:
        bootstrap = _open(target, None)
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{target.database}`")
        if target.embedded:
            # One engine per process: switch the same engine to the database.
            bootstrap.database = target.database
            return bootstrap
        bootstrap.close()
        return _open(target, target.database)
    except Exception as exc:  # the driver raises many types; all mean "unusable"
        raise translate_error(exc, target) from exc


def translate_error(exc: BaseException, target: Target) -> StorageError:
    text = str(exc)
    if "Another server instance in same directory" in text or "already running" in text:
        return DataDirInUse(
            f"data directory {target.path} is in use by another pixel-server process"
        )
    if "EmbeddedServer already initialized" in text:
        return StorageError("this process already has another embedded ClickHouse directory open")
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return StorageError(f"ClickHouse at {target.display} is unavailable: {first_line[:300]}")
