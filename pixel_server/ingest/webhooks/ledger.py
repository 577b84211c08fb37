"""What webhook handling has already done: deliveries, and once-only events.

Platforms deliver at least once (Shopify, BigCommerce and WooCommerce retry
until they get a 2xx; a delivery can also arrive twice). The ledger remembers
the id of every delivery handled, so a repeat is acknowledged and ignored, and
the ids of events that must be stored only the first time (see
``common.Mapped.once``).

Memory: key → expiry, for keys hashed to 16 bytes (ids are not secret, but a
fixed size keeps lines short). Disk: ``ledger.log``, one line ``<expiry> <key
hex>`` per key, appended with one ``write`` and **no fsync**: losing the last
lines to a power cut costs at most a repeat that the event-level dedup and the
query-time merge absorb anyway; surviving an ordinary restart is what matters
here. Expired lines are dropped when the file is opened (and rewritten
atomically when mostly expired).

Keys are "busy" while a delivery is being handled, so a concurrent repeat is
told to retry (409) instead of being acknowledged before the first copy is safe.

Not thread-safe: the event loop's thread only.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal

from pixel_server.atomic import replace_file

log = logging.getLogger("pixel_server.webhooks")

State = Literal["new", "busy", "done"]
FILE_NAME: Final = "ledger.log"
_COMPACT_FACTOR: Final = 4  # rewrite when the file has this many lines per live key
_COMPACT_MIN_LINES: Final = 100_000


def _digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


class WebhookLedger:
    def __init__(self, directory: Path, clock: Callable[[], float] = time.time) -> None:
        self._path = directory / FILE_NAME
        self._clock = clock
        self._done: dict[bytes, float] = {}
        self._busy: set[bytes] = set()
        self._lines = 0
        self._fd: int | None = None

    def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        now = self._clock()
        lines = 0
        with contextlib.suppress(FileNotFoundError), self._path.open("rb") as f:
            for line in f:
                lines += 1
                expiry, _, key = line.strip().partition(b" ")
                try:
                    until, digest = float(expiry), bytes.fromhex(key.decode())
                except ValueError:
                    continue  # a torn last line
                if until > now and len(digest) == 16:
                    self._done[digest] = max(until, self._done.get(digest, 0.0))
        self._lines = lines
        if lines > len(self._done) * 2:
            self._rewrite()
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        log.info("webhook ledger loaded", extra={"keys": len(self._done)})

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __len__(self) -> int:
        return len(self._done)

    def state(self, key: str) -> State:
        digest = _digest(key)
        if digest in self._busy:
            return "busy"
        until = self._done.get(digest)
        if until is not None and until > self._clock():
            return "done"
        return "new"

    def claim(self, key: str) -> bool:
        """Mark ``key`` busy if it is new; False otherwise."""
        if self.state(key) != "new":
            return False
        self._busy.add(_digest(key))
        return True

    def release(self, key: str) -> None:
        """Handling failed: the next delivery of ``key`` is handled afresh."""
        self._busy.discard(_digest(key))

    def done(self, key: str, ttl: float) -> None:
        digest = _digest(key)
        self._busy.discard(digest)
        until = self._clock() + ttl
        self._done[digest] = until
        if self._fd is not None:
            os.write(self._fd, b"%d %s\n" % (int(until) + 1, digest.hex().encode()))
            self._lines += 1
        if self._lines > max(_COMPACT_MIN_LINES, _COMPACT_FACTOR * len(self._done)):
            self._expire()
            self._rewrite()

    def _expire(self) -> None:
        now = self._clock()
        self._done = {k: v for k, v in self._done.items() if v > now}

    def _rewrite(self) -> None:
        """Replace the file by the live keys (write, fsync, rename)."""
        lines = (b"%d %s\n" % (int(v) + 1, k.hex().encode()) for k, v in self._done.items())
        replace_file(self._path, b"".join(lines))
        self._lines = len(self._done)
        if self._fd is not None:  # the old file is gone: append to the new one
            os.close(self._fd)
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
