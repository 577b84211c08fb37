"""Storage: migrations, the pixel registry, client URLs.

Runs on the embedded engine, and also against a ClickHouse server when
PIXEL_TEST_CLICKHOUSE_URL is set (http://user:pass@host:8123).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from pixel_server import credentials
from pixel_server.pixel import RegistryError
from pixel_server.secretbox import SecretBox, SecretKeyError
from pixel_server.storage import migrate
from pixel_server.storage.client import StorageError, Target, connect, parse_url
from pixel_server.storage.database import Database
from pixel_server.storage.pixels import PixelStore

SERVER_URL = os.environ.get("PIXEL_TEST_CLICKHOUSE_URL", "")


@pytest.fixture(params=["embedded", "server"])
def target(request: pytest.FixtureRequest, engine_dir: Path) -> Target:
    db = "t_" + uuid.uuid4().hex[:12]
    if request.param == "server":
        if not SERVER_URL:
            pytest.skip("PIXEL_TEST_CLICKHOUSE_URL is not set: no ClickHouse server to test")
        return parse_url(SERVER_URL, db)
    return parse_url(f"chdb://{engine_dir}", db)


@pytest.fixture
def client(target: Target) -> Iterator[Client]:
    c = connect(target)
    yield c
    c.command(f"DROP DATABASE IF EXISTS `{target.database}`")


@pytest.fixture
def box_path(tmp_path: Path) -> Path:
    return tmp_path / "secret.key"


def tables(client: Client) -> set[str]:
    return {r[0] for r in client.query("SHOW TABLES").result_rows}


def test_migrations_apply_once_in_order_on_a_new_database(client: Client) -> None:
    shipped = migrate.available()
    assert [m.version for m in shipped] == sorted(m.version for m in shipped)
    applied = migrate.apply(client)
    assert [m.version for m in applied] == [m.version for m in shipped]
    assert {"events", "deliveries", "pixels", "report_tokens", "schema_migrations"} <= tables(
        client
    )
    rows = client.query("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [r[0] for r in rows.result_rows] == [m.version for m in shipped]


def test_migrations_are_skipped_on_an_existing_database(client: Client) -> None:
    migrate.apply(client)
    assert migrate.apply(client) == []
    assert migrate.pending(client) == []
    count = client.query("SELECT count() FROM schema_migrations").result_rows[0][0]
    assert count == len(migrate.available())


def test_a_migration_cut_short_is_rerun_safely(client: Client) -> None:
    first = migrate.available()[0]
    client.command(first.statements()[0])  # half-applied: one table, no record
    assert next(m.version for m in migrate.apply(client)) == first.version


def test_events_table_explains_its_engine() -> None:
    sql = migrate.available()[0].sql
    assert "ReplacingMergeTree" in sql and "PARTITION BY" in sql and "ORDER BY" in sql


def test_pixel_registry_round_trip(client: Client, box_path: Path) -> None:
    migrate.apply(client)
    store = PixelStore(client, SecretBox(box_path))
    pixel, api_key, owner = store.add(name="Shop", origins=["https://Shop.Example.com/"])
    assert pixel.origins == ("https://shop.example.com",)
    # Shopify's custom pixels run in a sandboxed iframe: its opaque origin is "null".
    assert store.update(pixel.id, origins=["null"]).origins == ("null",)
    store.update(pixel.id, origins=["https://shop.example.com"])
    assert credentials.matches(api_key, store.get(pixel.id).api_key_hash)
    store.update(pixel.id, name="Shop 2", timezone="Europe/Berlin")
    again = store.get(pixel.id)
    assert (again.name, again.timezone) == ("Shop 2", "Europe/Berlin")
    _, new_key = store.rotate_key(pixel.id)
    assert not credentials.matches(api_key, store.get(pixel.id).api_key_hash)
    assert credentials.matches(new_key, store.get(pixel.id).api_key_hash)
    assert [t.role for t in store.tokens(pixel.id)] == ["owner"]
    reader = store.add_token(pixel.id, "reader")
    store.revoke_token(reader)
    assert sorted((t.role, t.revoked) for t in store.tokens(pixel.id)) == [
        ("owner", False),
        ("reader", True),
    ]
    # nothing we issued is stored in clear
    dump = str(client.query("SELECT * FROM pixels").result_rows)
    dump += str(client.query("SELECT * FROM report_tokens").result_rows)
    for secret in (api_key, new_key, owner, reader):
        assert secret not in dump


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"origins": ["shop.example.com"]}, "must look like"),
        ({"origins": ["https://shop.example.com/path"]}, "no path"),
        ({"platform": "magento"}, "platform must be one of"),
        ({"timezone": "Mars/Olympus"}, "IANA"),
        ({"default_phone_region": "XX"}, "region"),
        ({"tiktok_pixel_code": "bad code!"}, "tiktok_pixel_code"),
        ({"tiktok_api_base": "not a url"}, "http(s) URL"),
        ({"colour": "red"}, "not a pixel setting"),
    ],
)
def test_registry_rejects_bad_settings(
    client: Client, box_path: Path, changes: dict, words: str
) -> None:
    migrate.apply(client)
    store = PixelStore(client, SecretBox(box_path))
    pixel, _, _ = store.add(name="Shop")
    with pytest.raises(RegistryError, match=words.replace("(", r"\(").replace(")", r"\)")):
        store.update(pixel.id, **changes)


@pytest.mark.parametrize(
    ("platform", "store_id", "stored"),
    [
        ("ecwid", "1003", "1003"),
        ("bigcommerce", "ABC123def", "abc123def"),
        ("shopify", "Acme-Shop.myshopify.com", "acme-shop.myshopify.com"),
        ("woocommerce", "https://shop.example.com/", "https://shop.example.com"),
    ],
)
def test_store_id_is_what_the_platform_calls_a_store(
    client: Client, box_path: Path, platform: str, store_id: str, stored: str
) -> None:
    migrate.apply(client)
    store = PixelStore(client, SecretBox(box_path))
    pixel, _, _ = store.add(name="Shop", platform=platform, store_id=store_id)
    assert store.get(pixel.id).store_id == stored


@pytest.mark.parametrize(
    ("platform", "store_id", "words"),
    [
        ("ecwid", "shop-1", "Ecwid store id is digits"),
        ("bigcommerce", "abc/123", "store hash"),
        ("shopify", "acme.com", "myshopify.com"),
        ("woocommerce", "shop.example.com", "site's URL"),
        ("html", "anything", "no meaning for platform html"),
    ],
)
def test_store_id_that_does_not_fit_the_platform_is_refused(
    client: Client, box_path: Path, platform: str, store_id: str, words: str
) -> None:
    migrate.apply(client)
    store = PixelStore(client, SecretBox(box_path))
    pixel, _, _ = store.add(name="Shop", platform=platform)
    with pytest.raises(RegistryError, match=words):
        store.update(pixel.id, store_id=store_id)
    assert store.get(pixel.id).store_id == ""


def test_unknown_pixel_is_a_404(client: Client, box_path: Path) -> None:
    migrate.apply(client)
    with pytest.raises(RegistryError) as info:
        PixelStore(client, SecretBox(box_path)).get("px_nope")
    assert info.value.status == 404


def test_url_parsing() -> None:
    t = parse_url("http://user:p%40ss@ch.internal:8124/analytics")
    assert (t.kind, t.host, t.port, t.username, t.password, t.database) == (
        "http", "ch.internal", 8124, "user", "p@ss", "analytics"
    )  # fmt: skip
    assert "p%40ss" not in t.display and "***" in t.display
    assert parse_url("https://h").port == 8443
    e = parse_url("chdb:///tmp/x?database=abc")
    assert (e.kind, e.database, e.path) == ("chdb", "abc", Path("/tmp/x"))
    with pytest.raises(StorageError):
        parse_url("http://h/bad-name;drop")


def test_unreachable_server_is_a_storage_error() -> None:
    from tests.conftest import free_port

    db = Database(parse_url(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(StorageError, match="unavailable"):
        db.client()
    assert db.check() is not None and "unavailable" in db.check()  # type: ignore[operator]


SECRETS = {"tiktok_access_token": "tt-access-4f2a9c", "webhook_secret": "whsec-77ab01",
           "store_api_token": "shpat_9c1d2e3f"}  # fmt: skip


def test_credentials_are_sealed_in_clickhouse_and_open_for_the_server(
    client: Client, box_path: Path
) -> None:
    migrate.apply(client)
    store = PixelStore(client, SecretBox(box_path))
    pixel, _, _ = store.add(name="Shop", **SECRETS)
    stored = str(client.query("SELECT * FROM pixels").result_rows)
    for value in SECRETS.values():
        assert value not in stored
    assert stored.count("enc:v1:") == 3
    again = PixelStore(client, SecretBox(box_path)).get(pixel.id)  # a new process, same key
    assert {k: getattr(again, k) for k in SECRETS} == SECRETS
    assert box_path.stat().st_mode & 0o777 == 0o600


def test_without_the_key_nothing_opens(client: Client, box_path: Path, tmp_path: Path) -> None:
    migrate.apply(client)
    PixelStore(client, SecretBox(box_path)).add(name="Shop", **SECRETS)
    with pytest.raises(SecretKeyError):
        PixelStore(client, SecretBox(tmp_path / "another.key")).list()


def test_a_sealed_value_does_not_open_on_another_field(box_path: Path) -> None:
    box = SecretBox(box_path)
    sealed = box.seal("tt-access-4f2a9c", "px_a/tiktok_access_token")
    assert box.open(sealed, "px_a/tiktok_access_token") == "tt-access-4f2a9c"
    with pytest.raises(SecretKeyError):
        box.open(sealed, "px_b/tiktok_access_token")


def test_clear_credentials_of_an_older_version_are_sealed_and_merged_away(
    client: Client, box_path: Path
) -> None:
    migrate.apply(client)
    store = PixelStore(client, SecretBox(box_path))
    pixel, _, _ = store.add(name="Shop")
    client.command(  # as an older version of pixel-server stored them: in clear
        "INSERT INTO pixels (id, name, version, tiktok_access_token, webhook_secret)"
        " VALUES ({id:String}, 'Shop', {v:UInt64}, 'tt-legacy-clear', 'wh-legacy-clear')",
        parameters={"id": pixel.id, "v": time.time_ns()},
    )
    assert store.get(pixel.id).tiktok_access_token == "tt-legacy-clear"  # read as it is
    assert store.reseal() == 1
    assert store.reseal() == 0
    assert "legacy-clear" not in str(client.query("SELECT * FROM pixels").result_rows)
    assert store.get(pixel.id).webhook_secret == "wh-legacy-clear"


def test_rotating_the_key_reseals_everything_and_drops_the_old_key(
    client: Client, box_path: Path
) -> None:
    migrate.apply(client)
    box = SecretBox(box_path)
    store = PixelStore(client, box)
    pixel, _, _ = store.add(name="Shop", **SECRETS)
    old = box.current_key_id
    box.begin_rotation()
    assert store.reseal() == 1
    box.finish_rotation()
    stored = str(client.query("SELECT * FROM pixels").result_rows)
    assert f"enc:v1:{old}:" not in stored and f"enc:v1:{box.current_key_id}:" in stored
    assert list(orjson.loads(box_path.read_bytes())["keys"]) == [box.current_key_id]
    fresh = PixelStore(client, SecretBox(box_path)).get(pixel.id)
    assert fresh.store_api_token == SECRETS["store_api_token"]


def test_a_key_file_others_can_read_is_refused(box_path: Path) -> None:
    SecretBox(box_path).seal("x", "c")  # creates it, 0600
    box_path.chmod(0o644)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        SecretBox(box_path).seal("x", "c")
