"""``pixel-server connect`` / ``connect status`` / ``disconnect`` from the
command line, while a server holds the data directory (through its admin API)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port, subprocess_env
from tests.connect_helpers import BASE_URL, SECRET
from tests.standins.bigcommerce_admin import running

TOKEN = "bc-cli-token"


def cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pixel_server", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_connect_status_disconnect_while_the_server_runs(tmp_path: Path) -> None:
    port = free_port()
    env = subprocess_env(
        PIXEL_DATA_DIR=str(tmp_path / "data"),
        PIXEL_LOG_LEVEL="warning",
        PIXEL_PUBLIC_URL=BASE_URL,
        PIXEL_PORT=str(port),
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "pixel_server", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None and time.monotonic() < deadline
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with running(TOKEN) as store:
            pixel = json.loads(
                cli(
                    env,
                    "pixel",
                    "add",
                    "--name",
                    "BC",
                    "--platform",
                    "bigcommerce",
                    "--store-id",
                    store.store_hash,
                    "--store-api-base",
                    store.base_url,
                    "--store-api-token",
                    TOKEN,
                    "--webhook-secret",
                    SECRET,
                    "--json",
                ).stdout
            )["id"]
            out = cli(env, "connect", "--pixel", pixel).stdout
            assert sum(line.startswith("created ") for line in out.splitlines()) == 8
            assert len(store.scripts) == 1
            assert "kept" in cli(env, "connect", "--pixel", pixel).stdout

            status = json.loads(
                cli(env, "connect", "status", "--pixel", pixel, "--json", ok=False).stdout
            )
            assert status["script"]["found_in_page"] is True
            text = cli(env, "connect", "status", "--pixel", pixel, ok=False)
            assert text.returncode == 1  # TikTok is not set up: a problem
            assert "problem: TikTok" in text.stdout

            cli(env, "disconnect", "--pixel", pixel)
            assert store.state() == ({}, {})
            store.scopes.discard("orders")
            failed = cli(env, "connect", "--pixel", pixel, ok=False)
            assert failed.returncode == 1
            assert "Orders: read-only" in failed.stderr
            assert store.state() == ({}, {})
    finally:
        server.terminate()
        server.wait(timeout=60)
