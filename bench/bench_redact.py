"""Benchmark the PII scan of free text (pipeline step ``redact_free_text``).

Usage: ``python -m bench.bench_redact [--events 20000]``

Times the step alone on events built as ingest builds them, for three mixes:

* ``typical``: page URLs with a ttclid and UTM tags, a product description,
  custom properties without contact details (what nearly every event is);
* ``with PII``: the same with an email in the URL query, the description and a
  custom property (the rare event the step exists for);
* ``distinct URLs``: every event on its own page, so the per-string caches
  never hit (the worst case for the URL part).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import msgspec

from pixel_server.events.schema import Limits, decode_event
from pixel_server.pipeline import steps
from pixel_server.pixel import Pixel

PIXEL = Pixel(id="px_bench", name="bench")
NOW = time.time()


def build(i: int, *, pii: bool, distinct: bool) -> steps.Work:
    page = f"/products/p{i if distinct else i % 50}"
    mail = f"&email=shopper{i}%40example.com" if pii else ""
    body = {
        "event": "ViewContent",
        "event_id": f"e{i}",
        "event_time": NOW,
        "page": {
            "url": f"https://shop.example.com{page}?ttclid=E.C.P.CsABx{i % 50}Yz0123456789"
            f"&utm_source=tiktok&utm_campaign=winter_2026{mail}",
            "referrer": "https://www.tiktok.com/",
        },
        "properties": {
            "description": "Heavyweight cotton sweatshirt, 420 g/m², sizes S-XXL"
            + (f", gift for shopper{i}@example.com" if pii else ""),
            "contents": [{"content_id": "SW-RED-M", "price": 49.0, "quantity": 1}],
            "value": 49.0,
            "currency": "EUR",
            "campaign_note": f"reach me at shopper{i}@example.com" if pii else "spring drop 2",
        },
    }
    event = decode_event(
        msgspec.json.encode(body), source="browser", now=NOW, limits=Limits(), field_prefix="e"
    )
    return steps.start(event, steps.Context(pixel=PIXEL, source="browser", now=NOW))


def time_step(works: list[steps.Work]) -> float:
    ctx = steps.Context(pixel=PIXEL, source="browser", now=NOW)
    start = time.perf_counter()
    for work in works:
        steps.redact_free_text(work, ctx)
    return (time.perf_counter() - start) / len(works) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    n = parser.parse_args().events
    print(f"{platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, {n} events per mix")  # fmt: skip
    print(f"{'mix':16} {'µs/event':>9}")
    for name, pii, distinct in (
        ("typical", False, False),
        ("with PII", True, False),
        ("distinct URLs", False, True),
        ("distinct + PII", True, True),
    ):
        steps.redact_url.cache_clear()
        steps.redact_text.cache_clear()
        works = [build(i, pii=pii, distinct=distinct) for i in range(n)]
        print(f"{name:16} {time_step(works):9.1f}")


if __name__ == "__main__":
    main()
