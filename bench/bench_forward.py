"""Forwarding to TikTok: throughput and arrival→sent latency against the stand-in.

Usage: ``python bench/bench_forward.py [--events 200000] [--rate 5000]
[--duration 20] [--pixels 1] [--no-docs]``

The real forwarder (``sinks.tiktok``) reads a real write-ahead log (fsync on)
and writes its delivery ledger into embedded ClickHouse (chDB), as in the
server; TikTok is the local stand-in (``tests/standins/tiktok_api.py``) in its
own process, which validates every event as strictly as in the tests.

1. **Throughput**: ``--events`` Purchase events (hashed email and phone, IP,
   user agent, ttclid, _ttp, page, two products) are written to the log first;
   then the forwarder starts and the clock runs until the stand-in has accepted
   all of them (batches of 1,000).
2. **Latency at a steady load**: a producer thread appends ``--rate`` events/s
   for ``--duration`` seconds in 10 ms slices, each stamped with its arrival
   time; latency is the stand-in's acceptance time minus that stamp (same
   clock). The first two seconds are warm-up and not counted.

Writes the section "Forwarding to TikTok" of ``docs/benchmarks.md`` (replacing
only that section) unless ``--no-docs``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from pixel_server.metrics import Metrics
from pixel_server.pipeline import record as records
from pixel_server.pipeline.record import Record
from pixel_server.pipeline.wal import WriteAheadLog
from pixel_server.sinks.ledger import Ledger
from pixel_server.sinks.tiktok import Forwarder
from pixel_server.storage.client import parse_url
from pixel_server.storage.database import Database
from pixel_server.storage.pixels import Pixel

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Forwarding to TikTok"
TOKEN, CODE = "bench-token", "C4BENCH0001"
TARGET_EPS = 20_000.0
TARGET_P95_S = 2.0
WARMUP_S = 2.0
RUN = uuid.uuid4().hex[:8]


class StaticPixels:
    """The registry the forwarder reads, without ClickHouse."""

    loaded = True

    def __init__(self, pixels: list[Pixel]) -> None:
        self._by_id = {p.id: p for p in pixels}

    def get(self, pixel_id: str) -> Pixel | None:
        return self._by_id.get(pixel_id)


def make_record(pixel_id: str, n: int, now: float) -> Record:
    return Record(
        pixel_id=pixel_id, event="Purchase", received_event="Purchase",
        event_id=f"purchase:{RUN}-{n}", source="server", event_time=now,
        received_at=now, ip="13.57.97.131",
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15",
        ttclid="E.C.P.CvQBbench" + str(n), ttp="ttp.1700000000." + str(n), locale="en-US",
        email_sha256=["848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f"],
        phone_sha256=["9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd"],
        page_url=f"https://shop.example.com/thanks?order={n}",
        page_referrer="https://shop.example.com/checkout", value=59.9, currency="USD",
        order_id=str(n), content_type="product",
        contents=[("SKU-1077218-RED-M", "1077218", "Sweatshirt", "Apparel", "Acme", 2, 19.95),
                  ("SKU-2000111", "2000111", "Canvas Tote", "Bags", "Acme", 1, 20.0)],
    )  # fmt: skip


def start_standin() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.standins.tiktok_api", "--port", "0", "--token", TOKEN,
         "--record", "ids"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        raise RuntimeError(f"stand-in did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


_HTTP = httpx.Client(timeout=60)  # one client: building one per poll costs real CPU


def count(url: str) -> int:
    return int(_HTTP.get(f"{url}/_standin/count").json()["events"])


def wait_count(url: str, target: int, timeout: float) -> float:
    """Poll until the stand-in accepted ``target`` events; when it saw the last one."""
    deadline = time.monotonic() + timeout
    while (seen := count(url)) < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {seen} of {target} events arrived")
        time.sleep(0.1)
    arrivals = _HTTP.get(f"{url}/_standin/received").json()
    return max(t for _, t in arrivals)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-forward-"))
    standin, url = start_standin()
    database = Database(parse_url(f"chdb://{tmp / 'clickhouse'}?database=bench"))
    database.client()  # migrations
    wal = WriteAheadLog(tmp / "wal", ("forwarder",), fsync=True)
    pixels = [
        Pixel(id=f"px_bench{n}", name=f"Bench {n}", tiktok_pixel_code=CODE,
              tiktok_access_token=TOKEN, tiktok_api_base=url)
        for n in range(args.pixels)
    ]  # fmt: skip
    metrics = Metrics()
    forwarder = Forwarder(
        wal, StaticPixels(pixels), Ledger(database.client), metrics, spill_dir=tmp / "forwarder"
    )
    out: dict[str, Any] = {"events": args.events, "pixels": args.pixels}
    try:
        # 1. throughput: the log holds a backlog, the forwarder drains it
        now = time.time()
        for start in range(0, args.events, 1000):
            wal.append_blocking([
                records.encode(make_record(pixels[n % len(pixels)].id, n, now))
                for n in range(start, min(start + 1000, args.events))
            ])  # fmt: skip
        cpu0 = cpu_seconds()
        t0 = time.time()  # the stand-in stamps arrivals with time.time() too
        forwarder.start()
        t1 = wait_count(url, args.events, timeout=600)
        out["throughput_eps"] = args.events / (t1 - t0)
        out["throughput_cpu_s"] = cpu_seconds() - cpu0
        out["throughput_s"] = t1 - t0
        # 2. latency at a steady rate
        _HTTP.post(f"{url}/_standin/reset")
        stamps: dict[str, float] = {}
        stop = threading.Event()
        per_slice = max(1, round(args.rate / 100))

        def produce() -> None:
            n = 10_000_000
            next_at = time.monotonic()
            while not stop.is_set():
                arrived = time.time()
                batch = []
                for _ in range(per_slice):
                    r = make_record(pixels[n % len(pixels)].id, n, arrived)
                    stamps[r.event_id] = arrived
                    batch.append(records.encode(r))
                    n += 1
                wal.append_blocking(batch)
                next_at += 0.01
                time.sleep(max(0.0, next_at - time.monotonic()))

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        time.sleep(args.duration)
        stop.set()
        producer.join()
        wait_count(url, len(stamps), timeout=120)
        arrivals = _HTTP.get(f"{url}/_standin/received").json()
        start_at = min(stamps.values()) + WARMUP_S
        latencies = sorted(t - stamps[i] for i, t in arrivals if stamps[i] >= start_at)
        out["rate_eps"] = len(stamps) / args.duration
        out["latency_n"] = len(latencies)
        out["p50_s"] = latencies[len(latencies) // 2]
        out["p95_s"] = latencies[int(len(latencies) * 0.95)]
        out["p99_s"] = latencies[int(len(latencies) * 0.99)]
        out["max_s"] = latencies[-1]
        out["mean_s"] = statistics.fmean(latencies)
        out["requests"] = metrics.forward_requests.labels("sent")._value.get()
    finally:
        forwarder.stop()
        wal.close()
        database.close()
        standin.terminate()
        standin.wait()
    return out


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = os.cpu_count()
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{model or platform.processor()} ({cores} cores{mem}), {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")  # fmt: skip


def section(r: dict[str, Any], args: argparse.Namespace) -> str:
    ok_eps = "meets" if r["throughput_eps"] >= TARGET_EPS else "MISSES"
    ok_p95 = "meets" if r["p95_s"] <= TARGET_P95_S else "MISSES"
    command = (f".venv/bin/python bench/bench_forward.py --events {args.events} --rate {args.rate}"
               f" --duration {args.duration} --pixels {args.pixels}")  # fmt: skip
    return f"""{SECTION}

What it measures: the TikTok forwarder (`pixel_server/sinks/tiktok.py`) reading
the write-ahead log (fsync on), sending batches of 1,000 events to the local
stand-in of TikTok's Events API (`tests/standins/tiktok_api.py`, a separate
process that validates every event as strictly as the tests do), and writing
its delivery ledger into embedded ClickHouse. Events are Purchases with hashed
email and phone, IP, user agent, ttclid, _ttp, page and two products (about
1 KB of JSON each). `bench/bench_forward.py` has the details.

- **Throughput**: {args.events:,} events already in the log; the clock runs from
  the forwarder's start until the stand-in has accepted the last one.
- **Latency at a steady load**: {r["rate_eps"]:,.0f} events/s for {args.duration} s,
  appended in 10 ms slices; latency is the stand-in's acceptance time minus the
  event's arrival in the log (same clock), after {WARMUP_S:.0f} s of warm-up.

**Machine.** {machine()}. Measured {time.strftime("%Y-%m-%d")}; the stand-in
shares the machine's cores with the forwarder.

**Command.**

```
{command}
```

**Results.**

| measure | value | target |
|---|---:|---|
| throughput | {r["throughput_eps"]:,.0f} events/s ({r["throughput_s"]:.1f} s, \
{r["throughput_cpu_s"]:.1f} s CPU in the forwarder's process) | ≥ 20,000 events/s ({ok_eps}) |
| latency p50 | {r["p50_s"]:.2f} s | |
| latency p95 | {r["p95_s"]:.2f} s | ≤ 2 s ({ok_p95}) |
| latency p99 / max | {r["p99_s"]:.2f} s / {r["max_s"]:.2f} s | |

**Reading it.**

- At a steady load the latency is mostly waiting on purpose: up to 50 ms for
  the log read to gather records and up to `linger` = 250 ms for a batch to
  fill, then one request (a few tens of milliseconds at the stand-in). The
  forwarder commits its log offset separately, after the ledger rows are in
  ClickHouse (every ~200 ms), so that does not add to the latency.
- Throughput is bound by CPU: building the JSON payload per event in Python and
  the stand-in's validation on the other side. Four requests per pixel are in
  flight at once; more pixels add lanes (each with its own requests).
"""


def write_docs(text: str) -> None:
    current = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    start = current.find(SECTION)
    if start < 0:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        end = current.find("\n## ", start + len(SECTION))
        tail = current[end:] if end >= 0 else "\n"
        updated = current[:start] + text.rstrip("\n") + "\n" + tail
    DOCS.write_text(updated.rstrip("\n") + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rate", type=int, default=5_000, help="steady load, events/s")
    parser.add_argument("--duration", type=int, default=20, help="seconds of steady load")
    parser.add_argument("--pixels", type=int, default=1)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    result = run(args)
    for key, value in result.items():
        print(f"{key:18} {value:,.3f}" if isinstance(value, float) else f"{key:18} {value}")
    if not args.no_docs:
        write_docs(section(result, args))
        print(f"wrote the section {SECTION!r} of {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
