"""IANA time zones by name, checked against the zone list before any file is
opened: ``zoneinfo.ZoneInfo`` turns a hostile name into a file-system path
(a few hundred characters raise ``OSError: File name too long``)."""

from __future__ import annotations

import functools
import zoneinfo


@functools.cache
def _names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The zone called ``name``, or None when there is no such IANA zone."""
    if name not in _names():
        return None
    return zoneinfo.ZoneInfo(name)
