"""Specification of the write-ahead log (pixel_server.pipeline.wal).

"A 2xx means the event is on disk": every acknowledged record survives reopen
and crashes, each reader sees each record exactly once up to its committed
offset, and damage to the files never crashes the log or yields garbage.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from pixel_server.pipeline.wal import (
    HEADER_SIZE,
    Batch,
    LogFull,
    LogReader,
    Position,
    WalClosed,
    WalLocked,
    WriteAheadLog,
    encode_records,
)

READERS = ("loader", "forwarder")


def open_log(directory: Path, **options: Any) -> WriteAheadLog:
    options = {"fsync": False, "commit_interval": 0, **options}
    return WriteAheadLog(directory, READERS, **options)


def payloads(count: int, prefix: str = "ev", size: int = 20) -> list[bytes]:
    return [f"{prefix}-{i}-".encode().ljust(size, b"x") for i in range(count)]


def drain(reader: LogReader, max_records: int = 1000, commit: bool = False) -> list[bytes]:
    records: list[bytes] = []
    while (batch := reader.read_batch(max_records, 1 << 20)) is not None:
        records.extend(batch.records)
        if commit:
            reader.commit(batch.end)
    return records


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.log"))


def wal_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "pixel_server.wal" and r.levelno >= logging.WARNING
    ]


# ----------------------------------------------------------------- basics


def test_position_orders_like_the_log_and_round_trips_as_text() -> None:
    assert Position(1, 500) < Position(2, 0) < Position(2, 8)
    assert Position.parse(str(Position(42, 1024))) == Position(42, 1024)


def test_appended_records_come_back_in_order(tmp_path: Path) -> None:
    async def scenario() -> list[Position]:
        with open_log(tmp_path) as log:
            ends = [await log.append(payloads(3, prefix=f"r{i}")) for i in range(5)]
            assert log.durable_end >= ends[-1]
            assert drain(log.reader("loader")) == [
                p for i in range(5) for p in payloads(3, prefix=f"r{i}")
            ]
            return ends

    ends = asyncio.run(scenario())
    assert ends == sorted(ends)


def test_append_rejects_empty_payloads_and_accepts_an_empty_request(tmp_path: Path) -> None:
    async def scenario() -> None:
        with open_log(tmp_path) as log:
            with pytest.raises(ValueError):
                await log.append([b""])
            assert await log.append([]) == log.durable_end
            assert log.stats().records == 0

    asyncio.run(scenario())


def test_many_concurrent_appends_share_few_fsyncs(tmp_path: Path) -> None:
    async def scenario() -> None:
        log = WriteAheadLog(tmp_path, READERS, fsync=True, commit_interval=0.05)
        try:
            await asyncio.gather(*(log.append(payloads(2, prefix=f"q{i}")) for i in range(200)))
            stats = log.stats()
        finally:
            await log.aclose()
        assert stats.records == 400
        assert stats.commits < 20
        assert stats.fsyncs < 40  # segment + directory fsyncs per commit, not per request

    asyncio.run(scenario())


def test_segments_roll_at_the_configured_size_and_keep_requests_whole(tmp_path: Path) -> None:
    record = HEADER_SIZE + 20
    with open_log(tmp_path, segment_bytes=5 * record) as log:
        for i in range(10):
            log.append_blocking(payloads(3, prefix=f"r{i}"))
        files = segment_files(tmp_path)
        assert len(files) == 10  # 3 records fit, a 4th-6th would exceed 5: one request each
        assert [f.name for f in files][:2] == [f"{0:020d}.log", f"{1:020d}.log"]
        assert all(f.stat().st_size == 3 * record for f in files)
        assert len(drain(log.reader("loader"))) == 30


def test_a_request_larger_than_a_segment_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    with open_log(tmp_path, segment_bytes=64) as log:
        log.append_blocking([b"a" * 10])
        log.append_blocking([b"b" * 100, b"c" * 100])
        log.append_blocking([b"d" * 10])
        assert len(segment_files(tmp_path)) == 3
        assert drain(log.reader("loader")) == [b"a" * 10, b"b" * 100, b"c" * 100, b"d" * 10]


def test_batches_respect_limits_but_always_hold_one_record(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        log.append_blocking([b"x" * 500, b"y" * 10, b"z" * 10])
        reader = log.reader("loader")
        first = reader.read_batch(max_records=10, max_bytes=100)
        second = reader.read_batch(max_records=1, max_bytes=100)
        assert first is not None and second is not None
        assert first.records == [b"x" * 500]
        assert second.records == [b"y" * 10]


# ---------------------------------------------------------------- readers


def test_readers_are_independent(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        log.append_blocking(payloads(10))
        assert drain(log.reader("loader"), max_records=3, commit=True) == payloads(10)
        assert log.reader("loader").backlog().bytes == 0
        assert log.reader("forwarder").backlog() == (10 * (HEADER_SIZE + 20), 10)
        assert drain(log.reader("forwarder")) == payloads(10)


def test_a_reopened_log_resumes_each_reader_at_its_committed_offset(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        log.append_blocking(payloads(10))
        loader = log.reader("loader")
        batch = loader.read_batch(max_records=4, max_bytes=1 << 20)
        assert batch is not None
        loader.commit(batch.end)
        loader.read_batch(max_records=4, max_bytes=1 << 20)  # read, never committed
    with open_log(tmp_path) as log:
        assert drain(log.reader("loader")) == payloads(10)[4:]
        assert drain(log.reader("forwarder")) == payloads(10)


def test_rewind_serves_the_same_batch_with_the_same_id(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        log.append_blocking(payloads(5))
        reader = log.reader("loader")
        first = reader.read_batch(max_records=100, max_bytes=1 << 20)
        log.append_blocking(payloads(5, prefix="later"))  # would widen a fresh read
        reader.rewind()
        again = reader.read_batch(max_records=100, max_bytes=1 << 20)
        assert first is not None and again is not None
        assert (again.batch_id, again.records, again.end) == (
            first.batch_id,
            first.records,
            first.end,
        )
        rest = reader.read_batch(max_records=100, max_bytes=1 << 20)
        assert rest is not None and rest.records == payloads(5, prefix="later")
        assert rest.batch_id != first.batch_id


def test_batch_ids_survive_reopen_even_when_more_data_arrived(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        log.append_blocking(payloads(5))
        first = log.reader("loader").read_batch(max_records=100, max_bytes=1 << 20)
        log.append_blocking(payloads(5, prefix="later"))
    with open_log(tmp_path) as log:
        again = log.reader("loader").read_batch(max_records=100, max_bytes=1 << 20)
    assert first is not None and again is not None
    assert (again.batch_id, again.records) == (first.batch_id, first.records)
    assert first.batch_id.endswith(f"/{first.segment}/{first.first_offset}/{first.last_offset}")


def test_batch_ids_survive_a_crash(tmp_path: Path) -> None:
    live, crashed = tmp_path / "live", tmp_path / "crashed"
    with open_log(live) as log:
        log.append_blocking(payloads(5))
        first = log.reader("loader").read_batch(max_records=100, max_bytes=1 << 20)
        log.append_blocking(payloads(5, prefix="later"))
        shutil.copytree(live, crashed)  # the disk as a kill -9 would leave it
    (crashed / "LOCK").unlink()
    with open_log(crashed) as log:
        again = log.reader("loader").read_batch(max_records=100, max_bytes=1 << 20)
        assert first is not None and again is not None
        assert (again.batch_id, again.records) == (first.batch_id, first.records)
        assert drain(log.reader("loader")) == payloads(5, prefix="later")


def test_batch_ids_differ_between_logs(tmp_path: Path) -> None:
    ids = []
    for name in ("worker-a", "worker-b"):
        with open_log(tmp_path / name) as log:
            log.append_blocking(payloads(1))
            batch = log.reader("loader").read_batch(10, 1 << 20)
            assert batch is not None
            ids.append(batch.batch_id)
    assert ids[0] != ids[1]


def test_commit_cannot_go_past_what_was_read_or_backwards(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        log.append_blocking(payloads(4))
        reader = log.reader("loader")
        with pytest.raises(ValueError):
            reader.commit(log.durable_end)
        batch = reader.read_batch(2, 1 << 20)
        assert batch is not None
        reader.commit(batch.end)
        reader.commit(batch.end)  # idempotent
        with pytest.raises(ValueError):
            reader.commit(Position(0, 0))


def test_wait_wakes_a_worker_thread_when_data_becomes_durable(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        reader = log.reader("loader")
        assert reader.wait(timeout=0) is False
        woke: list[bool] = []
        worker = threading.Thread(target=lambda: woke.append(reader.wait(timeout=30)))
        worker.start()
        log.append_blocking(payloads(1))
        worker.join()
        assert woke == [True]


def test_wait_returns_false_once_the_log_is_closed(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    reader = log.reader("loader")
    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(reader.wait(timeout=30)))
    worker.start()
    log.close()
    worker.join()
    assert result == [False]


def test_corrupt_offset_file_restarts_that_reader_from_the_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with open_log(tmp_path) as log:
        log.append_blocking(payloads(3))
        drain(log.reader("loader"), commit=True)
    (tmp_path / "readers" / "loader.offset").write_bytes(b'{"committed": [0, 7')
    with caplog.at_level(logging.WARNING, logger="pixel_server.wal"), open_log(tmp_path) as log:
        assert drain(log.reader("loader")) == payloads(3)
    warnings = wal_warnings(caplog)
    assert len(warnings) == 1 and "loader" in warnings[0].getMessage()


def test_a_missing_offset_file_means_from_the_start(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        log.append_blocking(payloads(3))
        drain(log.reader("loader"), commit=True)
    (tmp_path / "readers" / "loader.offset").unlink()
    with open_log(tmp_path) as log:
        assert drain(log.reader("loader")) == payloads(3)


# -------------------------------------------------------- retention, budget


def test_retention_deletes_only_segments_every_reader_has_passed(tmp_path: Path) -> None:
    record = HEADER_SIZE + 20
    with open_log(tmp_path, segment_bytes=2 * record) as log:
        for i in range(6):
            log.append_blocking(payloads(2, prefix=f"r{i}"))  # one segment each
        assert log.segment_numbers() == [0, 1, 2, 3, 4, 5]
        drain(log.reader("loader"), commit=True)
        assert log.segment_numbers() == [0, 1, 2, 3, 4, 5]  # forwarder still needs all

        forwarder = log.reader("forwarder")
        for _ in range(5):  # segments 0, 1 done; half of 2
            batch = forwarder.read_batch(1, 1 << 20)
            assert batch is not None
            forwarder.commit(batch.end)
        assert log.segment_numbers() == [2, 3, 4, 5]
        assert len(segment_files(tmp_path)) == 4

        drain(forwarder, commit=True)
        assert log.segment_numbers() == [5]  # the active segment stays
        assert log.size_bytes() == 2 * record


def test_held_segments_outlive_every_reader_until_released(tmp_path: Path) -> None:
    record = HEADER_SIZE + 20
    with open_log(tmp_path, segment_bytes=2 * record) as log:
        log.append_blocking(payloads(2, prefix="a"))
        log.hold_segments()  # from the active segment (0) on
        for i in range(3):
            log.append_blocking(payloads(2, prefix=f"r{i}"))
        drain(log.reader("loader"), commit=True)
        drain(log.reader("forwarder"), commit=True)
        assert log.segment_numbers() == [0, 1, 2, 3]  # both passed them; the hold keeps them
        log.release_segments()
        assert log.segment_numbers() == [3]


def test_a_full_log_refuses_appends_without_losing_acknowledged_records(tmp_path: Path) -> None:
    record = HEADER_SIZE + 20
    with open_log(tmp_path, segment_bytes=4 * record, max_bytes=12 * record) as log:
        acknowledged: list[bytes] = []
        with pytest.raises(LogFull) as refused:
            for i in range(100):
                batch = payloads(1, prefix=f"n{i}")
                log.append_blocking(batch)
                acknowledged.extend(batch)
        assert refused.value.retry_after > 0
        assert log.size_bytes() <= log.max_bytes
        assert log.stats().rejected_full == 1
        assert len(acknowledged) == 12

        assert drain(log.reader("loader"), commit=True) == acknowledged
        with pytest.raises(LogFull):
            log.append_blocking(payloads(1, prefix="still-full"))  # forwarder lags
        assert drain(log.reader("forwarder"), commit=True) == acknowledged
        log.append_blocking(payloads(1, prefix="room-again"))
        assert drain(log.reader("loader")) == payloads(1, prefix="room-again")


def test_segment_numbers_never_go_back(tmp_path: Path) -> None:
    with open_log(tmp_path, segment_bytes=64) as log:
        for i in range(3):
            log.append_blocking(payloads(2, prefix=f"r{i}"))
        for name in READERS:
            drain(log.reader(name), commit=True)
        before = log.write_end.segment
    for path in segment_files(tmp_path):
        path.unlink()  # even if an operator cleans up
    with open_log(tmp_path) as log:
        log.append_blocking(payloads(1))
        assert log.write_end.segment >= before


# ------------------------------------------------------------- lifecycle


def test_close_is_idempotent_and_later_appends_fail(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append_blocking(payloads(1))
    log.close()
    log.close()
    with pytest.raises(WalClosed):
        log.append_blocking(payloads(1))
    with pytest.raises(WalClosed):
        log.reader("loader").read_batch(1, 100)


def test_one_log_per_directory(tmp_path: Path) -> None:
    with open_log(tmp_path), pytest.raises(WalLocked):
        open_log(tmp_path)


# --------------------------------------------------------------- recovery


def _last_segment_with_three_requests(directory: Path) -> tuple[Path, int]:
    """Write 3 records of 20 bytes; return the segment file and the last record's offset."""
    with open_log(directory) as log:
        for i in range(3):
            log.append_blocking(payloads(1, prefix=f"r{i}"))
    [segment] = segment_files(directory)
    return segment, 2 * (HEADER_SIZE + 20)


def _truncate_in_header(path: Path, last: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(last + 5)


def _truncate_in_payload(path: Path, last: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(last + HEADER_SIZE + 7)


def _flip_payload_byte(path: Path, last: int) -> None:
    data = bytearray(path.read_bytes())
    data[last + HEADER_SIZE + 3] ^= 0x40
    path.write_bytes(bytes(data))


def _zero_filled_tail(path: Path, last: int) -> None:
    with open(path, "ab") as f:
        f.write(bytes(4096))


@pytest.mark.parametrize(
    ("damage", "survivors"),
    [
        (_truncate_in_header, 2),
        (_truncate_in_payload, 2),
        (_flip_payload_byte, 2),
        (_zero_filled_tail, 3),
    ],
    ids=["truncated-header", "truncated-payload", "bad-crc", "zero-filled"],
)
def test_a_torn_tail_is_cut_off_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: Any, survivors: int
) -> None:
    segment, last = _last_segment_with_three_requests(tmp_path)
    damage(segment, last)
    expected = [p for i in range(survivors) for p in payloads(1, prefix=f"r{i}")]
    with caplog.at_level(logging.WARNING, logger="pixel_server.wal"):
        with open_log(tmp_path) as log:
            assert drain(log.reader("loader")) == expected
            log.append_blocking(payloads(1, prefix="after"))
            assert drain(log.reader("loader")) == payloads(1, prefix="after")
        with open_log(tmp_path) as log:  # the cut is permanent: no second warning
            assert drain(log.reader("forwarder")) == [*expected, *payloads(1, prefix="after")]
    [warning] = wal_warnings(caplog)
    assert "segment 0" in warning.getMessage()
    assert f"offset {survivors * (HEADER_SIZE + 20)}" in warning.getMessage()
    assert segment.stat().st_size == survivors * (HEADER_SIZE + 20)


def test_corruption_inside_an_older_segment_skips_to_the_next_segment(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record = HEADER_SIZE + 20
    with open_log(tmp_path, segment_bytes=4 * record) as log:
        log.append_blocking(payloads(4, prefix="old"))
        log.append_blocking(payloads(4, prefix="new"))
    first = segment_files(tmp_path)[0]
    size = first.stat().st_size
    data = bytearray(first.read_bytes())
    data[record + HEADER_SIZE] ^= 0xFF  # second record of the older segment
    first.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="pixel_server.wal"), open_log(tmp_path) as log:
        expected = [payloads(4, prefix="old")[0], *payloads(4, prefix="new")]
        assert drain(log.reader("loader")) == expected
    [warning] = wal_warnings(caplog)
    assert "segment 0" in warning.getMessage() and f"offset {record}" in warning.getMessage()
    assert first.stat().st_size == size  # kept for inspection


def test_damage_found_while_reading_is_skipped_not_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record = HEADER_SIZE + 20
    with (
        caplog.at_level(logging.WARNING, logger="pixel_server.wal"),
        open_log(tmp_path, segment_bytes=4 * record) as log,
    ):
        log.append_blocking(payloads(4, prefix="old"))
        log.append_blocking(payloads(4, prefix="new"))
        first = segment_files(tmp_path)[0]
        with open(first, "r+b") as f:  # bit rot after the records became durable
            f.seek(2 * record + HEADER_SIZE)
            f.write(b"?")
        assert drain(log.reader("loader")) == payloads(2, prefix="old") + payloads(4, prefix="new")
        assert drain(log.reader("forwarder")) == payloads(2, prefix="old") + payloads(
            4, prefix="new"
        )
    assert len(wal_warnings(caplog)) == 1


# --------------------------------------------------------------- property


class LogModel(RuleBasedStateMachine):
    """Random appends, reads, commits, rewinds, reopens and crashes.

    Checks: every reader reads exactly the acknowledged records, in order, from
    its committed offset on (nothing lost, nothing duplicated), and a batch read
    again after a rewind, reopen or crash has the same id and records.
    """

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="wal-model-"))
        self.generation = 0
        self.directory = self.root / "0"
        self.log = self._open()
        self.acked: list[bytes] = []
        self.committed = dict.fromkeys(READERS, 0)
        self.cursor = dict.fromkeys(READERS, 0)
        self.last_end: dict[str, Position | None] = dict.fromkeys(READERS)
        self.issued: dict[str, dict[int, Batch]] = {name: {} for name in READERS}
        self.counter = 0

    def _open(self) -> WriteAheadLog:
        return open_log(self.directory, segment_bytes=160, max_bytes=1 << 30)

    def _lose_cursors(self) -> None:
        for name in READERS:
            self.cursor[name] = self.committed[name]
            self.last_end[name] = None

    @initialize()
    def start(self) -> None:
        pass

    @rule(sizes=st.lists(st.integers(1, 70), min_size=1, max_size=5))
    def append(self, sizes: list[int]) -> None:
        batch = []
        for size in sizes:
            self.counter += 1
            batch.append(f"{self.counter}:".encode().ljust(size, b"."))
        self.log.append_blocking(batch)
        self.acked.extend(batch)

    @rule(
        name=st.sampled_from(READERS),
        max_records=st.integers(1, 6),
        max_bytes=st.integers(1, 300),
    )
    def read(self, name: str, max_records: int, max_bytes: int) -> None:
        batch = self.log.reader(name).read_batch(max_records, max_bytes)
        start = self.cursor[name]
        if batch is None:
            assert start == len(self.acked), "durable records were not served"
            return
        count = len(batch.records)
        assert batch.records == self.acked[start : start + count], "lost or duplicated records"
        earlier = self.issued[name].get(start)
        if earlier is not None:
            assert (batch.batch_id, batch.records) == (earlier.batch_id, earlier.records)
        else:
            assert count <= max_records
        self.issued[name][start] = batch
        self.cursor[name] = start + count
        self.last_end[name] = batch.end

    @precondition(lambda self: any(e is not None for e in self.last_end.values()))
    @rule(name=st.sampled_from(READERS))
    def commit(self, name: str) -> None:
        end = self.last_end[name]
        if end is None:
            return
        self.log.reader(name).commit(end)
        self.committed[name] = self.cursor[name]
        self.issued[name] = {k: b for k, b in self.issued[name].items() if k >= self.cursor[name]}

    @rule(name=st.sampled_from(READERS))
    def rewind(self, name: str) -> None:
        self.log.reader(name).rewind()
        self.cursor[name] = self.committed[name]
        self.last_end[name] = None

    @rule()
    def reopen(self) -> None:
        self.log.close()
        self.log = self._open()
        self._lose_cursors()

    @rule(tail=st.sampled_from(["clean", "cut", "flipped"]), cut=st.integers(1, 40))
    def crash(self, tail: str, cut: int) -> None:
        """Open a copy of the files as they are now, as after kill -9 or power loss.

        ``cut``/``flipped`` add a torn record of an append that was never
        acknowledged, as a power loss in the middle of a group commit leaves it.
        """
        self.generation += 1
        copy = self.root / str(self.generation)
        shutil.copytree(self.directory, copy)
        (copy / "LOCK").unlink()
        segments = segment_files(copy)
        if tail != "clean" and segments:
            frame = bytearray(encode_records([b"never-acknowledged".ljust(30, b"!")]))
            if tail == "flipped":
                frame[-1] ^= 1
            with open(segments[-1], "ab") as f:
                f.write(frame if tail == "flipped" else frame[: cut % len(frame) or 1])
        self.log.close()
        self.directory = copy
        self.log = self._open()
        self._lose_cursors()

    @invariant()
    def backlog_counts_uncommitted_bytes(self) -> None:
        for name in READERS:
            behind = sum(HEADER_SIZE + len(p) for p in self.acked[self.committed[name] :])
            assert self.log.reader(name).backlog().bytes == behind

    def teardown(self) -> None:
        try:
            for name in READERS:
                reader = self.log.reader(name)
                reader.rewind()
                rest = drain(reader)
                assert rest == self.acked[self.committed[name] :]
        finally:
            self.log.close()
            shutil.rmtree(self.root, ignore_errors=True)


LogModel.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_log_never_loses_or_duplicates_acknowledged_records = LogModel.TestCase
