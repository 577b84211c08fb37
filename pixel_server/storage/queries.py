"""Report-side reading of events: one merged row per event (docs/architecture.md §2).

The ``events`` table keeps every copy (browser, server, webhook). Reports read
:func:`merged_events_sql`, which groups copies by identity
``(pixel_id, event, event_id)`` and applies the merge rules:

* order data (value, currency, order id, contents, content type) comes from a
  server or webhook copy when there is one (the store's back end knows the
  order), otherwise from the browser copy;
* identity data (anonymous id, ttclid, _ttp, IP, user agent, page, channel,
  UTM) comes from the browser copy when there is one;
* the event time is the earliest copy's;
* copies of one identity more than 48 hours after its first copy are another
  event (TikTok's dedup window; the ingest-time index uses the same rule).

Grouping at query time keeps reports exact whether or not ClickHouse's
background merges have collapsed anything yet.
"""

from __future__ import annotations

from collections.abc import Collection

WINDOW_SECONDS = 48 * 3600
# Copies up to this long before the report's start still decide which
# occurrence an in-range copy belongs to.
_LOOKBACK = "INTERVAL 7 DAY"

# Inside the grouping, source columns are read as c_<name> so that output
# aliases (value, currency, ...) never shadow the columns they are made from.
_ORDER_KEY = "(c_source != 'browser', {present}, c_received_at)"
_IDENTITY_KEY = "({present}, c_source = 'browser', c_received_at)"

# column -> "is present" expression (on the c_ columns)
_ORDER_FIELDS: dict[str, str] = {
    "value": "c_value IS NOT NULL",
    "currency": "c_currency != ''",
    "order_id": "c_order_id != ''",
    "content_type": "c_content_type != ''",
    "search_query": "c_search_query != ''",
}
_CONTENT_FIELDS = ("content_id", "item_group_id", "name", "category", "brand", "quantity",
                   "price", "refunded", "refunded_share")  # fmt: skip
_IDENTITY_FIELDS = ("anonymous_id", "ttclid", "ttp", "ip", "user_agent", "page_url",
                    "page_referrer", "referrer_host", "utm_source", "utm_medium",
                    "utm_campaign", "utm_content", "utm_term", "locale")  # fmt: skip
_PII_FIELDS = ("email_sha256", "phone_sha256", "external_id_sha256")
_PLAIN = ("pixel_id", "event", "event_id", "event_time", "received_at", "received_event",
          "source", "event_id_assigned", "consent", "channel")  # fmt: skip


def _inner_columns() -> list[str]:
    names = [*_PLAIN, *_ORDER_FIELDS, *_IDENTITY_FIELDS, *_PII_FIELDS]
    cols = [f"{n} AS c_{n}" for n in names]
    cols += [f"contents.{n} AS c_contents_{n}" for n in _CONTENT_FIELDS]
    return cols


def _merged_columns() -> list[str]:
    cols = [
        "c_pixel_id AS pixel_id",
        "c_event AS event",
        "c_event_id AS event_id",
        "min(c_event_time) AS event_time",
        "any(c_received_event) AS received_event",
        "arraySort(groupUniqArray(toString(c_source))) AS sources",
        "count() AS copies",
        "max(c_event_id_assigned) AS event_id_assigned",
        "if(countIf(c_consent = 'denied') > 0, 'denied', toString(max(c_consent))) AS consent",
        # The browser copy saw the landing; a server copy's channel is only a default.
        "argMax(c_channel, (c_channel != 'direct', c_source = 'browser', c_received_at))"
        " AS channel",
    ]
    for name, present in _ORDER_FIELDS.items():
        cols.append(f"argMax(c_{name}, {_ORDER_KEY.format(present=present)}) AS {name}")
    # The content arrays come from one copy: one argMax of them all (an
    # argMax per array copies every array once more, and costs a third of the merge).
    key = _ORDER_KEY.format(present="length(c_contents_content_id) > 0")
    lines = ", ".join(f"c_contents_{name}" for name in _CONTENT_FIELDS)
    cols.append(f"argMax(({lines}), {key}) AS c_lines")
    for i, name in enumerate(_CONTENT_FIELDS, 1):
        cols.append(f"c_lines.{i} AS `contents.{name}`")
    for name in _IDENTITY_FIELDS:
        key = _IDENTITY_KEY.format(present=f"c_{name} != ''")
        cols.append(f"argMax(c_{name}, {key}) AS {name}")
    for name in _PII_FIELDS:
        cols.append(f"argMax(c_{name}, (length(c_{name}) > 0, c_source != 'browser')) AS {name}")
    return cols


def _output_name(column: str) -> str:
    return column.rsplit(" AS ", 1)[1].strip("`")


def merged_events_sql(
    extra_where: str = "", columns: Collection[str] | None = None, *, twins_after: bool = False
) -> str:
    """A subquery yielding one merged row per event of ``{pixel:String}`` whose
    (merged) event time lies in ``[{start:DateTime64(3)}, {end:DateTime64(3)})``.

    ``extra_where`` narrows the copies read (e.g. ``event IN ('Purchase')``).
    ``columns`` keeps only those merged columns (and the identity): each column
    is an aggregate over every copy, so the fewer, the faster the merge.
    ``twins_after`` also reads copies up to 48 h after ``{end}``, the later
    twins of the range's last events (a range cut out of a longer history).
    """
    narrow = f" AND ({extra_where})" if extra_where else ""
    after = f" + INTERVAL {WINDOW_SECONDS} SECOND" if twins_after else ""
    before_end = " AND min(c_event_time) < {end:DateTime64(3)}" if twins_after else ""
    merged = _merged_columns()
    if columns is not None:
        keep = {*columns, "pixel_id", "event", "event_id"}
        unknown = keep - {_output_name(c) for c in merged}
        assert not unknown, unknown
        if any(name.startswith("contents.") for name in keep):
            keep.add("c_lines")
        merged = [c for c in merged if _output_name(c) in keep]
    grouped = f"""
SELECT {", ".join(merged)}
FROM
(
    SELECT {", ".join(_inner_columns())},
        intDiv(toUnixTimestamp(event_time)
               - toUnixTimestamp(min(event_time) OVER (PARTITION BY event, event_id)),
               {WINDOW_SECONDS}) AS c_occurrence
    FROM events
    WHERE pixel_id = {{pixel:String}}
      AND event_time >= {{start:DateTime64(3)}} - {_LOOKBACK}
      AND event_time < {{end:DateTime64(3)}}{after}{narrow}
)
GROUP BY c_pixel_id, c_event, c_event_id, c_occurrence
HAVING min(c_event_time) >= {{start:DateTime64(3)}}{before_end}
"""
    if any(_output_name(c) == "c_lines" for c in merged):
        return f"SELECT * EXCEPT (c_lines) FROM ({grouped})"
    return grouped
