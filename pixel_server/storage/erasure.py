"""Erasing a person's events from ClickHouse, and the record that it was done.

Who "the person" is: every copy of the pixel that carries the identifier
(a hashed email, phone or external id, or an anonymous id), and every copy of
an anonymous id seen with it, since that is the same browser. Whole events go:
every copy of each event identity ``(event, event_id)`` in which any copy
matched, so no browser copy is left behind by an erased server copy.

Deletes are lightweight ``DELETE``s, which ClickHouse applies before it
answers (the rows vanish from every query at once, and from disk at the
next merge of their parts). Their merged rows are cancelled first, which
takes them out of every rollup at once (totals drop by exactly the erased
events), then deleted with their cancel rows, and the visitor rollup's rows
of the erased browsers go too.

The audit row (``erasure_log``, migration 0011) keeps who, when, which kind
of identifier and how much was removed, and only a prefix of the
identifier's hash: enough to answer "was this person's request carried
out?", too little to find them in any other data set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from clickhouse_connect.driver.client import Client

from pixel_server.pipeline.erasures import Kind
from pixel_server.pipeline.record import RecordKey
from pixel_server.storage.merged import VISITOR, MergedEvents

AUDIT_PREFIX: Final = 12  # hex digits of the identifier's hash kept in the audit row
_MATCH: Final[dict[str, str]] = {
    "email": "has(email_sha256, {h:String})",
    "phone": "has(phone_sha256, {h:String})",
    "external_id": "has(external_id_sha256, {h:String})",
    "anonymous_id": "lower(hex(SHA256(anonymous_id))) = {h:String}",
}
_SEP: Final = "\x1f"


@dataclass
class Erased:
    """What one erasure found and removed."""

    events: int = 0  # logical events (identities)
    copies: int = 0  # rows of ``events``
    purchases: int = 0
    anonymous_ids: list[str] = field(default_factory=list)  # linked browsers (hashed)
    first_day: str = ""

    def add(self, other: Erased) -> None:
        """Fold in a second pass (rows inserted while the first one ran)."""
        self.events += other.events
        self.copies += other.copies
        self.purchases += other.purchases
        self.anonymous_ids = sorted({*self.anonymous_ids, *other.anonymous_ids})
        self.first_day = (
            min(d for d in (self.first_day, other.first_day) if d)
            if (self.first_day or other.first_day)
            else ""
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "copies": self.copies,
            "purchases": self.purchases,
            "linked_browsers": len(self.anonymous_ids),
        }


def erase(client: Client, pixel_id: str, kind: Kind, sha256: str) -> Erased:
    """Delete the person's events and the cached report rows they touched."""
    p = {"p": pixel_id, "h": sha256}
    match = _MATCH[kind]
    anon = client.query(
        "SELECT DISTINCT lower(hex(SHA256(anonymous_id))) FROM events"
        f" WHERE pixel_id = {{p:String}} AND {match} AND anonymous_id != ''",
        parameters=p,
    ).result_rows
    out = Erased(anonymous_ids=sorted(r[0] for r in anon if r[0] != sha256))
    person = (
        f"({match} OR (anonymous_id != '' AND"
        " has({a:Array(String)}, lower(hex(SHA256(anonymous_id))))))"
    )
    rows = client.query(
        "SELECT concat(event, {sep:String}, event_id), min(event_time), max(event_time),"
        " any(event_id) FROM events"
        f" WHERE pixel_id = {{p:String}} AND {person} GROUP BY event, event_id",
        parameters={**p, "a": out.anonymous_ids, "sep": _SEP},
    ).result_rows
    if not rows:
        return out
    visitors = [
        int(r[0])
        for r in client.query(
            f"SELECT DISTINCT {VISITOR} FROM events WHERE pixel_id = {{p:String}}"
            f" AND anonymous_id != '' AND {person}",
            parameters={**p, "a": out.anonymous_ids},
        ).result_rows
    ]
    keys = [r[0] for r in rows]
    first = min(r[1] for r in rows)
    out.events = len(keys)
    out.purchases = sum(1 for k in keys if k.split(_SEP, 1)[0] == "Purchase")
    out.first_day = first.date().isoformat()
    where = (
        "pixel_id = {p:String} AND has({k:Array(String)}, concat(event, {sep:String}, event_id))"
    )
    params = {"p": pixel_id, "k": keys, "sep": _SEP}
    out.copies = int(client.command(f"SELECT count() FROM events WHERE {where}", parameters=params))
    client.command(f"DELETE FROM events WHERE {where}", parameters=params)
    # With their copies gone, merging the events again cancels their rows.
    MergedEvents(lambda: client).merge(
        RecordKey(pixel_id, key.split(_SEP, 1)[0], "", event_id, "", t.timestamp(), 0.0)
        for key, first_at, last_at, event_id in rows
        for t in (first_at, last_at)
    )
    client.command(f"DELETE FROM merged_events WHERE {where}", parameters=params)
    client.command(
        "DELETE FROM attributed_purchases WHERE pixel_id = {p:String}"
        " AND event_id IN {ids:Array(String)}",
        parameters={"p": pixel_id, "ids": [r[3] for r in rows]},
    )
    if visitors:  # every event of these browsers is gone: so are their rollup rows
        for table in ("rollup_visitors", "rollup_touches"):
            client.command(
                f"DELETE FROM {table} WHERE pixel_id = {{p:String}}"
                " AND visitor IN {v:Array(UInt128)}",
                parameters={"p": pixel_id, "v": visitors},
            )
    return out


def record(
    client: Client, pixel_id: str, actor: str, kind: Kind, sha256: str, erased: Erased,
    elsewhere: dict[str, int],
) -> None:  # fmt: skip
    """One ``erasure_log`` row: the request and what it removed, no identifier."""
    removed = orjson.dumps({**erased.as_json(), **elsewhere}, option=orjson.OPT_SORT_KEYS)
    row = [pixel_id, int(time.time() * 1000), actor, kind, sha256[:AUDIT_PREFIX], removed.decode()]
    client.insert(
        "erasure_log",
        [row],
        column_names=["pixel_id", "at", "actor", "kind", "subject_prefix", "removed"],
    )


def entries(client: Client, pixel_id: str, limit: int = 50) -> list[dict[str, Any]]:
    result = client.query(
        "SELECT toString(at), actor, kind, subject_prefix, removed FROM erasure_log"
        " WHERE pixel_id = {p:String} ORDER BY at DESC LIMIT {n:UInt32}",
        parameters={"p": pixel_id, "n": limit},
    )
    return [
        {"at": r[0], "actor": r[1], "kind": r[2], "subject_prefix": r[3], "removed": r[4]}
        for r in result.result_rows
    ]
