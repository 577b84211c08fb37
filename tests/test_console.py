"""The console over HTTP: sessions instead of raw tokens, CSRF, the security
headers, editable settings with the CLI's messages and an audit log, the team
page, agency tokens, and the TikTok connection check against the stand-in."""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pixel_server.console.access import COOKIE
from pixel_server.console.sessions import FILE_NAME, SessionStore
from pixel_server.pixel import RegistryError, validate_changes
from tests.console_helpers import (
    INLINE_SCRIPT,
    csrf_of_page,
    legacy_ticket,
    login,
    session_cookie,
)
from tests.ingest_helpers import (
    BROWSER_UA,
    ORIGIN,
    add_pixel,
    api_body,
    api_headers,
    app_client,
    metric,
    runtime_of,
    shared_settings,
    wait_for_rows,
)
from tests.standins.tiktok_api import TikTokStandIn
from tests.test_cli import cli, cli_json

TIKTOK_TOKEN = "tt-access-token-console-1"
TIKTOK_CODE = "CONSOLE1PIXEL"


@pytest.fixture(scope="module")
def api() -> Iterator[TikTokStandIn]:
    with TikTokStandIn({TIKTOK_TOKEN: {TIKTOK_CODE}}) as standin:
        yield standin


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory, engine_dir: Path, api: TikTokStandIn
) -> Iterator[dict[str, Any]]:
    settings = shared_settings(tmp_path_factory, engine_dir)
    with app_client(settings) as client:
        runtime = runtime_of(client)
        pixel = add_pixel(runtime, name="Console shop", tiktok_api_base=api.base_url)
        other = add_pixel(runtime, name="Second shop")
        third = add_pixel(runtime, name="Not the agency's")
        reader = runtime.management.run(
            "token.add", {"pixel": pixel["id"], "role": "reader", "label": "Reader Rita"}
        )
        yield {
            "client": client,
            "runtime": runtime,
            "settings": settings,
            "pixel": pixel,
            "other": other,
            "third": third,
            "reader": reader["token"],
        }


# ------------------------------------------------------------------ sessions


def test_login_opens_a_session_with_a_strict_cookie(env: dict[str, Any]) -> None:
    c, pixel = env["client"], env["pixel"]
    r = login(c, env["reader"])
    assert r.status_code == 303 and r.headers["location"] == f"/dashboard/{pixel['id']}"
    cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith(f"{COOKIE}="))
    value = cookie.split(";")[0].split("=", 1)[1]
    assert value != env["reader"] and len(value) >= 40  # a session id, not the token
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie and "Max-Age=" in cookie
    assert c.get(f"/dashboard/{pixel['id']}").status_code == 200  # the cookie is enough
    assert metric(c, "pixel_console_sessions") >= 1
    assert login(c, "prt_wrong").status_code == 401


def test_sessions_survive_a_server_restart(settings: Any) -> None:
    with app_client(settings) as c:
        pixel = add_pixel(runtime_of(c))
        c.cookies.clear()
        assert c.get("/", follow_redirects=False).headers["location"] == "/login"
        login(c, pixel["owner_token"])
        session = session_cookie(c)
    with app_client(settings) as c:
        c.cookies.set(COOKIE, session)
        assert c.get(f"/dashboard/{pixel['id']}/settings").status_code == 200
        assert c.get("/", follow_redirects=False).headers["location"] == f"/dashboard/{pixel['id']}"


def test_cookie_is_secure_behind_https(env: dict[str, Any]) -> None:
    c = TestClient(env["client"].app, base_url="https://testserver")
    r = login(c, env["reader"])
    cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith(f"{COOKIE}="))
    assert "Secure" in cookie


def test_login_needs_the_forms_own_nonce(env: dict[str, Any]) -> None:
    c = env["client"]
    c.cookies.clear()
    r = c.post("/login", data={"token": env["reader"]}, follow_redirects=False)
    assert r.status_code == 403 and COOKIE not in r.headers.get("set-cookie", "")


def test_old_login_link_works_once_without_showing_the_token(env: dict[str, Any]) -> None:
    c, pixel = env["client"], env["pixel"]
    c.cookies.clear()
    nonce, ticket, html = legacy_ticket(c, env["reader"])
    assert env["reader"] not in html
    assert 'src="/static/dashboard/login.js"' in html  # posts the form by itself
    r = c.post("/login", data={"login_csrf": nonce, "ticket": ticket}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/dashboard/{pixel['id']}"
    again = c.post("/login", data={"login_csrf": nonce, "ticket": ticket}, follow_redirects=False)
    assert again.status_code in (401, 403)
    assert c.get("/login?token=prt_not-valid").status_code == 401


def test_logout_ends_the_session(env: dict[str, Any]) -> None:
    c, pixel = env["client"], env["pixel"]
    login(c, env["reader"])
    session = session_cookie(c)
    csrf = csrf_of_page(c, f"/dashboard/{pixel['id']}")
    assert c.post("/logout", data={}).status_code == 403  # no CSRF token
    assert c.post("/logout", data={"csrf": csrf}).status_code == 200
    c.cookies.clear()
    c.cookies.set(COOKIE, session)  # the old cookie, kept by an attacker
    assert c.get(f"/dashboard/{pixel['id']}").status_code == 401


def test_revoking_a_token_ends_its_sessions(env: dict[str, Any]) -> None:
    c, runtime, pixel = env["client"], env["runtime"], env["pixel"]
    token = runtime.management.run(
        "token.add", {"pixel": pixel["id"], "role": "reader", "label": "soon gone"}
    )
    login(c, token["token"])
    assert c.get(f"/dashboard/{pixel['id']}").status_code == 200
    runtime.management.run("token.revoke", {"token": token["token"]})
    assert c.get(f"/dashboard/{pixel['id']}").status_code == 401


def test_sessions_expire_when_idle_and_absolutely() -> None:
    now = [1_000_000.0]
    store = SessionStore(None, idle_s=60, absolute_s=300, clock=lambda: now[0])
    sid = store.open("hash")
    for _ in range(5):  # active: kept alive by requests...
        now[0] += 50
        assert store.get(sid) is not None
    now[0] += 55  # ...but never beyond the absolute limit (305 s after login)
    assert store.get(sid) is None
    idle = store.open("hash")
    now[0] += 61
    assert store.get(idle) is None


def test_sessions_survive_a_restart_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    sid = SessionStore(path).open("token-hash")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sid not in path.read_text()  # only its hash is stored
    again = SessionStore(path)
    assert again.get(sid) is not None and again.get(sid).token_hash == "token-hash"  # type: ignore[union-attr]


# ---------------------------------------------------------------- security


def test_post_without_csrf_is_403_everywhere(env: dict[str, Any]) -> None:
    c, pixel = env["client"], env["pixel"]
    login(c, pixel["owner_token"])
    base = f"/dashboard/{pixel['id']}"
    for url, data in [
        (f"{base}/settings", {"name": "Hacked"}),
        (f"{base}/settings/tiktok-check", {}),
        (f"{base}/team", {"label": "x", "role": "owner"}),
        (f"{base}/team/revoke", {"id": "whatever"}),
        ("/logout", {}),
    ]:
        r = c.post(url, data=data, follow_redirects=False)
        assert r.status_code == 403, url
        r = c.post(url, data={**data, "csrf": "0" * 32}, follow_redirects=False)
        assert r.status_code == 403, url
    csrf = csrf_of_page(c, f"{base}/settings")
    foreign = c.post(
        f"{base}/settings",
        data={"csrf": csrf, "name": "Hacked"},
        headers={"origin": "https://evil.example.net"},
        follow_redirects=False,
    )
    assert foreign.status_code == 403
    assert env["runtime"].registry.get(pixel["id"]).name == "Console shop"


def test_pages_carry_a_strict_content_security_policy(env: dict[str, Any]) -> None:
    c, pixel = env["client"], env["pixel"]
    login(c, pixel["owner_token"])
    base = f"/dashboard/{pixel['id']}"
    for url in (base, f"{base}/settings", f"{base}/team", f"/install/{pixel['id']}", "/login"):
        r = c.get(url)
        assert r.status_code == 200, url
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert INLINE_SCRIPT.findall(r.text) == [], url


def test_no_token_or_secret_in_pages_or_logs(
    env: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    c, runtime, pixel = env["client"], env["runtime"], env["pixel"]
    secret = "tt-very-secret-access-token-42"
    caplog.set_level(logging.DEBUG)
    runtime.management.run("pixel.update", {"id": pixel["id"], "webhook_secret": secret})
    c.cookies.clear()
    nonce, ticket, html = legacy_ticket(c, pixel["owner_token"])
    c.post("/login", data={"login_csrf": nonce, "ticket": ticket})
    session = session_cookie(c)
    base = f"/dashboard/{pixel['id']}"
    pages = [c.get(u).text for u in (base, f"{base}/settings", f"{base}/team", "/console")]
    pages.append(html)
    for text in pages:
        for value in (secret, pixel["owner_token"], pixel["api_key"], env["reader"], session):
            assert value not in text
    # The server's records with every extra field (httpx's are the test client's own).
    logged = "\n".join(
        r.getMessage() + " " + str(vars(r))
        for r in caplog.records
        if not r.name.startswith("httpx")
    )
    assert "pixel_server.access" in logged
    for value in (secret, pixel["owner_token"], env["reader"], session, ticket):
        assert value not in logged


# ---------------------------------------------------------------- settings


def settings_form(c: TestClient, pixel_id: str, **changes: str) -> dict[str, str]:
    """The settings form as the page fills it, with ``changes``."""
    page = c.get(f"/dashboard/{pixel_id}/settings").text
    form: dict[str, str] = {}
    for name, value in re.findall(
        r'<input type="(?:text|number)" name="(\w+)" value="([^"]*)"', page
    ):
        form[name] = value
    for name in re.findall(r'<input type="checkbox" name="(\w+)" value="1" checked>', page):
        form[name] = "1"
    for name, body in re.findall(r'<select name="(\w+)">(.*?)</select>', page):
        form[name] = re.search(r'<option value="([^"]*)" selected>', body).group(1)  # type: ignore[union-attr]
    for name, body in re.findall(r'<textarea name="(\w+)"[^>]*>(.*?)</textarea>', page, re.S):
        form[name] = body
    form["csrf"] = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form.update(changes)
    return form


def test_owner_edits_settings_with_the_clis_messages(env: dict[str, Any]) -> None:
    c, runtime, pixel = env["client"], env["runtime"], env["pixel"]
    login(c, pixel["owner_token"])
    url = f"/dashboard/{pixel['id']}/settings"
    with pytest.raises(RegistryError) as cli_error:
        validate_changes({"click_window_days": "120"})
    bad = c.post(url, data=settings_form(c, pixel["id"], click_window_days="120"))
    assert bad.status_code == 400 and str(cli_error.value) in bad.text
    form = settings_form(
        c, pixel["id"], tiktok_pixel_code=TIKTOK_CODE, tiktok_access_token=TIKTOK_TOKEN
    )
    form["currency"] = "eur"
    r = c.post(url, data=form, follow_redirects=False)
    assert r.status_code == 303
    shown = runtime.management.run("pixel.show", {"id": pixel["id"]})  # = pixel show --json
    assert shown["tiktok_pixel_code"] == TIKTOK_CODE and shown["tiktok_access_token"] is True
    assert shown["currency"] == "EUR"
    assert runtime.registry.get(pixel["id"]).tiktok_access_token == TIKTOK_TOKEN
    page = c.get(url).text
    assert TIKTOK_TOKEN not in page and 'id="state-tiktok_access_token">set' in page
    audit = runtime.management.run("audit.list", {"pixel": pixel["id"]})
    entry = next(e for e in audit if "tiktok_access_token" in e["changes"])
    assert entry["changes"]["tiktok_access_token"] == "set"
    assert entry["actor"].startswith("created with the pixel (")
    assert TIKTOK_TOKEN not in str(audit)
    assert "tiktok_pixel_code = " + TIKTOK_CODE in page  # the audit log, on the page
    # An empty secret field keeps the secret.
    c.post(url, data=settings_form(c, pixel["id"], name="Console shop"))
    assert runtime.registry.get(pixel["id"]).tiktok_access_token == TIKTOK_TOKEN


def test_tiktok_check_shows_success_then_the_rejection(
    env: dict[str, Any], api: TikTokStandIn
) -> None:
    c, runtime, pixel = env["client"], env["runtime"], env["pixel"]
    runtime.management.run(
        "pixel.update",
        {"id": pixel["id"], "tiktok_pixel_code": TIKTOK_CODE, "tiktok_access_token": TIKTOK_TOKEN,
         "tiktok_test_event_code": "TEST12345"},
    )  # fmt: skip
    login(c, pixel["owner_token"])
    url = f"/dashboard/{pixel['id']}/settings"
    r = c.post(f"{url}/tiktok-check", data={"csrf": csrf_of_page(c, url)})
    assert r.status_code == 200 and "TikTok accepted the test event (0)" in r.text
    assert api.test_event_codes(TIKTOK_CODE)[-1] == "TEST12345"
    api.revoke(TIKTOK_TOKEN)
    try:
        r = c.post(f"{url}/tiktok-check", data={"csrf": csrf_of_page(c, url)})
        assert "access token rejected (40105): enter a new token" in r.text
    finally:
        api.allow(TIKTOK_TOKEN, TIKTOK_CODE)


# -------------------------------------------------------------------- team


def test_reader_never_sees_owner_pages(env: dict[str, Any]) -> None:
    c, pixel = env["client"], env["pixel"]
    login(c, env["reader"])
    base = f"/dashboard/{pixel['id']}"
    page = c.get(base).text
    for link in (f"{base}/settings", f"{base}/team", f"/install/{pixel['id']}"):
        assert f'href="{link}"' not in page
        assert c.get(link).status_code == 403
    csrf = csrf_of_page(c, base)
    assert c.post(f"{base}/settings", data={"csrf": csrf, "name": "x"}).status_code == 403
    assert c.post(f"{base}/team", data={"csrf": csrf, "label": "x"}).status_code == 403


def test_team_page_issues_and_revokes_tokens(env: dict[str, Any]) -> None:
    c, pixel = env["client"], env["pixel"]
    login(c, pixel["owner_token"])
    url = f"/dashboard/{pixel['id']}/team"
    csrf = csrf_of_page(c, url)
    r = c.post(url, data={"csrf": csrf, "label": "Agency Anna", "role": "reader",
                          "expires": "2099-12-31"})  # fmt: skip
    assert r.status_code == 200
    token = re.search(r'<pre class="code" id="issued-token">(prt_[^<]+)</pre>', r.text).group(1)  # type: ignore[union-attr]
    listed = c.get(url).text
    assert "Agency Anna" in listed and "2099-12-31" in listed and token not in listed
    bad = c.post(url, data={"csrf": csrf, "label": "x", "role": "reader", "expires": "2001-01-01"})
    assert bad.status_code == 400 and "expiry must be in the future" in bad.text
    other = TestClient(c.app, base_url="http://testserver")
    assert login(other, token).status_code == 303
    assert other.get(f"/dashboard/{pixel['id']}/settings").status_code == 403  # a reader
    token_id = re.search(r'data-token="(\w+)"><td>Agency Anna', listed).group(1)  # type: ignore[union-attr]
    r = c.post(f"{url}/revoke", data={"csrf": csrf, "id": token_id}, follow_redirects=False)
    assert r.status_code == 303
    assert other.get(f"/dashboard/{pixel['id']}").status_code == 401


def test_expired_tokens_stop_working(env: dict[str, Any]) -> None:
    runtime, pixel = env["runtime"], env["pixel"]
    token = runtime.management.run(
        "token.add", {"pixel": pixel["id"], "role": "reader", "expires": "2099-01-01T00:00:00"}
    )
    assert runtime.registry.token(token["token"]) is not None
    with pytest.raises(RegistryError, match="expiry must be in the future"):
        runtime.management.run(
            "token.add", {"pixel": pixel["id"], "role": "reader", "expires": "2020-01-01"}
        )


def test_agency_token_home_lists_exactly_its_pixels(env: dict[str, Any]) -> None:
    c, runtime, pixel, other, third = (
        env[k] for k in ("client", "runtime", "pixel", "other", "third")
    )
    agency = runtime.management.run(
        "token.add", {"pixels": f"{pixel['id']},{other['id']}", "role": "reader", "label": "Agency"}
    )
    r = login(c, agency["token"])
    assert r.headers["location"] == "/console"
    home = c.get("/console")
    assert home.status_code == 200
    listed = re.findall(r'<tr data-pixel="(px_\w+)">', home.text)
    assert sorted(listed) == sorted([pixel["id"], other["id"]])
    assert c.get(f"/dashboard/{other['id']}").status_code == 200
    assert c.get(f"/dashboard/{third['id']}").status_code == 403
    assert c.get(f"/dashboard/{pixel['id']}/settings").status_code == 403


# --------------------------------------------------------------- checklist


def steps_of(page: str) -> dict[str, bool]:
    return {
        title: state == "done"
        for state, title in re.findall(r'<li class="(done|todo)" data-step="([^"]+)">', page)
    }


def test_setup_checklist_follows_what_arrives(env: dict[str, Any], api: TikTokStandIn) -> None:
    c, runtime = env["client"], env["runtime"]
    pixel = add_pixel(runtime, name="Checklist shop", tiktok_api_base=api.base_url)
    login(c, pixel["owner_token"])
    url = f"/dashboard/{pixel['id']}"
    first = steps_of(c.get(url).text)
    assert first and not any(first.values())
    assert 'href="/install/' + pixel["id"] + '"' in c.get(url).text  # a link to fix it
    now = time.time()
    event = {"event": "PageView", "event_id": "pv-check-1", "event_time": now,
             "page": {"url": ORIGIN + "/"}}  # fmt: skip
    r = c.post(f"/collect?p={pixel['id']}", json={"events": [event]},
               headers={"origin": ORIGIN, "user-agent": BROWSER_UA})  # fmt: skip
    assert r.status_code == 202
    assert wait_for_rows(runtime, 1, pixel["id"]) == 1
    runtime.management.run(
        "pixel.update",
        {"id": pixel["id"], "tiktok_pixel_code": TIKTOK_CODE, "tiktok_access_token": TIKTOK_TOKEN},
    )
    csrf = csrf_of_page(c, f"{url}/settings")
    c.post(f"{url}/settings/tiktok-check", data={"csrf": csrf})
    steps = steps_of(c.get(url).text)
    assert steps["Snippet seen on the storefront"] and steps["PageView seen"]
    assert not steps["Purchase seen"] and not steps["Order webhook received"]
    assert steps["TikTok credentials verified"]
    # A new access token is not verified until checked again, or until TikTok takes an event.
    api.allow("other-token", TIKTOK_CODE)
    runtime.management.run(
        "pixel.update", {"id": pixel["id"], "tiktok_access_token": "other-token"}
    )
    assert not steps_of(c.get(url).text)["TikTok credentials verified"]
    server = {"event": "Purchase", "event_id": "purchase:check-1", "event_time": time.time(),
              "properties": {"value": 3, "currency": "USD"}}  # fmt: skip
    r = c.post("/api/v1/events", json=api_body(pixel["id"], [server]),
               headers=api_headers(pixel["api_key"]))  # fmt: skip
    assert r.status_code == 200
    assert api.wait_for(lambda a: "purchase:check-1" in a.event_ids(TIKTOK_CODE))
    deadline = time.monotonic() + 20  # until the ledger row is in ClickHouse
    while not steps_of(c.get(url).text)["TikTok credentials verified"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_the_checklist_has_the_catalog_with_its_match_rate(env: dict[str, Any]) -> None:
    from pixel_server.catalog.store import Stored, SyncRun
    from pixel_server.pipeline.record import Record
    from tests.catalog_helpers import item

    c, runtime = env["client"], env["runtime"]
    pixel = add_pixel(runtime, name="Catalog shop")
    login(c, pixel["owner_token"])
    url = f"/dashboard/{pixel['id']}"
    assert steps_of(c.get(url).text)["Catalog synced"] is False
    runtime.catalog.write(pixel["id"], [Stored(item("SKU-1")), Stored(item("SKU-2"))])
    runtime.catalog.record(SyncRun(pixel["id"], "sync-1", "full", status="ok"))
    now = time.time()
    runtime.insert_events(
        [Record(pixel["id"], "ViewContent", "ViewContent", f"vc-{sku}", "browser", now, now,
                contents=[(sku, "1", "", "", "", 1, None)]) for sku in ("SKU-1", "SKU-2", "X-9")],
        "checklist-catalog",
    )  # fmt: skip
    steps = steps_of(c.get(url).text)
    assert steps["Catalog synced: 67% of product ids match it"] is True


def test_cli_issues_agency_and_expiring_tokens(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = cli_json(data, "pixel", "add", "--name", "A")["id"]
    second = cli_json(data, "pixel", "add", "--name", "B")["id"]
    token = cli_json(data, "token", "add", "--pixels", f"{first},{second}", "--role", "reader",
                     "--label", "Agency", "--expires", "2099-01-01")  # fmt: skip
    assert token["pixel_ids"] == [first, second] and token["expires_at"] > 4e9
    bad = cli(data, "token", "add", "--pixels", f"{first},px_nope", check=False)
    assert bad.returncode != 0 and "px_nope" in bad.stderr


def test_settings_page_says_when_tiktok_rejects_the_token(
    env: dict[str, Any], api: TikTokStandIn
) -> None:
    c, runtime = env["client"], env["runtime"]
    tiktok = {"tiktok_pixel_code": TIKTOK_CODE, "tiktok_access_token": "not-a-valid-token"}
    pixel = add_pixel(runtime, name="Rejected shop", tiktok_api_base=api.base_url, **tiktok)
    event = {"event": "Purchase", "event_id": "purchase:rej-1", "event_time": time.time(),
             "properties": {"value": 5, "currency": "USD"}}  # fmt: skip
    r = c.post("/api/v1/events", json=api_body(pixel["id"], [event]),
               headers=api_headers(pixel["api_key"]))  # fmt: skip
    assert r.status_code == 200
    login(c, pixel["owner_token"])
    url = f"/dashboard/{pixel['id']}/settings"
    deadline = time.monotonic() + 20
    while "TikTok rejects this pixel's access token" not in (page := c.get(url).text):
        assert time.monotonic() < deadline, "the forwarder's 40105 never reached the page"
        time.sleep(0.1)
    assert "not-a-valid-token" not in page
