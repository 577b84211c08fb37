"""How well the pixel's events match the catalog (what Dynamic Showcase Ads need).

TikTok matches a ViewContent, AddToCart or Purchase event to a catalog item by
its ``content_id`` = the item's ``sku_id``; an event whose id is not in the
catalog is silently unused for retargeting. :func:`match_rate` measures that
over a window (the last 7 days by default, to the 15 minutes), counting only
valid items (an
invalid one never reaches TikTok):

* ``rate``: the share of distinct content ids seen that are catalog items;
* ``event_rate``: the same weighted by how many events name each id (copies of
  one event from several sources count once);
* ``top_unmatched``: the unmatched ids most events name, so a merchant can see
  which SKUs the snippet sends that the catalog does not have.

:func:`lookup_titles` gives reports the catalog's title, option names and
thumbnail for content ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from pixel_server.catalog.store import CatalogStore, match_rows

WINDOW: Final = timedelta(days=7)
TOP: Final = 10


@dataclass(frozen=True)
class MatchRate:
    start: str
    end: str
    content_ids: int
    matched_ids: int
    rate: float | None  # None: no content ids in the window
    events: int
    matched_events: int
    event_rate: float | None
    top_unmatched: list[dict[str, Any]]

    def public(self) -> dict[str, Any]:
        return asdict(self)


def match_rate(
    client: Client, pixel_id: str, now: datetime | None = None, window: timedelta = WINDOW
) -> MatchRate:
    # The window, on the 15-minute buckets the counts are kept in: up to the
    # end of the current one.
    end = datetime.fromtimestamp(-(-(now or datetime.now(UTC)).timestamp() // 900) * 900, UTC)
    start = end - window
    rows = match_rows(client, pixel_id, start, end)
    ids = len(rows)
    matched = sum(m for _, _, m in rows)
    events = sum(n for _, n, _ in rows)
    matched_events = sum(n for _, n, m in rows if m)
    return MatchRate(
        start=start.isoformat(timespec="seconds"),
        end=end.isoformat(timespec="seconds"),
        content_ids=ids,
        matched_ids=matched,
        rate=round(matched / ids, 4) if ids else None,
        events=events,
        matched_events=matched_events,
        event_rate=round(matched_events / events, 4) if events else None,
        top_unmatched=[{"content_id": c, "events": n} for c, n, m in rows if not m][:TOP],
    )


def lookup_titles(
    client: Client, pixel_id: str, content_ids: Sequence[str]
) -> dict[str, dict[str, str]]:
    """content_id → {title, options ("Red / M"), image_link, link} for the ids
    that are current catalog items (others are absent), for reports."""
    found = CatalogStore(lambda: client).items(pixel_id, list(dict.fromkeys(content_ids)))
    return {
        sku: {"title": i.title, "options": i.options, "image_link": i.image_link, "link": i.link}
        for sku, i in found.items()
    }
