"""GET /p/{pixel_id}.js: the pixel's script, compressed and cacheable; a no-op
for unknown or disabled pixels."""

from __future__ import annotations

import gzip

from starlette.testclient import TestClient

from pixel_server.snippets import NOOP_SNIPPET


def _pixel(client: TestClient, **extra: object) -> dict[str, str]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime.management.run(  # type: ignore[no-any-return]
        "pixel.add", {"name": "Shop", "origins": ["https://shop.example.com"], **extra}
    )


def test_serves_the_pixels_script_with_its_settings(client: TestClient) -> None:
    pixel = _pixel(client, platform="ecwid")
    r = client.get(f"/p/{pixel['id']}.js", headers={"accept-encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert f'"i":"{pixel["id"]}"' in r.text
    assert "Ecwid" in r.text  # the adapter is in
    assert r.headers["cache-control"].startswith("public")
    assert r.headers["x-content-type-options"] == "nosniff"


def test_gzip_and_brotli_and_etag(client: TestClient) -> None:
    pixel = _pixel(client)
    plain = client.get(f"/p/{pixel['id']}.js", headers={"accept-encoding": "identity"})
    gz = client.get(f"/p/{pixel['id']}.js", headers={"accept-encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip"
    assert gz.content == plain.content  # the client decoded it
    assert gz.headers["etag"] != plain.headers["etag"]
    br = client.get(f"/p/{pixel['id']}.js", headers={"accept-encoding": "br, gzip"})
    assert br.headers["content-encoding"] == "br"
    again = client.get(
        f"/p/{pixel['id']}.js",
        headers={"accept-encoding": "gzip", "if-none-match": gz.headers["etag"]},
    )
    assert again.status_code == 304 and again.content == b""
    assert len(gzip.compress(plain.content)) < len(plain.content)


def test_settings_change_changes_the_etag(client: TestClient) -> None:
    pixel = _pixel(client)
    before = client.get(f"/p/{pixel['id']}.js").headers["etag"]
    client.app.state.runtime.management.run(  # type: ignore[attr-defined]
        "pixel.update", {"id": pixel["id"], "platform": "shopify"}
    )
    assert client.get(f"/p/{pixel['id']}.js").headers["etag"] != before


def test_unknown_and_disabled_pixels_get_a_noop(client: TestClient) -> None:
    r = client.get("/p/px_unknown.js", headers={"accept-encoding": "identity"})
    assert r.status_code == 200 and r.content == NOOP_SNIPPET
    pixel = _pixel(client)
    client.app.state.runtime.management.run(  # type: ignore[attr-defined]
        "pixel.update", {"id": pixel["id"], "enabled": False}
    )
    r = client.get(f"/p/{pixel['id']}.js", headers={"accept-encoding": "identity"})
    assert r.status_code == 200 and r.content == NOOP_SNIPPET


def test_pixel_snippet_settings_reach_the_script(client: TestClient) -> None:
    pixel = _pixel(client, platform="ecwid", consent_mode="hold", currency="eur",
                   click_window_days=28)  # fmt: skip
    r = client.get(f"/p/{pixel['id']}.js", headers={"accept-encoding": "identity"})
    assert '"h":1' in r.text  # consent held
    assert '"c":"EUR"' in r.text
    assert '"d":28' in r.text
    assert '"m":' not in r.text and '"t":' not in r.text


def test_mirroring_into_the_stores_tiktok_pixel_reaches_the_script(client: TestClient) -> None:
    pixel = _pixel(client, tiktok_pixel_code="CTT0PIXEL123", mirror_to_tiktok_pixel=True)
    r = client.get(f"/p/{pixel['id']}.js", headers={"accept-encoding": "identity"})
    assert '"m":1' in r.text
    # The code goes to the script only when it is to load TikTok's pixel itself.
    assert '"t":' not in r.text and "analytics.tiktok.com" not in r.text

    client.app.state.runtime.management.run(  # type: ignore[attr-defined]
        "pixel.update", {"id": pixel["id"], "load_tiktok_pixel": True}
    )
    r = client.get(f"/p/{pixel['id']}.js", headers={"accept-encoding": "identity"})
    assert '"t":"CTT0PIXEL123"' in r.text and "analytics.tiktok.com" in r.text
