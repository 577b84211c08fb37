"""A pixel registry without ClickHouse, for driving the forwarder directly
(tests/test_forwarder.py, bench/bench_forward.py)."""

from __future__ import annotations

from pixel_server.pixel import Pixel


class StaticPixels:
    """The registry the forwarder reads: a fixed set of pixels."""

    loaded = True

    def __init__(self, pixels: list[Pixel]) -> None:
        self._by_id = {p.id: p for p in pixels}

    def get(self, pixel_id: str) -> Pixel | None:
        return self._by_id.get(pixel_id)

    def all(self) -> list[Pixel]:
        return list(self._by_id.values())
