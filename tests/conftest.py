"""Shared fixtures.

ClickHouse is real everywhere: one embedded engine (chDB) per test session,
and a separate ClickHouse database per test (cheap: a few ms), because one
process can open only one embedded data directory at a time.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pixel_server.app import create_app
from pixel_server.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


# Rate limits out of the way for tests about something else.
UNLIMITED = {
    "PIXEL_RATE_LIMIT_IP": "1000000",
    "PIXEL_RATE_LIMIT_IP_BURST": "1000000",
    "PIXEL_RATE_LIMIT_PIXEL": "1000000",
    "PIXEL_RATE_LIMIT_PIXEL_BURST": "1000000",
}


@pytest.fixture(scope="session")
def engine_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clickhouse")


@pytest.fixture
def database_name() -> str:
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture
def settings(tmp_path: Path, engine_dir: Path, database_name: str) -> Settings:
    """Settings for an in-process app: own data dir, own database, no fsync wait."""
    env = {
        "PIXEL_DATA_DIR": str(tmp_path / "data"),
        "PIXEL_CLICKHOUSE_URL": f"chdb://{engine_dir}?database={database_name}",
        "PIXEL_LOG_LEVEL": "warning",
        **UNLIMITED,
    }
    return load_settings(env)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver") as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a pixel-server subprocess: no PIXEL_* leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXEL_")}
    env.update(extra)
    return env
