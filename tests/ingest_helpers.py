"""Helpers for the ingest tests: pixels, event bodies, waiting for the loader.

Fixtures live in the test modules (pytest only discovers fixtures in conftest
and the test module itself); they call these functions.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from starlette.testclient import TestClient

from pixel_server.app import create_app
from pixel_server.config import Settings, load_settings
from pixel_server.runtime import Runtime
from pixel_server.storage.client import connect, parse_url

ORIGIN = "https://shop.example.com"
FOREIGN_ORIGIN = "https://evil.example.net"
BROWSER_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
WAIT_SECONDS = 20.0  # an upper bound, never an expectation


def runtime_of(client: TestClient) -> Runtime:
    return client.app.state.runtime  # type: ignore[attr-defined,no-any-return]


def add_pixel(runtime: Runtime, **settings: Any) -> dict[str, Any]:
    """Create a pixel (registered origin ``ORIGIN`` unless given); returns id,
    api_key, owner_token and the public settings. The app sees it at once."""
    args: dict[str, Any] = {"name": "Test shop", "origins": [ORIGIN], "platform": "html"}
    args.update(settings)
    result: dict[str, Any] = runtime.management.run("pixel.add", args)
    return result


def settings_with(base: Settings, **env: str) -> Settings:
    """``base`` (the conftest fixture) with more PIXEL_* variables."""
    values = {
        "PIXEL_DATA_DIR": str(base.data_dir),
        "PIXEL_CLICKHOUSE_URL": base.clickhouse_dsn,
        "PIXEL_LOG_LEVEL": "warning",
    }
    values.update(env)
    return load_settings(values)


def shared_settings(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path, **env: str
) -> Settings:
    """Settings for an app shared by a test module (starting one costs ~0.5 s):
    its own data dir and database; rate limits out of the way unless given."""
    values = {
        "PIXEL_DATA_DIR": str(tmp_path_factory.mktemp("app") / "data"),
        "PIXEL_CLICKHOUSE_URL": f"chdb://{engine_dir}?database=t_{uuid.uuid4().hex[:12]}",
        "PIXEL_LOG_LEVEL": "warning",
        "PIXEL_RATE_LIMIT_IP": "1000000",
        "PIXEL_RATE_LIMIT_IP_BURST": "1000000",
    }
    values.update(env)
    return load_settings(values)


@contextmanager
def app_client(settings: Settings, **kwargs: Any) -> Iterator[TestClient]:
    """An in-process app; leaving the block stops it gracefully (flushes the loader)."""
    with TestClient(create_app(settings), base_url="http://testserver", **kwargs) as c:
        yield c


def block_loader(runtime: Runtime) -> Callable[[], None]:
    """Make every ClickHouse insert of the loader fail (the log then only grows);
    returns the function that lets inserts through again."""
    assert runtime.loader is not None
    real_insert = runtime.loader.insert
    blocked = {"on": True}

    def down(batch: list[Any], token: str) -> None:
        if blocked["on"]:
            raise ConnectionError("injected")
        real_insert(batch, token)

    runtime.loader.insert = down
    return lambda: blocked.update(on=False)


def browser_headers(**extra: str) -> dict[str, str]:
    return {"content-type": "text/plain;charset=UTF-8", "user-agent": BROWSER_UA, **extra}


def api_headers(api_key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}", "content-type": "application/json"}


def api_body(source_id: str, data: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"event_source": "web", "event_source_id": source_id, "data": data, **extra}


# ------------------------------------------------------------------- ClickHouse


def _filter(pixel_id: str | None, where: str) -> tuple[str, dict[str, Any]]:
    if pixel_id is None:
        return where, {}
    return f"pixel_id = {{pixel:String}} AND ({where})", {"pixel": pixel_id}


def count_rows(runtime: Runtime, pixel_id: str | None = None, where: str = "1") -> int:
    condition, parameters = _filter(pixel_id, where)
    result = runtime.database.client().query(
        f"SELECT count() FROM events WHERE {condition}", parameters=parameters
    )
    return int(result.result_rows[0][0])


def wait_for_rows(
    runtime: Runtime,
    expected: int,
    pixel_id: str | None = None,
    where: str = "1",
    timeout: float = WAIT_SECONDS,
) -> int:
    """Poll until the loader has put at least ``expected`` rows (of ``pixel_id``)
    into ``events``: a bounded wait that returns the count seen, for the caller
    to assert on."""
    deadline = time.monotonic() + timeout
    while True:
        seen = count_rows(runtime, pixel_id, where)
        if seen >= expected or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)


def open_database(settings: Settings) -> Client:
    """A client on the test's database, for reading after the app has stopped."""
    return connect(parse_url(settings.clickhouse_dsn))


def select_dicts(
    ch: Client, sql: str, parameters: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    result = ch.query(sql, parameters=dict(parameters or {}))
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


# ---------------------------------------------------------------------- metrics

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def metric(client: TestClient, name: str, **labels: str) -> float:
    """The value of one sample in ``/metrics`` (0.0 when absent)."""
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        match = _SAMPLE.match(line)
        if not match or match.group(1) != name:
            continue
        have = set(filter(None, (match.group(2) or "{}")[1:-1].split(",")))
        if wanted <= have:
            total += float(match.group(3))
    return total
