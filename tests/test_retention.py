"""Per-pixel retention of raw events: a TTL per row, from the pixel's setting."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from pixel_server.pipeline.record import Record
from pixel_server.pixel import RegistryError
from tests.ingest_helpers import add_pixel, count_rows, runtime_of

MONTH = 31 * 86400


def old_event(pixel_id: str, event_id: str, months_ago: float) -> Record:
    at = time.time() - months_ago * MONTH
    return Record(pixel_id, "PageView", "PageView", event_id, "server", at, at)


def test_raw_events_older_than_the_pixels_retention_are_removed(client: TestClient) -> None:
    runtime = runtime_of(client)
    default, longer = add_pixel(runtime), add_pixel(runtime)
    runtime.management.run("pixel.update", {"id": longer["id"], "raw_retention_months": 36})
    assert runtime.registry.get(longer["id"]).raw_retention_months == 36  # type: ignore[union-attr]
    batch = [
        old_event(default["id"], "old", 26), old_event(default["id"], "young", 23),
        old_event(longer["id"], "old", 26),
    ]  # fmt: skip
    runtime.insert_events(batch, f"retention-{time.time()}")
    client_ = runtime.database.client()
    client_.command("OPTIMIZE TABLE events FINAL")  # a merge applies the TTL
    assert count_rows(runtime, default["id"]) == 1
    assert count_rows(runtime, default["id"], "event_id = 'young'") == 1
    assert count_rows(runtime, longer["id"]) == 1  # 36 months: kept

    # A shorter setting applies to the rows already stored.
    runtime.management.run("pixel.update", {"id": longer["id"], "raw_retention_months": 12})
    client_.command("OPTIMIZE TABLE events FINAL")
    assert count_rows(runtime, longer["id"]) == 0


def test_retention_must_be_whole_months_in_range(client: TestClient) -> None:
    runtime = runtime_of(client)
    pixel = add_pixel(runtime)
    for bad in (0, 241, "soon"):
        try:
            runtime.management.run("pixel.update", {"id": pixel["id"], "raw_retention_months": bad})
        except RegistryError as exc:
            assert "raw_retention_months" in str(exc)
        else:
            raise AssertionError(f"{bad!r} accepted")
