"""Benchmark the dedup index: bytes per key and ns per ``seen()`` call.

Usage: ``python bench/bench_dedup.py [--keys 1000000]``

Memory is what tracemalloc attributes to the index after inserting ``--keys``
distinct keys (the key strings themselves are allocated beforehand and not
counted: the index keeps only hashes). Timings feed freshly built strings, as
decoded requests would be, so str hashing is part of the cost.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
from collections.abc import Callable

from pixel_server.pipeline.dedup import DedupIndex

EVENTS = ("PageView", "ViewContent", "AddToCart", "InitiateCheckout", "Purchase", "Search")
SOURCES = ("browser", "server", "webhook")
WINDOW_S = 48 * 3600
NOW = 1_750_000_000.0

Key = tuple[str, str, str, str, float]


def make_keys(count: int, salt: str = "") -> list[Key]:
    """Realistic, distinct keys spread over the last 48 h (built fresh each call)."""
    return [
        (
            f"px_{(i % 50):016x}",
            EVENTS[i % len(EVENTS)],
            f"{salt}{i:08x}-4f1c-9a2e-{(i * 7919) % 10**12:012d}",
            SOURCES[i % len(SOURCES)],
            NOW - (i * 7) % WINDOW_S,
        )
        for i in range(count)
    ]


def bytes_per_key(count: int) -> float:
    keys = make_keys(count)
    index = DedupIndex(max_keys=count, clock=lambda: NOW)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for key in keys:
        index.seen(*key)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(index) == count
    return used / count


def ns_per_call(index: DedupIndex, keys: list[Key]) -> float:
    seen: Callable[..., bool] = index.seen
    start = time.perf_counter_ns()
    for pixel_id, event, event_id, source, event_time in keys:
        seen(pixel_id, event, event_id, source, event_time)
    return (time.perf_counter_ns() - start) / len(keys)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    count = parser.parse_args().keys

    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {cpu_model()}")
    print(f"memory: {bytes_per_key(count):.1f} bytes per key at {count:,} keys (tracemalloc)")

    index = DedupIndex(max_keys=2 * count, clock=lambda: NOW)
    new = ns_per_call(index, make_keys(count))
    duplicate = ns_per_call(index, make_keys(count))
    print(f"seen(), new key:       {new:.0f} ns per call")
    print(f"seen(), duplicate key: {duplicate:.0f} ns per call")

    capped = DedupIndex(max_keys=count // 2, clock=lambda: NOW)
    evicting = ns_per_call(capped, make_keys(count, salt="c"))
    print(f"seen(), new key at the cap (evicting): {evicting:.0f} ns per call")


if __name__ == "__main__":
    main()
