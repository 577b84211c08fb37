"""`pixel-server install / uninstall`: one step into a theme, and back out."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixel_server.cli import main


@pytest.fixture
def pixel_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             engine_dir: Path, database_name: str) -> str:  # fmt: skip
    monkeypatch.setenv("PIXEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PIXEL_CLICKHOUSE_URL", f"chdb://{engine_dir}?database={database_name}")
    monkeypatch.setenv("PIXEL_PUBLIC_URL", "https://px.example.com")
    assert main(["pixel", "add", "--name", "Shop", "--platform", "bigcommerce", "--json"]) == 0
    import json

    return str(json.loads(capsys.readouterr().out)["id"])


def test_install_twice_is_once_and_uninstall_restores_the_bytes(
    tmp_path: Path, pixel_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = tmp_path / "theme" / "templates" / "layout" / "base.html"
    layout.parent.mkdir(parents=True)
    original = b"<html>\r\n<head>\r\n{{{head.scripts}}}\r\n</head><body></body></html>"
    layout.write_bytes(original)
    args = ["install", "--pixel", pixel_id, "--theme-dir", str(tmp_path / "theme")]
    assert main(args) == 0
    assert "inserted" in capsys.readouterr().out
    once = layout.read_bytes()
    assert f"https://px.example.com/p/{pixel_id}.js".encode() in once
    assert main(args) == 0
    assert "unchanged" in capsys.readouterr().out and layout.read_bytes() == once
    assert main(["uninstall", "--pixel", pixel_id, "--platform", "bigcommerce",
                 "--theme-dir", str(tmp_path / "theme")]) == 0  # fmt: skip
    assert layout.read_bytes() == original


def test_paste_platforms_print_what_to_paste(
    pixel_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["install", "--pixel", pixel_id, "--platform", "shopify"]) == 0
    out = capsys.readouterr().out
    assert f"https://px.example.com/p/{pixel_id}.js" in out and "analytics.subscribe" in out
    assert main(["install", "--pixel", pixel_id, "--platform", "ecwid"]) == 0
    assert capsys.readouterr().out.strip() == f"https://px.example.com/p/{pixel_id}.js"


def test_missing_layout_is_a_clear_error(
    tmp_path: Path, pixel_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["install", "--pixel", pixel_id, "--theme-dir", str(tmp_path / "empty")]
    assert main(args) == 1
    assert "pixel-server:" in capsys.readouterr().err
