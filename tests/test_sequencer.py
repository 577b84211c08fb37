"""The storage process's side of the worker logs: a follower reads a log another
writer appends to, and the sequencer moves every worker log into the storage
log once, dropping same-source copies across logs and replays after a crash."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from starlette.testclient import TestClient

from pixel_server.app import create_app
from pixel_server.config import Settings
from pixel_server.pipeline import record as records
from pixel_server.pipeline.dedup import DedupIndex
from pixel_server.pipeline.follower import LogFollower
from pixel_server.pipeline.record import Record
from pixel_server.pipeline.wal import WriteAheadLog, encode_records, iter_records, segments_in
from pixel_server.processes.sequencer import READER, Sequencer, worker_log_dir
from tests.ingest_helpers import count_rows, wait_for_rows


def payload(event_id: str, source: str = "browser", assigned: bool = False) -> bytes:
    now = time.time()
    return records.encode(
        Record("px_1", "Purchase", "Purchase", event_id, source, now, now, assigned)
    )


def worker_log(wal_dir: Path, slot: int, **options: int) -> WriteAheadLog:
    return WriteAheadLog(worker_log_dir(wal_dir, slot), (READER,), **options)


def stored_ids(wal: WriteAheadLog) -> list[str]:
    return [
        records.decode(p).event_id
        for n in segments_in(wal.directory)
        for p in iter_records(wal.directory / f"{n:020d}.log")
    ]


def test_follower_reads_what_the_writer_appended_and_waits_at_a_half_written_tail(
    tmp_path: Path,
) -> None:
    with worker_log(tmp_path, 0) as w:
        w.append_blocking([b"one", b"two"])
        follower = LogFollower(w.directory, READER, fsync=False)
        got = follower.read()
        assert got is not None and got.records == [b"one", b"two"]
        assert follower.read() is None
        # a record still being written: its header is there, its payload is not
        segment = w.directory / f"{w.durable_end.segment:020d}.log"
        frame = encode_records([b"three"])
        with segment.open("ab") as f:
            f.write(frame[:6])
        assert follower.read() is None
        with segment.open("ab") as f:
            f.write(frame[6:])
        got = follower.read()
        assert got is not None and got.records == [b"three"]


def test_follower_skips_a_torn_tail_once_the_writer_has_moved_on(tmp_path: Path) -> None:
    directory = worker_log_dir(tmp_path, 0)
    with worker_log(tmp_path, 0) as w:
        w.append_blocking([b"kept"])
    segment = directory / f"{0:020d}.log"
    with segment.open("ab") as f:
        f.write(encode_records([b"torn"])[:7])  # the writer died mid-write
    follower = LogFollower(directory, READER, fsync=False)
    first = follower.read()
    assert first is not None and first.records == [b"kept"]
    with worker_log(tmp_path, 0) as w:  # the restarted writer truncates and starts anew
        w.append_blocking([b"after"])
    got = follower.read()
    assert got is not None and got.records == [b"after"]


def test_the_writer_deletes_segments_the_follower_committed(tmp_path: Path) -> None:
    with worker_log(tmp_path, 0, segment_bytes=64, max_bytes=1024) as w:
        for i in range(20):
            w.append_blocking([f"record {i:02d}".encode() * 2])
        assert len(w.segment_numbers()) > 5
        follower = LogFollower(w.directory, READER, fsync=False)
        while (got := follower.read()) is not None:
            follower.commit(got.end)
        w.adopt_commits()
        assert len(w.segment_numbers()) <= 2
    # and a reopened writer keeps the follower's offset: nothing left to move
    with worker_log(tmp_path, 0, segment_bytes=64, max_bytes=1024) as w:
        assert w.reader(READER).backlog().bytes == 0


def run_sequencer(tmp_path: Path, dedup: DedupIndex, slots: int = 2) -> list[str]:
    async def main() -> list[str]:
        storage = WriteAheadLog(tmp_path, ("loader", "forwarder"), fsync=False)
        try:
            seq = Sequencer(storage, range(slots), dedup, fsync=False)
            seq.rebuild()
            seq.start()
            await seq.stop()  # moves everything there is, then stops
            return stored_ids(storage)
        finally:
            storage.close()

    return asyncio.run(main())


def test_same_event_in_two_worker_logs_is_stored_once(tmp_path: Path) -> None:
    with worker_log(tmp_path, 0) as w0, worker_log(tmp_path, 1) as w1:
        w0.append_blocking([payload("a"), payload("b")])
        w1.append_blocking([payload("a"), payload("c"), payload("b", source="server")])
    stored = run_sequencer(tmp_path, DedupIndex())
    assert sorted(stored) == ["a", "b", "b", "c"]  # b from the server is another copy


def test_a_replay_after_a_crash_before_the_offset_commit_is_dropped(tmp_path: Path) -> None:
    with worker_log(tmp_path, 0) as w0:
        w0.append_blocking([payload("a"), payload("x", assigned=True)])
    assert sorted(run_sequencer(tmp_path, DedupIndex(), slots=1)) == ["a", "x"]
    # crash: the storage log has the records, the worker-log offset was not committed
    offset = worker_log_dir(tmp_path, 0) / "readers" / f"{READER}.offset"
    offset.unlink()
    # a new storage process starts with an empty index (nothing loaded into ClickHouse yet)
    assert sorted(run_sequencer(tmp_path, DedupIndex(), slots=1)) == ["a", "x"]


def test_offsets_are_committed_once_caught_up_and_segments_held_until_then(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        storage = WriteAheadLog(tmp_path, ("loader", "forwarder"), fsync=False, segment_bytes=64)
        seq = Sequencer(storage, [0], DedupIndex(), fsync=False)
        try:
            for i in range(3):  # one storage-log segment per pass (64-byte segments)
                with worker_log(tmp_path, 0) as w0:
                    w0.append_blocking([payload(f"e{i}")])
                assert await seq.pass_once() == 1
            follower = seq.followers[0]
            assert follower.committed.offset == 0  # not per pass: at most every 0.2 s
            for name in ("loader", "forwarder"):
                reader = storage.reader(name)
                while (batch := reader.read_batch(1, 1 << 20)) is not None:
                    reader.commit(batch.end)
            kept = storage.segment_numbers()
            assert len(kept) > 1  # a crash now replays them: they must still be there
            assert stored_ids(storage) == ["e0", "e1", "e2"]
            seq.start()
            await seq.stop()  # caught up: commits, releases the segments
            assert follower.committed > (0, 0)
            assert storage.segment_numbers() == kept[-1:]
        finally:
            storage.close()

    asyncio.run(main())


def test_copies_the_storage_process_already_has_are_dropped(tmp_path: Path) -> None:
    dedup = DedupIndex()
    dedup.load([("px_1", "Purchase", "a", "browser", time.time())])  # seeded from ClickHouse
    with worker_log(tmp_path, 0) as w0:
        w0.append_blocking([payload("a"), payload("b")])
    assert run_sequencer(tmp_path, dedup, slots=1) == ["b"]


def test_a_single_process_moves_what_worker_logs_left_behind(settings: Settings) -> None:
    # an earlier run with workers left acknowledged records in w3's log
    with worker_log(settings.data_dir.resolve() / "wal", 3) as w3:
        w3.append_blocking([payload("left-1"), payload("left-2")])
    app = create_app(settings)
    with TestClient(app):
        runtime = app.state.runtime
        assert wait_for_rows(runtime, 2, "px_1") == 2
        assert count_rows(runtime, "px_1", "event_id = 'left-1'") == 1


def test_a_reopened_worker_log_never_writes_where_the_follower_has_been(tmp_path: Path) -> None:
    directory = worker_log_dir(tmp_path, 0)
    with WriteAheadLog(directory, (READER,), new_segment_on_open=True) as w:
        w.append_blocking([b"first" * 10])
    follower = LogFollower(directory, READER, fsync=False)
    got = follower.read()
    assert got is not None
    follower.commit(got.end)
    for segment in segments_in(directory):  # whatever removed the files, ...
        (directory / f"{segment:020d}.log").unlink()
    with WriteAheadLog(directory, (READER,), new_segment_on_open=True) as w:
        w.append_blocking([b"after"])  # ... new records go where the follower has not read
    again = follower.read()
    assert again is not None and again.records == [b"after"]
