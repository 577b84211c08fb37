"""The multi-process layout end to end: ``serve --workers 2`` (a supervisor,
two ingest workers on one port, one storage process) as a subprocess on
127.0.0.1: ingest through the workers, everything else through the hop,
dedup exact across workers, ``pixel disable`` on every worker within 2 s,
and SIGKILL of a worker, of the storage process and of the whole process
group under load with every acknowledged event stored exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, subprocess_env
from tests.console_helpers import login
from tests.test_crash import (
    KILLS,
    ORIGIN,
    Load,
    assert_exactly_once,
    make_pixel,
    merged_copies,
    start_server,
)

WORKERS = "2"
BROWSER = {"origin": ORIGIN, "user-agent": "Mozilla/5.0 Chrome/126"}


def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def children(pid: int) -> dict[str, int]:
    """The supervisor's children by role ("storage", "w0", "w1")."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) != pid or b"--role" not in argv:
            continue
        role = argv[argv.index(b"--role") + 1].decode()
        slot = argv[argv.index(b"--slot") + 1].decode() if b"--slot" in argv else ""
        found["storage" if role == "storage" else f"w{slot}"] = int(entry.name)
    return found


def ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]


def per_worker_clients(url: str, count: int = 2) -> list[httpx.Client]:
    """One kept-alive connection to each worker (found by asking /healthz)."""
    clients: dict[int, httpx.Client] = {}
    for _ in range(200):
        c = httpx.Client(base_url=url, timeout=5)
        worker = c.get("/healthz").json()["worker"]
        if worker in clients:
            c.close()
        else:
            clients[worker] = c
        if len(clients) == count:
            return [clients[k] for k in sorted(clients)]
    raise AssertionError(f"connections reached only workers {sorted(clients)}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, dict[str, str], Path]]:
    data = tmp_path / "data"
    pixel = make_pixel(data)
    port = free_port()
    log = tmp_path / "server.log"
    proc = start_server(data, port, log, "--workers", WORKERS)
    url = f"http://127.0.0.1:{port}"
    assert wait_for(lambda: ready(url)), log.read_text()[-3000:]
    try:
        yield proc, url, pixel, data
    finally:
        if proc.poll() is None:
            stop(proc, log)


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pixel_server", *args],
        env=subprocess_env(PIXEL_DATA_DIR=str(data)),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_two_workers_end_to_end(
    server: tuple[subprocess.Popen[bytes], str, dict[str, str], Path], tmp_path: Path
) -> None:
    proc, url, pixel, data = server
    assert set(children(proc.pid)) == {"storage", "w0", "w1"}
    w0, w1 = per_worker_clients(url)
    r = w0.post(f"/collect?p={pixel['id']}", headers=BROWSER,
                json={"events": [{"event": "ViewContent", "event_id": "v1"}]})  # fmt: skip
    assert r.status_code == 202 and r.json()["accepted"] == 1
    r = w1.post("/api/v1/events", headers={"authorization": f"Bearer {pixel['api_key']}"},
                json={"event_source": "web", "event_source_id": pixel["id"],
                      "data": [{"event": "Purchase", "event_id": "o1",
                                "properties": {"value": 10, "currency": "USD"}}]})  # fmt: skip
    assert r.status_code == 200 and r.json()["accepted"] == 1
    # what the workers do not serve reaches the storage process through the hop
    r = login(w1, pixel["owner_token"])  # GET the form, POST it: cookies both ways
    assert r.status_code == 303, r.text
    page = w1.get(f"/dashboard/{pixel['id']}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    report = w1.get(f"/api/v1/reports/{pixel['id']}/overview",
                    headers={"authorization": f"Bearer {pixel['owner_token']}"})  # fmt: skip
    assert report.status_code == 200, report.text
    assert w0.get("/internal/v1/registry").status_code == 404  # never hopped
    assert w0.get("/no-such-page").status_code == 404
    # management commands reach the storage process (its admin socket) while it runs
    listed = cli(data, "pixel", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert pixel["id"] in listed.stdout
    # /readyz and /metrics cover every process
    checks = w0.get("/readyz").json()["checks"]
    assert set(checks["workers"]) == {"w0", "w1"} and checks["clickhouse"] == "ok"
    assert checks["worker"]["slot"] in (0, 1)  # idle connections close after 5 s
    assert wait_for(lambda: 'process="w1"' in w0.get("/metrics").text, timeout=10)
    metrics = w0.get("/metrics").text
    assert 'pixel_events_accepted_total{process="w0",source="browser"} 1.0' in metrics
    assert 'pixel_events_accepted_total{process="w1",source="server"} 1.0' in metrics
    for c in (w0, w1):
        c.close()
    stop(proc, tmp_path / "server.log")
    rows = dict(merged_copies(data, pixel["id"]))
    assert rows == {"v1": 1, "o1": 1}


def test_the_same_event_sent_to_two_workers_is_stored_once(
    server: tuple[subprocess.Popen[bytes], str, dict[str, str], Path], tmp_path: Path
) -> None:
    proc, url, pixel, data = server
    w0, w1 = per_worker_clients(url)
    pids = {c.get("/healthz").json()["pid"] for c in (w0, w1)}
    assert len(pids) == 2
    for n, c in enumerate((w0, w1)):
        body = {"events": [{"event": "AddToCart", "event_id": "twice"},
                           {"event": "AddToCart", "event_id": f"only-{n}"}]}  # fmt: skip
        r = c.post(f"/collect?p={pixel['id']}", headers=BROWSER, json=body)
        assert r.status_code == 202 and r.json()["accepted"] == 2
    for c in (w0, w1):
        c.close()
    stop(proc, tmp_path / "server.log")
    assert dict(merged_copies(data, pixel["id"])) == {"twice": 1, "only-0": 1, "only-1": 1}


def test_pixel_disable_reaches_every_worker_within_2_seconds(
    server: tuple[subprocess.Popen[bytes], str, dict[str, str], Path],
) -> None:
    _, url, pixel, data = server
    clients = per_worker_clients(url)

    def status(c: httpx.Client) -> int:
        r = c.post(f"/collect?p={pixel['id']}", headers=BROWSER,
                   json={"events": [{"event": "PageView"}]})  # fmt: skip
        return r.status_code

    assert [status(c) for c in clients] == [202, 202]
    assert cli(data, "pixel", "disable", pixel["id"]).returncode == 0
    assert wait_for(lambda: all(status(c) == 403 for c in clients), timeout=2)
    # a management command returns once every worker has its change
    added = cli(data, "pixel", "add", "--name", "New", "--origin", ORIGIN, "--json")
    new_id = json.loads(added.stdout)["id"]
    for c in clients:
        r = c.post(
            f"/collect?p={new_id}", headers=BROWSER, json={"events": [{"event": "PageView"}]}
        )
        assert r.status_code == 202, r.text
    for c in clients:
        assert c.post(f"/collect?p={pixel['id']}", headers=BROWSER,
                      json={"events": [{"event": "PageView"}]}).json()["error"]["code"] \
            == "pixel_disabled"  # fmt: skip
        c.close()


def kill_under_load(tmp_path: Path, victim: Callable[[subprocess.Popen[bytes]], None]) -> None:
    """Five kills chosen by ``victim`` under load, then exactly-once checks."""
    data = tmp_path / "data"
    log = tmp_path / "server.log"
    pixel = make_pixel(data)
    port = free_port()
    rng = random.Random(int(os.environ.get("PIXEL_TEST_SEED", "7")))
    holder = [start_server(data, port, log, "--workers", WORKERS, new_group=True)]
    loads = [Load(port, pixel, w) for w in range(4)]
    for t in loads:
        t.start()
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.3, 1.5))
        victim_proc = holder[0]
        victim(victim_proc)
        if victim_proc.poll() is not None:  # the whole group went: start it again
            holder[0] = start_server(data, port, log, "--workers", WORKERS, new_group=True)
        assert wait_for(lambda: ready(f"http://127.0.0.1:{port}")), log.read_text()[-3000:]
    time.sleep(0.5)
    for t in loads:
        t.stop.set()
        t.join()
    stop(holder[0], log)
    acked = [i for t in loads for i in t.acked]
    assert len(acked) > 100, "the load generator barely ran"
    assert len(set(acked)) == len(acked)
    assert_exactly_once(acked, merged_copies(data, pixel["id"]))


def test_sigkill_of_a_worker_under_load_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(3)

    def kill_worker(proc: subprocess.Popen[bytes]) -> None:
        victim = rng.choice(["w0", "w1"])
        # A worker killed in the previous round may still be in its restart delay.
        assert wait_for(lambda: victim in children(proc.pid)), children(proc.pid)
        os.kill(children(proc.pid)[victim], signal.SIGKILL)

    kill_under_load(tmp_path, kill_worker)


def test_sigkill_of_the_storage_process_under_load_loses_nothing(tmp_path: Path) -> None:
    def kill_storage(proc: subprocess.Popen[bytes]) -> None:
        os.kill(children(proc.pid)["storage"], signal.SIGKILL)

    kill_under_load(tmp_path, kill_storage)


def test_sigkill_of_the_whole_process_group_under_load_loses_nothing(tmp_path: Path) -> None:
    def kill_group(proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    kill_under_load(tmp_path, kill_group)


def test_readyz_reflects_a_stuck_worker(
    server: tuple[subprocess.Popen[bytes], str, dict[str, str], Path],
) -> None:
    proc, url, _, _ = server
    w0, w1 = per_worker_clients(url)
    stuck = children(proc.pid)["w1"]
    os.kill(stuck, signal.SIGSTOP)  # alive but not answering
    try:
        assert wait_for(lambda: w0.get("/readyz").status_code == 503, timeout=10)
        assert w0.get("/readyz").json()["checks"]["workers"]["w1"].startswith("silent")
    finally:
        os.kill(stuck, signal.SIGCONT)
    assert wait_for(lambda: w0.get("/readyz").status_code == 200, timeout=10)
    for c in (w0, w1):
        c.close()
