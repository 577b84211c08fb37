"""The pixel-server command: the pixel round trip with and without a running
server, the data-directory lock, and secrets never kept or logged in clear."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, subprocess_env


def cli(
    data_dir: Path, *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pixel_server", *args],
        env=subprocess_env(PIXEL_DATA_DIR=str(data_dir), PIXEL_LOG_LEVEL="warning"),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def cli_json(data_dir: Path, *args: str) -> Any:
    return json.loads(cli(data_dir, *args, "--json").stdout)


class Server:
    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pixel_server", "serve", "--port", str(self.port)],
            env=subprocess_env(PIXEL_DATA_DIR=str(data_dir), PIXEL_LOG_LEVEL="info"),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, log.read_text()
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("server did not become ready:\n" + log.read_text())

    def stop(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(timeout=60)
        self._log.close()
        return code


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "data", tmp_path / "server.log")
    yield s
    if s.proc.poll() is None:
        s.stop()


def pixel_round_trip(data_dir: Path) -> dict[str, object]:
    created = cli_json(data_dir, "pixel", "add", "--name", "Acme", "--origin",
                       "https://shop.example.com", "--platform", "shopify")  # fmt: skip
    assert isinstance(created, dict)
    pid = created["id"]
    assert str(pid).startswith("px_")
    assert str(created["api_key"]).startswith("psk_")
    assert str(created["owner_token"]).startswith("prt_")
    listed = cli_json(data_dir, "pixel", "list")
    assert [p["id"] for p in listed] == [pid]
    assert "api_key" not in listed[0] and "api_key_hash" not in listed[0]
    shown = cli_json(data_dir, "pixel", "show", str(pid))
    assert shown == listed[0]
    updated = cli_json(data_dir, "pixel", "update", str(pid), "--name", "Acme EU",
                       "--tiktok-access-token", "tt-secret-123",
                       "--timezone", "Europe/Paris", "--mirror-to-tiktok-pixel")  # fmt: skip
    assert updated["name"] == "Acme EU" and updated["tiktok_access_token"] is True
    assert updated["mirror_to_tiktok_pixel"] is True and created["mirror_to_tiktok_pixel"] is False
    assert cli_json(data_dir, "pixel", "disable", str(pid))["enabled"] is False
    assert cli_json(data_dir, "pixel", "enable", str(pid))["enabled"] is True
    rotated = cli_json(data_dir, "pixel", "rotate-key", str(pid))
    assert rotated["api_key"] != created["api_key"]
    return {"id": pid, "old_key": created["api_key"], "new_key": rotated["api_key"],
            "owner_token": created["owner_token"]}  # fmt: skip


def test_pixel_round_trip_without_a_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = pixel_round_trip(data)
    human = cli(data, "pixel", "show", str(result["id"])).stdout
    assert "Acme EU" in human and "tiktok_access_token" in human and "tt-secret-123" not in human
    assert "no pixels yet" in cli(tmp_path / "other", "pixel", "list").stdout


def test_pixel_round_trip_through_the_running_server(server: Server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = pixel_round_trip(data)
    # the server's own view changed too: the registry is shared, not a copy
    assert server.proc.poll() is None
    assert cli(data, "pixel", "list").stdout.count("px_") == 1
    # stop and start again: the pixel is still there
    assert server.stop() == 0
    again = Server(data, tmp_path / "server2.log")
    try:
        assert [p["id"] for p in cli_json(data, "pixel", "list")] == [result["id"]]
    finally:
        again.stop()
    # secrets never on disk or in logs in clear
    logs = (tmp_path / "server.log").read_bytes() + (tmp_path / "server2.log").read_bytes()
    for secret in ("old_key", "new_key", "owner_token"):
        value = str(result[secret]).encode()
        assert value not in logs
        for f in data.rglob("*"):
            if f.is_file():
                assert value not in f.read_bytes(), f"{secret} found in {f}"


def test_same_output_with_or_without_server(server: Server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = cli_json(data, "pixel", "add", "--name", "Shop")
    via_server = cli(data, "pixel", "show", str(created["id"])).stdout
    server.stop()
    direct = cli(data, "pixel", "show", str(created["id"])).stdout
    assert via_server == direct


def test_second_server_on_the_same_directory_exits_clearly(server: Server, tmp_path: Path) -> None:
    proc = cli(tmp_path / "data", "serve", "--port", str(free_port()), check=False)
    assert proc.returncode == 1
    assert "data directory" in proc.stderr
    assert "is in use by another pixel-server process" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert httpx.get(server.url + "/healthz").status_code == 200  # the first is unaffected


def test_command_errors_are_one_line(tmp_path: Path) -> None:
    proc = cli(tmp_path, "pixel", "show", "px_missing", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "pixel-server: no pixel with id 'px_missing'"
    proc = cli(tmp_path, "pixel", "add", "--name", "x", "--origin", "nope", check=False)
    assert proc.returncode == 1 and "must look like" in proc.stderr


def test_report_tokens(tmp_path: Path) -> None:
    data = tmp_path / "data"
    pid = cli_json(data, "pixel", "add", "--name", "Shop")["id"]
    token = cli_json(data, "token", "add", "--pixel", str(pid), "--role", "reader")
    assert token["role"] == "reader"
    listed = cli_json(data, "token", "list", "--pixel", str(pid))
    assert sorted(t["role"] for t in listed) == ["owner", "reader"]
    out = cli(data, "token", "revoke", str(token["token"])).stdout
    assert "revoked" in out
    listed = cli_json(data, "token", "list", "--pixel", str(pid))
    assert {t["role"]: t["revoked"] for t in listed} == {"owner": False, "reader": True}


def test_migrate_command(tmp_path: Path) -> None:
    out = cli(tmp_path / "data", "migrate").stdout
    assert "schema is current" in out and "1" in out


def test_status_gives_operators_the_details_readyz_leaves_out(
    server: Server, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    status = cli_json(data, "status")
    assert status["ready"] is True
    assert status["checks"]["clickhouse"] == "ok"
    assert set(status["checks"]["log"]) >= {"bytes", "budget_bytes", "backlog"}
    assert "ready" in cli(data, "status").stdout
    public = httpx.get(server.url + "/readyz", timeout=5).json()
    assert public["checks"]["clickhouse"] == "ok"
    assert public["checks"]["forwarder"] == "ok"  # a state word, no per-pixel details


def test_credentials_from_stdin_or_a_file_are_sealed_and_survive_a_key_rotation(
    server: Server, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    token, secret = "tt-access-from-stdin-8d1f", "whsec-from-file-3c9a"
    (tmp_path / "wh.txt").write_text(secret + "\n")
    pid = cli_json(data, "pixel", "add", "--name", "Shop", "--platform", "shopify")["id"]
    cli(data, "pixel", "update", pid, "--tiktok-access-token-file", "-",
        "--webhook-secret-file", str(tmp_path / "wh.txt"), stdin=token + "\n")  # fmt: skip
    shown = cli_json(data, "pixel", "show", pid)
    assert shown["tiktok_access_token"] is True and shown["webhook_secret"] is True
    rotated = cli_json(data, "rotate-secret-key")
    assert rotated["pixels_resealed"] == 1 and rotated["new_key_id"] != rotated["old_key_id"]
    assert (data / "secret.key").stat().st_mode & 0o777 == 0o600
    server.stop()  # the server used the secret it was given: check it back directly
    both = cli(data, "pixel", "update", pid, "--webhook-secret", "a", "--webhook-secret-file",
               str(tmp_path / "wh.txt"), check=False)  # fmt: skip
    assert both.returncode != 0 and "once" in both.stderr
    for f in data.rglob("*"):
        if f.is_file():
            blob = f.read_bytes()
            assert token.encode() not in blob and secret.encode() not in blob, f
