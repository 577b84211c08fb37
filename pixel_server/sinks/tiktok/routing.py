"""Which copies go to TikTok, and why the others do not (a closed list of skip
reasons, counted in ``pixel_forward_skipped_total``)."""

from __future__ import annotations

from typing import Final, Literal, Protocol

from pixel_server.pixel import Pixel
from pixel_server.sinks.tiktok.constants import PIXEL_ID

SkipReason = Literal[
    "unknown_pixel", "pixel_disabled", "not_configured", "consent_denied", "browser_copy",
    "already_final", "undecodable",
    "nothing_to_forward",  # no pixel had TikTok settings: the batch was skipped unread
    "erased",  # the person's events were erased (pixel-server erase) while this was in transit
]  # fmt: skip


class PixelSource(Protocol):
    """Where the forwarder reads pixel settings (the server's registry)."""

    @property
    def loaded(self) -> bool: ...

    def get(self, pixel_id: str) -> Pixel | None: ...

    def all(self) -> list[Pixel]: ...


def pixel_skip_reason(pixel: Pixel | None) -> SkipReason | None:
    if pixel is None or not PIXEL_ID.match(pixel.id):
        return "unknown_pixel"
    if not pixel.enabled:
        return "pixel_disabled"
    if not (pixel.tiktok_pixel_code and pixel.tiktok_access_token):
        return "not_configured"
    return None


#: The snippet's event_id prefix for calls it saw on TikTok's own pixel.
TIKTOK_PIXEL_COPY: Final = "ttq:"


def route_skip_reason(pixel: Pixel | None, source: str, event_id: str) -> SkipReason | None:
    """Why a copy from ``source`` is not sent (consent is checked on the full record)."""
    reason = pixel_skip_reason(pixel)
    if (
        reason is None
        and source == "browser"
        and (
            not pixel.forward_browser or event_id.startswith(TIKTOK_PIXEL_COPY)  # type: ignore[union-attr]
        )
    ):
        return "browser_copy"  # TikTok's own pixel has it already
    return reason
