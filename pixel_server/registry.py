"""The server's in-memory view of the pixel registry.

Request handlers look pixels up on every event, so they read an immutable
snapshot swapped atomically on refresh (after a management change, and
periodically to pick up changes made by other workers of a cluster).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pixel_server import credentials
from pixel_server.pixel import Pixel
from pixel_server.storage.pixels import PixelStore, ReportToken


@dataclass(frozen=True)
class Snapshot:
    by_id: dict[str, Pixel] = field(default_factory=dict)
    by_key_hash: dict[str, str] = field(default_factory=dict)
    by_tiktok_code: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, ReportToken] = field(default_factory=dict)


class PixelRegistry:
    def __init__(self) -> None:
        self._snap = Snapshot()
        self.loaded = False
        self.version = 0  # bumped on every refresh (the storage process serves snapshots)
        # Called after every refresh, on the refreshing thread.
        self.listeners: list[Callable[[], None]] = []

    def refresh(self, store: PixelStore) -> None:
        self.replace(store.list(), store.tokens())

    def replace(self, pixels: Sequence[Pixel], tokens: Sequence[ReportToken] = ()) -> None:
        """Swap in a new snapshot (from the store, or from the storage process)."""
        self._snap = Snapshot(
            by_id={p.id: p for p in pixels},
            by_key_hash={p.api_key_hash: p.id for p in pixels if p.api_key_hash},
            by_tiktok_code={p.tiktok_pixel_code: p.id for p in pixels if p.tiktok_pixel_code},
            tokens={t.token_hash: t for t in tokens if not t.revoked},
        )
        self.loaded = True
        self.version += 1
        for listener in self.listeners:
            listener()

    def get(self, pixel_id: str) -> Pixel | None:
        return self._snap.by_id.get(pixel_id)

    def all(self) -> list[Pixel]:
        return list(self._snap.by_id.values())

    def resolve_source_id(self, source_id: str) -> Pixel | None:
        """An Events API ``event_source_id``: our pixel id or the pixel's TikTok code."""
        pixel = self._snap.by_id.get(source_id)
        if pixel is None and source_id in self._snap.by_tiktok_code:
            pixel = self._snap.by_id.get(self._snap.by_tiktok_code[source_id])
        return pixel

    def by_api_key(self, presented: str) -> Pixel | None:
        """The pixel a key belongs to; callers still compare in constant time."""
        pixel_id = self._snap.by_key_hash.get(credentials.hash_secret(presented))
        return self._snap.by_id.get(pixel_id) if pixel_id else None

    def check_api_key(self, pixel: Pixel, presented: str) -> bool:
        # Constant-time against the stored hash; never a dict lookup on the key.
        return bool(pixel.api_key_hash) and credentials.matches(presented, pixel.api_key_hash)

    def token(self, presented: str) -> ReportToken | None:
        # Looked up by hash: timing can at most reveal bits of a SHA-256 of a
        # random 256-bit token, which says nothing about the token.
        return self.token_by_hash(credentials.hash_secret(presented))

    def token_by_hash(self, token_hash: str) -> ReportToken | None:
        """A valid (not revoked, not expired) token; console sessions hold the hash."""
        token = self._snap.tokens.get(token_hash)
        return token if token is not None and token.valid(time.time()) else None
