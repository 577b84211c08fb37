"""Docker cannot run here, so check the Dockerfile and compose file against
the real CLI and settings: every name they use must exist and validate."""

from __future__ import annotations

import json
import re
import tomllib

import yaml

from pixel_server.app import create_app
from pixel_server.cli import build_parser
from pixel_server.config import load_settings, setting_names
from tests.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _instruction(name: str) -> str:
    joined = DOCKERFILE.replace("\\\n", " ")
    found = re.findall(rf"^{name}\s+(.+)$", joined, flags=re.MULTILINE)
    assert found, f"no {name} in Dockerfile"
    return found[-1].strip()


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    joined = DOCKERFILE.replace("\\\n", " ")
    for line in re.findall(r"^ENV\s+(.+)$", joined, flags=re.MULTILINE):
        env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return env


def _expand(value: str) -> str:
    """Compose's ${VAR:-default} with nothing set: the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def test_entrypoint_is_the_console_script_and_cmd_a_real_command() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entry = json.loads(_instruction("ENTRYPOINT"))
    assert entry == ["pixel-server"] and "pixel-server" in scripts
    cmd = json.loads(_instruction("CMD"))
    build_parser().parse_args(cmd)  # exits on an unknown subcommand


def test_dockerfile_settings_are_real_and_valid() -> None:
    env = _dockerfile_env()
    pixel_env = {k: v for k, v in env.items() if k.startswith("PIXEL_")}
    assert set(pixel_env) <= set(setting_names())
    settings = load_settings(pixel_env)
    assert settings.host == "0.0.0.0"
    assert json.loads(_instruction("VOLUME")) == [str(settings.data_dir)]
    assert _instruction("EXPOSE") == str(settings.port)


def test_runs_as_non_root_with_healthcheck_on_healthz() -> None:
    assert _instruction("USER") not in ("root", "0")
    assert re.search(r"^FROM python:3\.1[1-9]-slim", DOCKERFILE, flags=re.MULTILINE)
    health = _instruction("HEALTHCHECK")
    path = re.search(r"127\.0\.0\.1:(\d+)(/\w+)", health)
    assert path and path.group(2) == "/healthz"
    paths = {getattr(r, "path", None) for r in create_app(load_settings({})).routes}
    assert "/healthz" in paths


def test_compose_runs_against_the_official_clickhouse_image() -> None:
    services = COMPOSE["services"]
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    app = services["pixel-server"]
    env = {k: _expand(v) for k, v in app["environment"].items()}
    assert set(env) <= set(setting_names())
    settings = load_settings(env)
    ch = services["clickhouse"]["environment"]
    url = settings.clickhouse_dsn
    assert url.startswith("http://") and "@clickhouse:8123/" in url
    assert url.endswith("/" + ch["CLICKHOUSE_DB"])
    assert url.split("//")[1].split(":")[0] == ch["CLICKHOUSE_USER"]
    assert any(v.endswith(":" + str(settings.data_dir)) for v in app["volumes"])
    assert app["ports"] == [f"{settings.port}:{settings.port}"]
    assert app["depends_on"]["clickhouse"]["condition"] == "service_healthy"
