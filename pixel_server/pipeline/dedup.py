"""Recent-event index that collapses same-source copies (docs/architecture.md §2).

An event's identity is ``(pixel_id, event, event_id)``; a *copy* is one receipt
of it from one ``source`` (browser, server, webhook). Copies from the same
source whose event times lie within the window (48 h, TikTok's) are duplicates.
Copies from different sources are never duplicates here: they are merged
downstream, not dropped.

Semantics
---------
* Time is the event's own ``event_time`` (seconds since the epoch), so a
  delayed retry of an old event still meets its first copy; the clock only
  drives expiry. Event times more than ``max_future_s`` ahead of the clock are
  clamped to it, so a wrong client clock cannot park keys forever.
* The window is measured from the *first* recorded copy, to the resolution of
  ``bucket_s`` (one minute by default): copies at most ``window_s`` apart are
  duplicates, copies at least ``window_s + bucket_s`` apart are new events
  (then the later copy becomes the reference).
* A copy whose event time is already outside the window (relative to the
  clock) is checked against the index but not remembered.
* ``max_keys`` is a hard cap; beyond it the keys with the oldest event times
  are forgotten first.

Memory
------
Each key is stored as a 60-bit hash (``hash()`` of the key tuple, masked so the
int stays in a 32-byte object), in one ``dict`` mapping hash -> time bucket,
plus 8 bytes in its bucket's ``array`` for expiry. All keys of a bucket share a
single int object as the value. About 80 bytes per key at a million keys (see
``bench/bench_dedup.py``). ``hash()`` of str is randomised per process, which is
fine: the index lives in memory only and is rebuilt at start with ``load()``.
A false duplicate needs a 60-bit collision: about n / 2**60 per lookup.

Not thread-safe: use it from one thread (the event loop's ingest step).
"""

from __future__ import annotations

import heapq
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_HASH_MASK = (1 << 60) - 1  # below 2**60 an int needs two 30-bit digits: 32 bytes

DEFAULT_WINDOW_S = 48 * 3600
DEFAULT_MAX_KEYS = 2_000_000

DedupKey = tuple[str, str, str, str, float]
"""(pixel_id, event, event_id, source, event_time) as fed to :meth:`DedupIndex.load`."""


@dataclass(frozen=True, slots=True)
class DedupStats:
    """Counters for metrics; all monotonic except ``keys``."""

    keys: int
    duplicates: int  # seen() calls that answered True
    expired: int  # keys forgotten because they left the window
    evicted: int  # keys forgotten because of max_keys


class _Bucket:
    """Keys whose (first) event time falls into one ``bucket_s`` interval."""

    __slots__ = ("hashes", "index", "start")

    def __init__(self, index: int) -> None:
        self.index = index  # the one int object every key of this bucket points to
        self.hashes = array("q")  # insertion order; may hold stale entries
        self.start = 0  # entries before this were evicted by the cap


class DedupIndex:
    """Answers "have we seen this copy within the window?" in O(1)."""

    def __init__(
        self,
        window_s: float = DEFAULT_WINDOW_S,
        max_keys: int = DEFAULT_MAX_KEYS,
        *,
        bucket_s: float = 60.0,
        max_future_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window_s <= 0 or bucket_s <= 0 or max_keys < 1:
            raise ValueError("window_s, bucket_s and max_keys must be positive")
        self._bucket_s = bucket_s
        self._window_buckets = -int(-window_s // bucket_s)  # ceil
        self._max_keys = max_keys
        self._max_future_s = max_future_s
        self._clock = clock
        self._keys: dict[int, int] = {}
        self._buckets: dict[int, _Bucket] = {}
        self._bucket_heap: list[int] = []  # bucket indices, oldest on top (lazy deletes)
        self._now_bucket: int | None = None
        self._next_tick = float("-inf")  # clock time at which the next bucket starts
        self._horizon = -(1 << 62)  # buckets below this are outside the window
        self._duplicates = 0
        self._expired = 0
        self._evicted = 0

    # ---------------------------------------------------------------- public

    def seen(
        self, pixel_id: str, event: str, event_id: str, source: str, event_time: float
    ) -> bool:
        """True if this copy duplicates one seen within the window; else remember it."""
        now = self._clock()
        if now >= self._next_tick:  # inline check: this runs for every event
            self._advance(now)
        if event_time > now + self._max_future_s:
            event_time = now + self._max_future_s
        bucket = int(event_time // self._bucket_s)
        key = hash((pixel_id, event, event_id, source)) & _HASH_MASK
        stored = self._keys.get(key)
        if stored is not None and abs(bucket - stored) <= self._window_buckets:
            self._duplicates += 1
            return True
        if bucket >= self._horizon:
            self._record(key, bucket)
        return False

    def add(self, pixel_id: str, event: str, event_id: str, source: str, event_time: float) -> None:
        """Remember a key without asking (bulk rebuild at start)."""
        self.seen(pixel_id, event, event_id, source, event_time)

    def forget(self, pixel_id: str, event: str, event_id: str, source: str) -> bool:
        """Undo ``seen()`` for a copy that was then not stored (e.g. the log was full).

        Otherwise the client's retry would be dropped as a duplicate. Call it only
        for a copy whose ``seen()`` answered False. Returns whether it was known.
        """
        key = hash((pixel_id, event, event_id, source)) & _HASH_MASK
        # Its bucket's array keeps a stale entry; expiry skips entries not in the dict.
        return self._keys.pop(key, None) is not None

    def load(self, keys: Iterable[DedupKey]) -> int:
        """Rebuild from recent keys (from the WAL or ClickHouse); return how many were new.

        Feed them oldest first, so the first copy is the one remembered.
        """
        before = self._duplicates
        count = 0
        for pixel_id, event, event_id, source, event_time in keys:
            self.seen(pixel_id, event, event_id, source, event_time)
            count += 1
        return count - (self._duplicates - before)

    def __len__(self) -> int:
        return len(self._keys)

    def stats(self) -> DedupStats:
        return DedupStats(len(self._keys), self._duplicates, self._expired, self._evicted)

    # ------------------------------------------------------------- internals

    def _advance(self, now: float) -> None:
        """Forget buckets that left the window; runs once per new clock bucket."""
        now_bucket = int(now // self._bucket_s)
        if self._now_bucket is not None and now_bucket <= self._now_bucket:
            return  # same bucket, or the clock stepped back: keep what we have
        self._now_bucket = now_bucket
        self._next_tick = (now_bucket + 1) * self._bucket_s
        self._horizon = now_bucket - self._window_buckets
        for index in [i for i in self._buckets if i < self._horizon]:
            self._expired += self._drop_bucket(index)
        self._oldest_bucket()  # expired buckets sit on top of the heap: pop them

    def _record(self, key: int, index: int) -> None:
        bucket = self._buckets.get(index)
        if bucket is None:
            bucket = self._buckets[index] = _Bucket(index)
            heapq.heappush(self._bucket_heap, index)
        self._keys[key] = bucket.index
        bucket.hashes.append(key)
        if len(self._keys) > self._max_keys:
            self._evict_over_cap()

    def _evict_over_cap(self) -> None:
        """Forget keys with the oldest event times until under the cap."""
        keys = self._keys
        while len(keys) > self._max_keys and (bucket := self._oldest_bucket()) is not None:
            while bucket.start < len(bucket.hashes) and len(keys) > self._max_keys:
                key = bucket.hashes[bucket.start]
                bucket.start += 1
                if keys.get(key) == bucket.index:
                    del keys[key]
                    self._evicted += 1
            if bucket.start >= len(bucket.hashes):
                self._drop_bucket(bucket.index)

    def _drop_bucket(self, index: int) -> int:
        """Remove a bucket and the keys that still point to it; return how many."""
        bucket = self._buckets.pop(index)
        keys = self._keys
        removed = 0
        for key in bucket.hashes[bucket.start :]:
            if keys.get(key) == index:  # not re-recorded in a later bucket since
                del keys[key]
                removed += 1
        return removed

    def _oldest_bucket(self) -> _Bucket | None:
        heap = self._bucket_heap
        while heap and heap[0] not in self._buckets:
            heapq.heappop(heap)  # dropped by expiry or eviction
        return self._buckets[heap[0]] if heap else None
