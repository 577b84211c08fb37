"""Erased people: copies of their events that must not be stored or sent.

``pixel-server erase`` deletes a person's events from ClickHouse, but copies
may still be on their way: in a worker log or the storage log (not loaded
yet), in the TikTok forwarder's spill store (waiting for TikTok). Rewriting
those files under their readers would be fragile, so an erasure also leaves a
**tombstone** per identifier: the pixel, the kind of identifier, its SHA-256
(the form the events hold; never the identifier in clear) and the erasure's
time. The loader drops every copy received before that time that carries a
tombstoned identifier, and the forwarder does not send it, so a copy still in
transit meets the same fate as the stored ones. A copy received after the
erasure is new data and is kept.

Tombstones live in ``<data dir>/erasures.log`` (one JSON line each, 0600) so
that an erasure made while no server runs holds when the server starts, and
they are kept for :data:`KEEP_DAYS`, longer than any copy stays in transit.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import msgspec

from pixel_server.atomic import replace_file
from pixel_server.events.normalise import sha256_hex
from pixel_server.pipeline.record import Record

FILE_NAME: Final = "erasures.log"
KEEP_DAYS: Final = 30
Kind = Literal["email", "phone", "external_id", "anonymous_id"]
KINDS: Final[tuple[Kind, ...]] = ("email", "phone", "external_id", "anonymous_id")


class Tombstone(msgspec.Struct, frozen=True):
    pixel_id: str
    kind: Kind
    sha256: str  # of the normalised identifier (the anonymous id as sent)
    before: float  # Unix seconds: copies received before this are the erased person's


def identifiers(record: Record) -> Iterable[tuple[Kind, str]]:
    """The (kind, SHA-256) identifiers a stored copy carries."""
    for value in record.email_sha256:
        yield "email", value
    for value in record.phone_sha256:
        yield "phone", value
    for value in record.external_id_sha256:
        yield "external_id", value
    if record.anonymous_id:
        yield "anonymous_id", sha256_hex(record.anonymous_id)


@dataclass
class Erasures:
    """The tombstones, in memory and in their file (thread-safe)."""

    path: Path | None  # None: in memory only (tests, tools)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._by_pixel: dict[str, dict[tuple[str, str], float]] = {}
        if self.path is not None and self.path.exists():
            cutoff = time.time() - KEEP_DAYS * 86400
            lines = self.path.read_bytes().splitlines()
            kept = [t for t in map(_decode_line, lines) if t is not None and t.before > cutoff]
            for t in kept:
                self._remember(t)
            if len(kept) < len(lines):
                replace_file(self.path, b"".join(_ENCODE(t) + b"\n" for t in kept))

    def add(self, tombstones: Iterable[Tombstone]) -> None:
        new = list(tombstones)
        with self._lock:
            if self.path is not None and new:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "ab", opener=_private) as f:
                    f.write(b"".join(_ENCODE(t) + b"\n" for t in new))
                    f.flush()
                    os.fsync(f.fileno())
            for t in new:
                self._remember(t)

    @property
    def pixels(self) -> int:
        """How many pixels have tombstones (0: nothing to check)."""
        return len(self._by_pixel)

    def for_pixel(self, pixel_id: str) -> bool:
        return pixel_id in self._by_pixel

    def matches(self, record: Record) -> bool:
        """True if the copy belongs to a person erased after it was received."""
        dead = self._by_pixel.get(record.pixel_id)
        if not dead:
            return False
        return any(record.received_at < dead.get(key, 0.0) for key in identifiers(record))

    def _remember(self, t: Tombstone) -> None:
        slot = self._by_pixel.setdefault(t.pixel_id, {})
        key = (t.kind, t.sha256)
        slot[key] = max(slot.get(key, 0.0), t.before)


_ENCODE: Final = msgspec.json.Encoder().encode
_DECODER: Final = msgspec.json.Decoder(Tombstone)


def _decode_line(line: bytes) -> Tombstone | None:
    try:
        return _DECODER.decode(line)
    except msgspec.DecodeError:
        return None  # a torn last line after a crash


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)
