"""Forwarding to TikTok: throughput and arrival→sent latency against the stand-in.

Usage: ``python bench/bench_forward.py [--events 100000] [--rate 5000]
[--duration 20] [--pixels 1] [--repeat 3] [--no-docs]``

The real forwarder (``sinks.tiktok``) reads a real write-ahead log (fsync on)
and writes its delivery ledger into embedded ClickHouse (chDB), as in the
server; TikTok is the local stand-in (``tests/standins/tiktok_api.py``) in its
own process, which validates every event as strictly as in the tests.

1. **Throughput**: ``--events`` Purchase events (hashed email and phone, IP,
   user agent, ttclid, _ttp, page, two products) are written to the log first;
   then the forwarder starts (default settings) and the clock runs until the
   stand-in has accepted all of them (batches of 1,000). ``--repeat`` runs;
   the median is reported with the range.
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
from pixel_server.pixel import Pixel
from pixel_server.sinks.ledger import Ledger
from pixel_server.sinks.tiktok import Forwarder
from pixel_server.storage.client import parse_url
from pixel_server.storage.database import Database
from tests.standins.registry import StaticPixels

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Forwarding to TikTok"
TOKEN, CODE = "bench-token", "C4BENCH0001"
TARGET_EPS = 20_000.0
TARGET_P95_S = 2.0
WARMUP_S = 2.0
RUN = uuid.uuid4().hex[:8]


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


STANDIN_PID = 0


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
    global STANDIN_PID
    STANDIN_PID = proc.pid
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


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of another process (the stand-in), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def forwarder_for(
    url: str, database: Database, pixels: list[Pixel], directory: Path, **options: Any
) -> tuple[WriteAheadLog, Forwarder, Metrics]:
    wal = WriteAheadLog(directory / "wal", ("forwarder",), fsync=True)
    metrics = Metrics()
    forwarder = Forwarder(wal, StaticPixels(pixels), Ledger(database.client), metrics,
                          spill_dir=directory / "forwarder", **options)  # fmt: skip
    return wal, forwarder, metrics


def throughput(
    url: str, database: Database, pixels: list[Pixel], directory: Path, events: int,
    **options: Any,
) -> dict[str, float]:  # fmt: skip
    """Fill the log with ``events``, then time the forwarder draining it."""
    _HTTP.post(f"{url}/_standin/reset")
    wal, forwarder, metrics = forwarder_for(url, database, pixels, directory, **options)
    try:
        now = time.time()
        for start in range(0, events, 1000):
            wal.append_blocking([
                records.encode(make_record(pixels[n % len(pixels)].id, n, now))
                for n in range(start, min(start + 1000, events))
            ])  # fmt: skip
        cpu0, standin0 = cpu_seconds(), process_cpu_seconds(STANDIN_PID)
        t0 = time.time()  # the stand-in stamps arrivals with time.time() too
        forwarder.start()
        t1 = wait_count(url, events, timeout=900)
        return {
            "eps": events / (t1 - t0),
            "seconds": t1 - t0,
            "cpu_s": cpu_seconds() - cpu0,  # includes the 10 Hz polling of the stand-in
            "standin_cpu_s": process_cpu_seconds(STANDIN_PID) - standin0,
            "spilled": metrics.forward_spilled._value.get(),
        }
    finally:
        forwarder.stop()
        wal.close()


def latency(
    url: str, database: Database, pixels: list[Pixel], directory: Path, rate: int,
    duration: int,
) -> dict[str, float]:  # fmt: skip
    """A steady ``rate`` for ``duration`` seconds; arrival→accepted per event."""
    _HTTP.post(f"{url}/_standin/reset")
    wal, forwarder, _ = forwarder_for(url, database, pixels, directory)
    forwarder.start()
    stamps: dict[str, float] = {}
    stop = threading.Event()
    per_slice = max(1, round(rate / 100))

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

    try:
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        time.sleep(duration)
        stop.set()
        producer.join()
        wait_count(url, len(stamps), timeout=300)
    finally:
        forwarder.stop()
        wal.close()
    arrivals = _HTTP.get(f"{url}/_standin/received").json()
    start_at = min(stamps.values()) + WARMUP_S
    lat = sorted(t - stamps[i] for i, t in arrivals if stamps[i] >= start_at)
    return {
        "rate_eps": len(stamps) / duration,
        "n": len(lat),
        "p50_s": lat[len(lat) // 2],
        "p95_s": lat[int(len(lat) * 0.95)],
        "p99_s": lat[int(len(lat) * 0.99)],
        "max_s": lat[-1],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-forward-"))
    standin, url = start_standin()
    database = Database(parse_url(f"chdb://{tmp / 'clickhouse'}?database=bench"))
    database.client()  # migrations
    pixels = [
        Pixel(id=f"px_bench{n}", name=f"Bench {n}", tiktok_pixel_code=CODE,
              tiktok_access_token=TOKEN, tiktok_api_base=url)
        for n in range(args.pixels)
    ]  # fmt: skip
    load = os.getloadavg()[0]
    try:
        # repeated, because a shared machine makes single runs vary
        runs = [
            throughput(url, database, pixels, tmp / f"backlog{i}", args.events)
            for i in range(args.repeat)
        ]
        runs.sort(key=lambda run: run["eps"])
        drain = dict(runs[len(runs) // 2])  # the median run
        drain["min_eps"], drain["max_eps"] = runs[0]["eps"], runs[-1]["eps"]
        drain["spilled"] = sum(run["spilled"] for run in runs)
        steady = latency(url, database, pixels, tmp / "latency", args.rate, args.duration)
    finally:
        database.close()
        standin.terminate()
        standin.wait()
    return {"drain": drain, "steady": steady, "load": load, "load_after": os.getloadavg()[0]}


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
    drain, steady = r["drain"], r["steady"]
    n = args.events
    fwd_us = drain["cpu_s"] / n * 1e6
    standin_us = drain["standin_cpu_s"] / n * 1e6
    cores_used = drain["eps"] * (fwd_us + standin_us) / 1e6
    met = drain["eps"] >= TARGET_EPS
    ok_eps = "met" if met else "not met on this machine"
    ok_p95 = "met" if steady["p95_s"] <= TARGET_P95_S else "not met"
    budget_us = 1e6 / TARGET_EPS
    if met:
        pace = "reaches the target with one pixel (one lane, four requests in flight)."
    elif fwd_us < budget_us:
        pace = (f"falls short here. {TARGET_EPS:,.0f} events/s leaves {budget_us:.0f} µs per "
                f"event for that\n  thread, more than the whole process spent ({fwd_us:.0f} µs), "
                "so a core of its own\n  should carry it: an inference from CPU time, not a "
                "measurement.")  # fmt: skip
    else:
        pace = (f"falls short here. {TARGET_EPS:,.0f} events/s leaves {budget_us:.0f} µs per "
                f"event for that\n  thread; the process spent {fwd_us:.0f} µs, part of it in the "
                "ledger and log threads\n  and all of it inflated by contention (cache misses), "
                "so whether a core of\n  its own carries the target is not shown by this "
                "run.")  # fmt: skip
    if drain["spilled"]:
        spill_note = (f"- {drain['spilled']:,.0f} events went through the retry store in these "
                      "runs: each is also\n  written, fsynced, read back and decoded again, the "
                      "price of keeping a lagging\n  pixel's events out of memory and out of "
                      "the log's way.")  # fmt: skip
    else:
        spill_note = ("- Nothing spilled, although the backlog was ten times a pixel's memory "
                      "share:\n  the reader hands each log batch to the lanes in slices of 500 "
                      "events, between\n  the lanes' sends, so it cannot run far ahead of a "
                      "pixel that keeps up.\n  Spilling is for pixels that do not.")  # fmt: skip
    command = (
        f".venv/bin/python bench/bench_forward.py --events {args.events} --rate {args.rate}"
        f" --duration {args.duration} --pixels {args.pixels} --repeat {args.repeat}"
    )
    return f"""{SECTION}

What it measures: the TikTok forwarder (`pixel_server/sinks/tiktok.py`, default
settings) reading the write-ahead log (fsync on), sending batches of 1,000
events to the local stand-in of TikTok's Events API
(`tests/standins/tiktok_api.py`, a separate process that validates every event
as strictly as the tests do), and writing its delivery ledger into embedded
ClickHouse. Events are Purchases with hashed email and phone, IP, user agent,
ttclid, _ttp, page and two products (about 900 bytes of JSON each).
`bench/bench_forward.py` has the details.

- **Throughput**: {n:,} events already in the log; the clock runs from the
  forwarder's start until the stand-in has accepted the last one. {args.repeat} runs.
- **Latency at a steady load**: {steady["rate_eps"]:,.0f} events/s for {args.duration} s, appended
  in 10 ms slices; latency is the stand-in's acceptance time minus the event's
  arrival in the log (same clock), after {WARMUP_S:.0f} s of warm-up.

**Machine.** {machine()}.
Measured {time.strftime("%Y-%m-%d")} while other work shared the machine (1-minute
load average {r["load"]:.1f} at the start, {r["load_after"]:.1f} at the end); the
stand-in runs on the same cores as the forwarder.

**Command.**

```
{command}
```

**Results.**

| measure | value | target |
|---|---:|---|
| throughput (median of {args.repeat} runs) | {drain["eps"]:,.0f} events/s | \
≥ 20,000 events/s ({ok_eps}) |
| throughput, slowest / fastest run | {drain["min_eps"]:,.0f} / {drain["max_eps"]:,.0f} events/s | |
| CPU per event, forwarder's process / stand-in | {fwd_us:.0f} µs / {standin_us:.0f} µs | |
| latency p50 | {steady["p50_s"]:.2f} s | |
| latency p95 | {steady["p95_s"]:.2f} s | ≤ 2 s ({ok_p95}) |
| latency p99 / max | {steady["p99_s"]:.2f} s / {steady["max_s"]:.2f} s | |

**Reading it.**

- The forwarder's event loop is one thread (decode, build, encode and send for
  every pixel); its share of a core sets the pace. The forwarder's process
  spent {fwd_us:.0f} µs of CPU per event (the loop, plus the ledger's ClickHouse
  inserts and the log reads, partly in parallel), the stand-in {standin_us:.0f} µs; at
  {drain["eps"]:,.0f} events/s the two used {cores_used:.1f} cores and other work the
  rest. The median run {pace}
- At a steady load the latency is mostly waiting on purpose: up to 50 ms for
  the log read to gather records and up to `linger` = 250 ms for a batch to
  fill, then one request. The log offset is committed separately, after the
  ledger rows are in ClickHouse, so that does not add to the latency.
- Where the forwarder's CPU goes (py-spy, GC callbacks): building and encoding
  the JSON event, decoding the stored record, the HTTP client, reading the log.
  Three changes halved it: the JSON is built through msgspec structs from a
  partial decode of the stored record (fields TikTok does not get stay
  undecoded); skipped events (browser copies, pixels without TikTok settings)
  cost only a decode of the record's leading fields; and queued events hold
  nothing the cyclic GC tracks (before, full collections walking queued
  records took over half of the CPU).
{spill_note}
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
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=5_000, help="steady load, events/s")
    parser.add_argument("--duration", type=int, default=20, help="seconds of steady load")
    parser.add_argument("--pixels", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs (median kept)")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    result = run(args)
    for name in ("drain", "steady"):
        print(name, {k: round(v, 3) for k, v in result[name].items()})
    print("load average", round(result["load"], 1), "->", round(result["load_after"], 1))
    if not args.no_docs:
        write_docs(section(result, args))
        print(f"wrote the section {SECTION!r} of {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
