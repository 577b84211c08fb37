"""The TikTok forwarder, end to end against the local stand-in of TikTok's API:
which copies go, nothing lost and nothing sent twice under every injected
fault, dead letters and replay, per-pixel isolation, the delivery ledger, and a
SIGKILL in the middle of a batch.

The stand-in's record of what it accepted is the proof: each test counts event
ids there. Waits are bounded polls, never timing assertions.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.testclient import TestClient

from pixel_server import admin as admin_api
from pixel_server import cli
from pixel_server.app import create_app
from pixel_server.config import Settings
from pixel_server.metrics import Metrics
from pixel_server.pipeline import record as records
from pixel_server.pipeline.record import Record
from pixel_server.pipeline.wal import WriteAheadLog
from pixel_server.pixel import Pixel
from pixel_server.runtime import Runtime
from pixel_server.sinks.ledger import Ledger, dead_letters, load_records
from pixel_server.sinks.spill import PixelSpill, SpillEntry, read_chunk, write_chunk
from pixel_server.sinks.tiktok import Forwarder, RetryPolicy
from pixel_server.storage import migrate
from tests.conftest import UNLIMITED, free_port, subprocess_env
from tests.ingest_helpers import metric, open_database
from tests.standins.registry import StaticPixels
from tests.standins.tiktok_api import Fault, TikTokStandIn

ORIGIN = "https://shop.example.com"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
WAIT = 20.0  # an upper bound, never an expectation
# Milliseconds instead of seconds, so tests about retries stay fast.
FAST: dict[str, Any] = {
    "policy": RetryPolicy(base=0.02, factor=2.0, max_delay=0.1),
    "linger": 0.02,
    "read_interval": 0.01,
    # Long enough that a busy test machine does not turn a slow answer into a
    # timeout (and a legitimate re-send that exact counts would trip over).
    "request_timeout": 2.0,
    "commit_interval": 0.02,
    "rescan_interval": 0.1,
}


# ------------------------------------------------------------------ helpers


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll until true; returns whether it became true (the caller asserts)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@contextmanager
def forwarding_app(settings: Settings, **options: Any) -> Iterator[TestClient]:
    app = create_app(settings, forwarder_options={**FAST, **options})
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def runtime_of(client: TestClient) -> Runtime:
    return client.app.state.runtime  # type: ignore[attr-defined,no-any-return]


def tiktok_pixel(
    client: TestClient, api: TikTokStandIn, code: str = "", **settings: Any
) -> dict[str, Any]:
    """A pixel forwarding to the stand-in with a token it accepts for ``code``."""
    code = code or "C" + uuid.uuid4().hex[:12].upper()
    token = settings.pop("token", f"tok-{code}")
    api.allow(token, code)
    args = {"name": f"Shop {code}", "origins": [ORIGIN], "tiktok_pixel_code": code,
            "tiktok_access_token": token, "tiktok_api_base": api.base_url, **settings}  # fmt: skip
    pixel: dict[str, Any] = runtime_of(client).management.run("pixel.add", args)
    pixel["code"], pixel["token"] = code, token
    return pixel


def event(name: str = "Purchase", event_id: str = "", **extra: Any) -> dict[str, Any]:
    return {"event": name, "event_id": event_id or uuid.uuid4().hex,
            "event_time": time.time(), **extra}  # fmt: skip


def post_server(client: TestClient, pixel: dict[str, Any], events: list[dict[str, Any]]) -> None:
    answer = client.post(
        "/api/v1/events",
        json={"event_source": "web", "event_source_id": pixel["id"], "data": events},
        headers={"authorization": f"Bearer {pixel['api_key']}"},
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == len(events), answer.text


def post_browser(client: TestClient, pixel: dict[str, Any], events: list[dict[str, Any]]) -> None:
    answer = client.post(f"/collect?p={pixel['id']}", json={"events": events},
                         headers={"origin": ORIGIN, "user-agent": UA})  # fmt: skip
    assert answer.status_code == 202, answer.text


def ids(n: int, prefix: str = "e") -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def forwarder_status(client: TestClient) -> dict[str, Any]:
    """The forwarder's details, as `pixel-server status` shows them to operators."""
    status: dict[str, Any] = runtime_of(client).management.run("status", {})
    return status["checks"]["forwarder"]  # type: ignore[no-any-return]


def settled(client: TestClient) -> bool:
    """The forwarder has nothing left to do (log committed, ledger written)."""
    forwarder = runtime_of(client).forwarder
    assert forwarder is not None
    return forwarder.idle()


def committed(client: TestClient) -> bool:
    """The forwarder's log offset reached the end of the log."""
    wal = runtime_of(client).wal
    assert wal is not None
    return wal.reader("forwarder").backlog().bytes == 0


def loaded(client: TestClient) -> bool:
    """The loader has put everything into ``events`` (replay reads from there)."""
    wal = runtime_of(client).wal
    assert wal is not None
    return wal.reader("loader").backlog().bytes == 0


def deliveries(client: TestClient, pixel: dict[str, Any], **args: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = runtime_of(client).management.run(
        "deliveries.list", {"pixel": pixel["id"], "limit": 10_000, **args}
    )
    return rows


def outcomes(client: TestClient, pixel: dict[str, Any]) -> dict[str, list[str]]:
    """event_id -> outcomes of its attempts, oldest first (waits for the ledger)."""
    assert wait_for(lambda: settled(client))
    by_id: dict[str, list[tuple[int, str, str]]] = {}
    for row in deliveries(client, pixel):
        by_id.setdefault(row["event_id"], []).append(
            (row["attempt"], row["attempted_at"], row["outcome"])
        )
    return {k: [o for _, _, o in sorted(v)] for k, v in by_id.items()}


def exactly_once(api: TikTokStandIn, code: str, expected: list[str]) -> None:
    got = api.event_ids(code)
    twice = [i for i, n in Counter(got).items() if n > 1]
    assert not twice, f"sent twice: {twice[:5]}"
    assert sorted(got) == sorted(expected)


@pytest.fixture
def api() -> Iterator[TikTokStandIn]:
    with TikTokStandIn() as standin:
        yield standin


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with forwarding_app(settings) as c:
        yield c


# ------------------------------------------------------------ which copies go


def test_server_copies_go_once_and_everything_else_is_skipped(
    client: TestClient, api: TikTokStandIn
) -> None:
    pixel = tiktok_pixel(client, api)
    runtime = runtime_of(client)
    unconfigured = runtime.management.run("pixel.add", {"name": "No TikTok", "origins": [ORIGIN]})
    disabled = tiktok_pixel(client, api)
    post_server(client, pixel, [event(event_id=i) for i in ids(5)])
    post_server(client, pixel, [event(event_id="no-consent", consent="denied")])
    post_browser(client, pixel, [event("ViewContent", event_id="browser-only")])
    post_server(client, unconfigured, [event(event_id="nowhere")])
    post_server(client, disabled, [event(event_id="off")])
    runtime.management.run("pixel.update", {"id": disabled["id"], "enabled": False})
    post_browser(client, pixel, [event("AddToCart", event_id="after")])  # a marker
    assert wait_for(lambda: settled(client))
    exactly_once(api, pixel["code"], ids(5))
    assert api.event_ids(disabled["code"]) in ([], ["off"])  # raced with disabling
    skipped = "pixel_forward_skipped_total"
    assert metric(client, skipped, reason="consent_denied") == 1
    assert metric(client, skipped, reason="browser_copy") == 2
    assert metric(client, skipped, reason="not_configured") == 1
    assert all(o == ["sent"] for o in outcomes(client, pixel).values())
    assert set(outcomes(client, pixel)) == set(ids(5))


def test_browser_copies_go_in_server_only_mode_once_per_source(
    client: TestClient, api: TikTokStandIn
) -> None:
    pixel = tiktok_pixel(client, api, forward_browser=True)
    post_browser(client, pixel, [event("Purchase", event_id="purchase:1")])
    post_server(client, pixel, [event("Purchase", event_id="purchase:1")])
    post_browser(client, pixel, [event("Purchase", event_id="purchase:1")])  # double fire
    assert wait_for(lambda: settled(client))
    # TikTok gets both copies (it merges them by event_id), each exactly once
    assert api.event_ids(pixel["code"]) == ["purchase:1", "purchase:1"]
    rows = deliveries(client, pixel)
    assert sorted(r["source"] for r in rows) == ["browser", "server"]


def test_browser_copies_of_calls_on_tiktoks_own_pixel_never_go(
    client: TestClient, api: TikTokStandIn
) -> None:
    # The snippet marks (ttq:) the ids it gave calls the page made on TikTok's
    # own pixel: TikTok has those under its own ids already.
    pixel = tiktok_pixel(client, api, forward_browser=True)
    post_browser(client, pixel, [event("AddToCart", event_id="ttq:4f2a9c"),
                                 event("AddToCart", event_id="ours-1")])  # fmt: skip
    assert wait_for(lambda: settled(client))
    assert api.event_ids(pixel["code"]) == ["ours-1"]
    assert metric(client, "pixel_forward_skipped_total", reason="browser_copy") == 1


def test_test_event_code_goes_at_the_top_level(client: TestClient, api: TikTokStandIn) -> None:
    pixel = tiktok_pixel(client, api, tiktok_test_event_code="TEST12345")
    post_server(client, pixel, [event(event_id="t1")])
    other = tiktok_pixel(client, api)
    answer = client.post(
        "/api/v1/events",
        json={"event_source": "web", "event_source_id": other["id"], "test_event_code": "TEST777",
              "data": [event(event_id="t2")]},
        headers={"authorization": f"Bearer {other['api_key']}"},
    )  # fmt: skip
    assert answer.status_code == 200
    post_server(client, other, [event(event_id="t3")])
    assert wait_for(lambda: settled(client) and len(api.events()) == 3)
    assert api.test_event_codes(pixel["code"]) == ["TEST12345"]
    assert sorted(zip(api.event_ids(other["code"]), api.test_event_codes(other["code"]),
                      strict=True), key=str) == [("t2", "TEST777"), ("t3", None)]  # fmt: skip


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    "fault",
    [
        Fault("rate_limit", times=3),
        Fault("http_429", times=2, retry_after=0),
        Fault("http_5xx", times=2, status=503),
        Fault("http_5xx", times=1, status=500),
        Fault("hang", times=1, delay=5.0),  # longer than the client's 2 s timeout
        Fault("slow", times=2, delay=0.2),  # slow but answers: no retry needed
    ],
    ids=["40100", "429", "503", "500", "timeout", "slow"],
)
def test_transient_faults_lose_nothing_and_send_nothing_twice(
    client: TestClient, api: TikTokStandIn, fault: Fault
) -> None:
    pixel = tiktok_pixel(client, api)
    api.inject(fault)
    sent = ids(40, fault.kind)
    for start in range(0, 40, 10):
        post_server(client, pixel, [event(event_id=i) for i in sent[start : start + 10]])
    assert wait_for(lambda: len(api.events(pixel["code"])) >= 40 and settled(client))
    exactly_once(api, pixel["code"], sent)
    history = outcomes(client, pixel)
    assert all(o[-1] == "sent" and set(o[:-1]) <= {"retrying"} for o in history.values()), history
    if fault.kind != "slow":
        assert any(len(o) > 1 for o in history.values()), "the fault was never hit"
        assert metric(client, "pixel_forward_requests_total", result="retry") >= 1


def test_an_unknown_outcome_is_retried_with_the_same_event_id(
    client: TestClient, api: TikTokStandIn
) -> None:
    """TikTok took the batch but the answer never came: the retry is the only
    way an event reaches TikTok twice, and it carries the same event_id (TikTok
    deduplicates on event + event_id)."""
    pixel = tiktok_pixel(client, api)
    api.inject(Fault("hang", times=1, delay=5.0, process=True))
    post_server(client, pixel, [event(event_id=i) for i in ids(5, "u")])
    assert wait_for(lambda: len(api.events(pixel["code"])) >= 10 and settled(client))
    received = api.events(pixel["code"])
    first, again = received[:5], received[5:10]
    assert first == again  # same events, same ids, same payloads
    assert all(o[0] == "retrying" and o[-1] == "sent" for o in outcomes(client, pixel).values())
    rows = deliveries(client, pixel, status="retrying")
    assert all(r["http_status"] == 0 and "no answer" in r["tiktok_message"] for r in rows)


def test_permanent_errors_are_dead_lettered_with_tiktoks_message(
    client: TestClient, api: TikTokStandIn
) -> None:
    pixel = tiktok_pixel(client, api)
    api.allow(pixel["token"], "SOMEOTHERPIXEL")  # the token lost this pixel: 40001
    post_server(client, pixel, [event(event_id=i) for i in ids(3, "p")])
    assert wait_for(lambda: settled(client))
    assert api.event_ids(pixel["code"]) == []
    assert [x.code for x in api.exchanges] == [40001]  # not retried
    dead = deliveries(client, pixel, status="dead")
    assert sorted(r["event_id"] for r in dead) == ids(3, "p")
    assert {(r["tiktok_code"], r["attempt"]) for r in dead} == {(40001, 1)}
    assert all("No permission" in r["tiktok_message"] for r in dead)
    assert metric(client, "pixel_forward_events_total", outcome="dead") == 3


def test_one_bad_event_is_split_out_and_the_rest_still_go(
    client: TestClient, api: TikTokStandIn
) -> None:
    pixel = tiktok_pixel(client, api)
    api.inject(Fault("reject_event", times=None, event_id="b-6"))
    post_server(client, pixel, [event(event_id=i) for i in ids(10, "b")])
    assert wait_for(lambda: settled(client))
    exactly_once(api, pixel["code"], [i for i in ids(10, "b") if i != "b-6"])
    (dead,) = deliveries(client, pixel, status="dead")
    assert dead["event_id"] == "b-6" and dead["tiktok_code"] == 40002
    assert dead["tiktok_message"] == "data.0.properties.contents.0.content_id: Not a valid string"
    history = outcomes(client, pixel)
    assert history["b-6"][-1] == "dead" and history["b-6"][0] == "retrying"
    assert metric(client, "pixel_forward_requests_total", result="split") >= 1


def test_a_rejected_token_dead_letters_until_fixed_then_replay_delivers(
    client: TestClient, api: TikTokStandIn
) -> None:
    pixel = tiktok_pixel(client, api)
    runtime = runtime_of(client)
    api.revoke(pixel["token"])
    post_server(client, pixel, [event(event_id=i) for i in ids(4, "k")])
    assert wait_for(lambda: settled(client))
    ready = client.get("/readyz")
    assert ready.status_code == 200  # forwarding trouble never stops ingestion
    assert ready.json()["checks"]["forwarder"] == "degraded"
    assert pixel["id"] not in ready.text  # details only for operators:
    info = runtime.management.run("status", {})["checks"]["forwarder"]["pixels"][pixel["id"]]
    assert "failing" in info["credentials"] and "invalid" in info["credentials"]
    assert metric(client, "pixel_forward_credentials_failing", pixel_id=pixel["id"]) == 1
    post_server(client, pixel, [event(event_id=i) for i in ids(3, "later")])
    assert wait_for(lambda: settled(client))
    later = set(ids(3, "later"))  # not sent with a token known to be bad:
    assert not any(later & set(x.event_ids) for x in api.exchanges)
    dead = {r["event_id"]: r for r in deliveries(client, pixel, status="dead")}
    assert sorted(dead) == sorted(ids(4, "k") + ids(3, "later"))
    assert dead["later-0"]["attempt"] == 0 and "not sent" in dead["later-0"]["tiktok_message"]
    # the merchant fixes the token: the failing mark goes; replay sends the dead letters
    assert wait_for(lambda: loaded(client))
    api.allow("tok-fixed", pixel["code"])
    runtime.management.run("pixel.update", {"id": pixel["id"], "tiktok_access_token": "tok-fixed"})
    result = runtime.management.run("deliveries.replay", {"pixel": pixel["id"]})
    assert (result["dead"], result["queued"], result["missing"]) == (7, 7, 0)
    again = runtime.management.run("deliveries.replay", {"pixel": pixel["id"]})
    assert again["queued"] == 0  # queued once, not twice
    assert wait_for(lambda: len(api.events(pixel["code"])) >= 7 and settled(client))
    exactly_once(api, pixel["code"], ids(4, "k") + ids(3, "later"))
    assert wait_for(lambda: all(o[-1] == "sent" for o in outcomes(client, pixel).values()))
    assert metric(client, "pixel_forward_credentials_failing", pixel_id=pixel["id"]) == 0


def test_replay_since_a_time_only_queues_later_dead_letters(
    client: TestClient, api: TikTokStandIn
) -> None:
    pixel = tiktok_pixel(client, api)
    runtime = runtime_of(client)
    api.inject(Fault("reject_event", times=1, event_id="old"))
    post_server(client, pixel, [event(event_id="old")])
    assert wait_for(lambda: settled(client) and bool(deliveries(client, pixel, status="dead")))
    time.sleep(0.01)
    cut = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    api.inject(Fault("reject_event", times=1, event_id="new"))
    post_server(client, pixel, [event(event_id="new")])
    assert wait_for(lambda: settled(client) and len(deliveries(client, pixel, status="dead")) == 2)
    assert wait_for(lambda: loaded(client))
    result = runtime.management.run("deliveries.replay", {"pixel": pixel["id"], "since": cut})
    assert result["queued"] == 1
    assert wait_for(lambda: api.event_ids(pixel["code"]) == ["new"])


def test_a_replay_picked_up_before_its_guard_rows_still_goes(
    client: TestClient, api: TikTokStandIn
) -> None:
    """``replay`` writes the chunk, then the "queued for replay" rows; the
    forwarder may adopt the chunk in between, while the ledger still says dead."""
    pixel = tiktok_pixel(client, api)
    runtime = runtime_of(client)
    api.inject(Fault("reject_event", times=1, event_id="w-1"))
    post_server(client, pixel, [event(event_id="w-1")])
    assert wait_for(lambda: settled(client) and loaded(client))
    ch = runtime.database.client()
    (dead,) = dead_letters(ch, pixel["id"])
    stored = load_records(ch, pixel["id"], [dead.key])[dead.key]
    assert runtime.forwarder is not None
    write_chunk(runtime.forwarder.spill_dir / pixel["id"],
                [SpillEntry(dead.attempt, records.encode(stored))], replay=True)  # fmt: skip
    assert wait_for(lambda: api.event_ids(pixel["code"]) == ["w-1"])


# --------------------------------------------------------------- isolation


def test_a_hanging_pixel_does_not_hold_up_another(settings: Settings, api: TikTokStandIn) -> None:
    with forwarding_app(settings, lane_capacity=20) as client:
        down = tiktok_pixel(client, api)
        up = tiktok_pixel(client, api)
        api.inject(Fault("hang", times=None, delay=None, pixel_code=down["code"]))
        for n in range(6):  # interleaved in the log
            post_server(client, down, [event(event_id=i) for i in ids(25, f"down{n}")])
            post_server(client, up, [event(event_id=i) for i in ids(25, f"up{n}")])
        expected_up = [i for n in range(6) for i in ids(25, f"up{n}")]
        expected_down = [i for n in range(6) for i in ids(25, f"down{n}")]
        # every event of the healthy pixel arrives while the other one hangs...
        assert wait_for(lambda: len(api.events(up["code"])) >= len(expected_up))
        assert api.event_ids(down["code"]) == []
        # ...and the hanging pixel's events moved to disk, so the log offset moved on
        assert wait_for(lambda: committed(client))
        status = forwarder_status(client)
        assert status["pixels"][down["id"]]["spilled_bytes"] > 0
        assert status["pixels"][down["id"]]["retrying_since"]
        assert status["in_memory"] <= 20
        assert metric(client, "pixel_forward_retrying", pixel_id=down["id"]) == 1
        assert metric(client, "pixel_forward_retrying", pixel_id=up["id"]) == 0
        api.clear_faults()  # the endpoint comes back
        assert wait_for(lambda: len(api.events(down["code"])) >= len(expected_down))
        assert wait_for(lambda: not forwarder_status(client)["pixels"])
        exactly_once(api, up["code"], expected_up)
        exactly_once(api, down["code"], expected_down)
    assert not list((settings.data_dir / "forwarder").rglob("*.chunk"))  # all sent, all gone


def test_a_pixel_behind_spills_beyond_its_memory_share(
    settings: Settings, api: TikTokStandIn
) -> None:
    with forwarding_app(settings, lane_capacity=10, concurrency=1) as client:
        pixel = tiktok_pixel(client, api)
        api.inject(Fault("slow", times=None, delay=0.3, pixel_code=pixel["code"]))
        sent = ids(120, "s")
        for start in range(0, 120, 20):
            post_server(client, pixel, [event(event_id=i) for i in sent[start : start + 20]])
        assert wait_for(lambda: len(api.events(pixel["code"])) >= 120, timeout=30)
        assert metric(client, "pixel_forward_spilled_events_total") > 0
        exactly_once(api, pixel["code"], sent)


# ------------------------------------------------------------------ ledger


def test_ledger_rows_are_inserted_in_batches_and_hold_back_the_offset(
    client: TestClient, api: TikTokStandIn
) -> None:
    """The offset passes an event only once its ledger row is in ClickHouse."""
    runtime = runtime_of(client)
    assert runtime.forwarder is not None
    ledger = runtime.forwarder.ledger
    ledger.max_backoff = 0.2
    real = ledger.insert
    calls: list[int] = []
    down = {"on": True}

    def insert(columns: list[list[Any]], token: str) -> None:
        calls.append(len(columns[0]))
        if down["on"]:
            raise ConnectionError("injected: ClickHouse is down")
        real(columns, token)

    ledger.insert = insert
    pixel = tiktok_pixel(client, api)
    for n in range(5):
        post_server(client, pixel, [event(event_id=i) for i in ids(100, f"l{n}")])
    assert wait_for(lambda: len(api.events(pixel["code"])) >= 500 and len(calls) >= 2)
    assert not committed(client)  # sent, but not on the record yet: not committed
    assert client.get("/readyz").json()["checks"]["forwarder"] == "degraded"
    assert forwarder_status(client)["ledger"].startswith("failing: injected")
    down["on"] = False
    assert wait_for(lambda: settled(client))
    rows = deliveries(client, pixel)
    assert len(rows) == 500 and {r["outcome"] for r in rows} == {"sent"}
    assert len([c for c in calls if c]) < 50  # batches, not one insert per event
    exactly_once(api, pixel["code"], [i for n in range(5) for i in ids(100, f"l{n}")])


def test_cli_lists_dead_letters_without_a_server(
    settings: Settings, api: TikTokStandIn, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    with forwarding_app(settings) as client:
        pixel = tiktok_pixel(client, api)
        api.revoke(pixel["token"])
        post_server(client, pixel, [event(event_id="cli-1")])
        assert wait_for(lambda: settled(client) and loaded(client))
    for key, value in {"PIXEL_DATA_DIR": str(settings.data_dir),
                       "PIXEL_CLICKHOUSE_URL": settings.clickhouse_dsn}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    capsys.readouterr()
    assert cli.main(["deliveries", "list", "--pixel", pixel["id"], "--status", "dead"]) == 0
    out = capsys.readouterr().out
    assert "cli-1" in out and "dead" in out and "40105" in out
    assert cli.main(["deliveries", "list", "--pixel", pixel["id"], "--json"]) == 0
    (row,) = orjson.loads(capsys.readouterr().out)
    assert (row["event_id"], row["outcome"], row["tiktok_code"]) == ("cli-1", "dead", 40105)
    assert cli.main(["deliveries", "replay", "--pixel", pixel["id"]]) == 0
    assert "queued 1 of 1" in capsys.readouterr().out
    # queued on disk: the next start sends it, with the fixed token
    api.allow("tok-new", pixel["code"])
    assert cli.main(["pixel", "update", pixel["id"], "--tiktok-access-token", "tok-new"]) == 0
    with forwarding_app(settings):
        assert wait_for(lambda: api.event_ids(pixel["code"]) == ["cli-1"])


# ---------------------------------------------------------------- restart


def start_server(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = subprocess_env(PIXEL_DATA_DIR=str(data), PIXEL_PORT=str(port),
                         PIXEL_LOG_LEVEL="warning", **UNLIMITED)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "pixel_server", "serve"], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)  # fmt: skip
    assert wait_for(lambda: _healthy(proc, port, log), timeout=60), log.read_text()[-3000:]
    return proc


def _healthy(proc: subprocess.Popen[bytes], port: int, log: Path) -> bool:
    assert proc.poll() is None, log.read_text()[-3000:]
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def admin(data: Path, op: str, args: dict[str, Any]) -> Any:
    return admin_api.call(data, op, args, timeout=30)


def test_sigkill_mid_batch_then_restart_delivers_everything(
    tmp_path: Path, api: TikTokStandIn
) -> None:
    data, log, port = tmp_path / "data", tmp_path / "server.log", free_port()
    proc = start_server(data, port, log)
    try:
        api.allow("tok-crash", "CRASHPIXEL")
        pixel = admin(data, "pixel.add", {
            "name": "Crash", "origins": [ORIGIN], "tiktok_pixel_code": "CRASHPIXEL",
            "tiktok_access_token": "tok-crash", "tiktok_api_base": api.base_url,
        })  # fmt: skip
        url = f"http://127.0.0.1:{port}/api/v1/events"
        auth = {"authorization": f"Bearer {pixel['api_key']}"}

        def post(batch: list[str]) -> None:
            body = {"event_source": "web", "event_source_id": pixel["id"],
                    "data": [event(event_id=i) for i in batch]}  # fmt: skip
            assert httpx.post(url, json=body, headers=auth, timeout=10).status_code == 200

        # TikTok takes the first batch but its answer never comes (unknown outcome)...
        api.inject(Fault("hang", times=1, delay=None, process=True))
        first, second = ids(50, "first"), ids(50, "second")
        post(first)
        assert wait_for(lambda: len(api.events("CRASHPIXEL")) >= 50)
        # ...while a later batch is sent, answered and on the ledger, yet the log
        # offset cannot pass the first batch
        post(second)
        assert wait_for(lambda: len(admin(data, "deliveries.list", {
            "pixel": pixel["id"], "status": "sent", "limit": 1000})) == 50)  # fmt: skip
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        api.release()
        proc = start_server(data, port, log)
        third = ids(20, "third")
        post(third)
        assert wait_for(lambda: set(api.event_ids("CRASHPIXEL")) >= set(first + second + third))
        counts = Counter(api.event_ids("CRASHPIXEL"))
        resent = {i for i, n in counts.items() if n > 1}
        # only events whose outcome was unknown went again; none twice otherwise
        assert resent == set(first)
        assert all(counts[i] == 2 for i in first)
        assert all(counts[i] == 1 for i in second + third)
        copies = [e for e in api.events("CRASHPIXEL") if e["event_id"] == first[0]]
        assert copies[0] == copies[1]  # the retry is the same event, same event_id
        # the log handed both batches out again; the ledger knew the second was sent
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert 'pixel_forward_skipped_total{reason="already_final"} 50.0' in text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]


# ------------------------------------------------------------ retry store


def entry(n: int, origin: tuple[int, int] = (-1, -1)) -> SpillEntry:
    record = Record("px_spill", "Lead", "Lead", f"s-{n}", "server", time.time(), time.time())
    return SpillEntry(n, records.encode(record), *origin)


def test_spill_chunks_hold_a_request_each_and_survive_a_torn_tail(tmp_path: Path) -> None:
    spill = PixelSpill(tmp_path / "px", chunk_events=4)
    spill.append(entry(n) for n in range(10))
    spill.sync()
    spill.close()
    files = sorted((tmp_path / "px").glob("*.chunk"))
    assert [len(read_chunk(f)) for f in files] == [4, 4, 2]
    with files[-1].open("ab") as f:
        f.write(b"\x10\x00\x00\x00\xde\xad")  # a record cut short by a crash
    again = PixelSpill(tmp_path / "px")
    assert again.scan() == 3
    sizes = []
    while (taken := again.take()) is not None:
        sizes.append(len(taken[1]))
    assert sizes == [4, 4, 2]  # the torn record is not there; the rest is


def test_a_rewritten_chunk_replaces_the_old_one_atomically(tmp_path: Path) -> None:
    spill = PixelSpill(tmp_path / "px")
    spill.append(entry(n) for n in range(5))
    taken = spill.take()
    assert taken is not None
    chunk, entries = taken
    spill.rewrite(chunk, entries[3:])  # three went, two to retry
    assert [e.attempts for e in read_chunk(chunk.path)] == [3, 4]
    assert not list((tmp_path / "px").glob("*.tmp"))
    again = spill.take()
    assert again is not None and again[0] is chunk  # retried first
    spill.done(chunk)
    spill.remove(chunk)
    assert not chunk.path.exists() and not spill.backlog


def test_after_a_crash_spilled_events_the_log_hands_out_again_are_not_sent_twice(
    tmp_path: Path, settings: Settings, api: TikTokStandIn
) -> None:
    """A spilled event counts only once the log's offset passed it: a crash
    before that means the log re-serves it, so its spilled copy is dropped."""
    api.allow("tok-s", "SPILLPIXEL")
    pixel = Pixel(id="px_spill", name="Spill", tiktok_pixel_code="SPILLPIXEL",
                  tiktok_access_token="tok-s", tiktok_api_base=api.base_url)  # fmt: skip
    registry = StaticPixels([pixel])
    wal = WriteAheadLog(tmp_path / "wal", ("forwarder",), fsync=False)
    now = time.time()
    logged = [Record("px_spill", "Lead", "Lead", f"log-{n}", "server", now, now) for n in range(3)]
    end = wal.append_blocking([records.encode(r) for r in logged])
    assert end.offset > 0
    # the previous run spilled log-0 (not yet committed), and a replay queued r-1
    write_chunk(tmp_path / "fw" / "px_spill", [
        SpillEntry(1, records.encode(logged[0]), end.segment, 0),
        SpillEntry(2, records.encode(Record("px_spill", "Lead", "Lead", "r-1", "server", now,
                                            now))),
    ])  # fmt: skip
    client = open_database(settings)
    migrate.apply(client)
    forwarder = Forwarder(wal, registry, Ledger(lambda: client), Metrics(),
                          spill_dir=tmp_path / "fw", fsync=False, **FAST)  # fmt: skip
    forwarder.start()
    try:
        assert wait_for(lambda: len(api.events("SPILLPIXEL")) >= 4 and forwarder.idle())
        exactly_once(api, "SPILLPIXEL", ["log-0", "log-1", "log-2", "r-1"])
    finally:
        forwarder.stop()
        wal.close()
    assert not list((tmp_path / "fw").rglob("*.chunk"))
