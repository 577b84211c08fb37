"""Settings: every way to get them wrong ends with exit code 2 and one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pixel_server.config import ConfigError, Settings, load_settings, setting_names
from tests.conftest import subprocess_env


def test_defaults() -> None:
    s = load_settings({})
    assert s.host == "127.0.0.1" and s.port == 8000
    assert s.data_dir == Path("./var")
    assert s.clickhouse_dsn == "chdb://var/clickhouse"
    assert s.log_level == "info" and s.log_format == "json"


def test_environment_overrides_defaults() -> None:
    s = load_settings(
        {
            "PIXEL_PORT": "9001",
            "PIXEL_HOST": "0.0.0.0",
            "PIXEL_DATA_DIR": "/srv/px",
            "PIXEL_LOG_FORMAT": "text",
            "PIXEL_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1",
            "PIXEL_WAL_FSYNC": "false",
        }
    )
    assert s.port == 9001 and s.host == "0.0.0.0"
    assert s.clickhouse_dsn == "chdb:///srv/px/clickhouse"
    assert [str(n) for n in s.trusted_proxies] == ["10.0.0.0/8", "192.168.1.1/32"]
    assert s.wal_fsync is False


def test_toml_file_then_environment_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "px.toml"
    cfg.write_text('port = 7000\nhost = "10.1.1.1"\nlog_level = "debug"\n')
    s = load_settings({"PIXEL_HOST": "10.2.2.2"}, cfg, {"port": "7100"})
    assert (s.port, s.host, s.log_level) == (7100, "10.2.2.2", "debug")


def test_toml_pixel_section(tmp_path: Path) -> None:
    cfg = tmp_path / "px.toml"
    cfg.write_text('[pixel]\nport = 7001\nclickhouse_url = "http://u:p@ch:8123/db"\n')
    s = load_settings({}, cfg)
    assert s.port == 7001 and s.clickhouse_dsn == "http://u:p@ch:8123/db"


@pytest.mark.parametrize(
    ("env", "setting", "words"),
    [
        ({"PIXEL_PORT": "abc"}, "PIXEL_PORT", "integer"),
        ({"PIXEL_PORT": "70000"}, "PIXEL_PORT", "between 1 and 65535"),
        ({"PIXEL_PORT": "0"}, "PIXEL_PORT", "between"),
        ({"PIXEL_HOST": "a b"}, "PIXEL_HOST", "host name"),
        ({"PIXEL_HOST": ""}, "PIXEL_HOST", "host name"),
        ({"PIXEL_DATA_DIR": "  "}, "PIXEL_DATA_DIR", "empty"),
        ({"PIXEL_CLICKHOUSE_URL": "mysql://x"}, "PIXEL_CLICKHOUSE_URL", "chdb://"),
        ({"PIXEL_CLICKHOUSE_URL": "chdb://"}, "PIXEL_CLICKHOUSE_URL", "directory"),
        ({"PIXEL_LOG_LEVEL": "loud"}, "PIXEL_LOG_LEVEL", "one of"),
        ({"PIXEL_LOG_FORMAT": "xml"}, "PIXEL_LOG_FORMAT", "one of"),
        ({"PIXEL_PUBLIC_URL": "ftp://x"}, "PIXEL_PUBLIC_URL", "http(s) URL"),
        ({"PIXEL_TRUSTED_PROXIES": "10.0.0.0/33"}, "PIXEL_TRUSTED_PROXIES", "CIDR"),
        ({"PIXEL_WAL_FSYNC": "maybe"}, "PIXEL_WAL_FSYNC", "true or false"),
        ({"PIXEL_WAL_COMMIT_INTERVAL_MS": "nan"}, "PIXEL_WAL_COMMIT_INTERVAL_MS", "between"),
        ({"PIXEL_RATE_LIMIT_IP": "-1"}, "PIXEL_RATE_LIMIT_IP", "between"),
        ({"PIXEL_PROT": "8000"}, "PIXEL_PROT", "not a known setting"),
        ({"PIXEL_WAL_MAX_MB": "10", "PIXEL_WAL_SEGMENT_MB": "8"}, "PIXEL_WAL_MAX_MB", "twice"),
    ],
)
def test_invalid_environment(env: dict[str, str], setting: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert info.value.setting == setting
    assert words in info.value.problem


def test_password_is_not_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"PIXEL_CLICKHOUSE_URL": "tcp://user:hunter2@host:9000"})
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("port = ", "not valid TOML"),
        ("colour = 'red'", "not a known setting"),
        ("port = 'x'", "integer"),
    ],
)
def test_invalid_toml(tmp_path: Path, content: str, words: str) -> None:
    cfg = tmp_path / "px.toml"
    cfg.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings({}, cfg)
    assert words in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({}, tmp_path / "nope.toml")


def test_config_file_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "px.toml"
    cfg.write_text("port = 7002\n")
    assert load_settings({"PIXEL_CONFIG": str(cfg)}).port == 7002


def test_every_setting_has_an_environment_name() -> None:
    names = setting_names()
    assert "PIXEL_CLICKHOUSE_URL" in names and "PIXEL_DATA_DIR" in names
    assert len(names) == len(Settings.__dataclass_fields__) + 1


@pytest.mark.parametrize(
    ("env", "args", "setting"),
    [
        ({"PIXEL_PORT": "http"}, ["pixel", "list"], "PIXEL_PORT"),
        ({"PIXEL_LOG_LEVEL": "chatty"}, ["serve"], "PIXEL_LOG_LEVEL"),
        ({}, ["serve", "--port", "99999"], "--port"),
    ],
)
def test_cli_exits_2_with_one_clear_line(
    tmp_path: Path, env: dict[str, str], args: list[str], setting: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pixel_server", *args],
        env=subprocess_env(PIXEL_DATA_DIR=str(tmp_path), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("pixel-server: configuration error: " + setting)
    assert "Traceback" not in proc.stderr
