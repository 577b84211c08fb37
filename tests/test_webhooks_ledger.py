"""The ledger of handled webhook deliveries: busy/done states, persistence
across reopening, expiry, and a torn last line after a crash."""

from __future__ import annotations

from pathlib import Path

from pixel_server.ingest.webhooks.ledger import FILE_NAME, WebhookLedger


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_new_then_busy_then_done(tmp_path: Path) -> None:
    ledger = WebhookLedger(tmp_path)
    ledger.open()
    assert ledger.state("d1") == "new"
    assert ledger.claim("d1") and not ledger.claim("d1")
    assert ledger.state("d1") == "busy"
    ledger.done("d1", ttl=60)
    assert ledger.state("d1") == "done"


def test_a_released_key_is_new_again(tmp_path: Path) -> None:
    ledger = WebhookLedger(tmp_path)
    ledger.open()
    ledger.claim("d1")
    ledger.release("d1")  # the delivery failed: the platform's retry must be handled
    assert ledger.state("d1") == "new"


def test_done_keys_survive_reopening_and_busy_ones_do_not(tmp_path: Path) -> None:
    ledger = WebhookLedger(tmp_path)
    ledger.open()
    ledger.done("d1", ttl=60)
    ledger.claim("d2")
    ledger.close()
    again = WebhookLedger(tmp_path)
    again.open()
    assert (again.state("d1"), again.state("d2")) == ("done", "new")


def test_keys_expire(tmp_path: Path) -> None:
    clock = Clock()
    ledger = WebhookLedger(tmp_path, clock=clock)
    ledger.open()
    for n in range(5):
        ledger.done(f"short-{n}", ttl=60)
    ledger.done("long", ttl=3600)
    clock.now += 120
    assert (ledger.state("short-0"), ledger.state("long")) == ("new", "done")
    ledger.close()
    reopened = WebhookLedger(tmp_path, clock=clock)
    reopened.open()
    assert len(reopened) == 1  # the expired keys were not loaded
    # mostly expired: the file was rewritten with the live key only
    assert len((tmp_path / FILE_NAME).read_text().splitlines()) == 1


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    ledger = WebhookLedger(tmp_path)
    ledger.open()
    ledger.done("d1", ttl=60)
    ledger.close()
    with (tmp_path / FILE_NAME).open("ab") as f:
        f.write(b"17999999")  # a crash mid-write
    again = WebhookLedger(tmp_path)
    again.open()
    assert again.state("d1") == "done"
    again.done("d2", ttl=60)
    again.close()
    last = WebhookLedger(tmp_path)
    last.open()
    assert (last.state("d1"), last.state("d2")) == ("done", "done")


def test_ids_are_not_written_in_clear(tmp_path: Path) -> None:
    ledger = WebhookLedger(tmp_path)
    ledger.open()
    ledger.done("delivery|px_1|shopify|b54557e4-bdd9", ttl=60)
    ledger.close()
    assert b"b54557e4" not in (tmp_path / FILE_NAME).read_bytes()
