"""The TikTok forwarder: the write-ahead log's second reader (docs/architecture.md §1, §4).

It reads the log from its own committed offset (reader ``forwarder``), keeps
the copies TikTok should get, and sends them per pixel to
``POST {base}/open_api/v1.3/event/track/`` in batches of up to 1,000 events,
recording every attempt in the delivery ledger (``deliveries``).

Which copies go
---------------
Server and webhook copies always; browser copies only for pixels with
``forward_browser`` (server-only mode: TikTok's own pixel is not on the page),
and never those whose event_id starts with ``ttq:``: the snippet gives such
ids to calls the page made on TikTok's own pixel, which sent TikTok its own
copy under another id (docs/tiktok-pixel.md).
Never sent: consent-denied events, events of unknown or disabled pixels, and of
pixels without a TikTok pixel code or access token ("not configured", counted
in ``pixel_forward_skipped_total{reason}``, not errors).

Per-pixel lanes (one pixel never delays another)
------------------------------------------------
Everything runs on one asyncio loop in the forwarder's own thread (the HTTP
server's loop is left alone). The reader task hands each kept event to its
pixel's *lane*: a memory queue, a spill store on disk (``sinks.spill``), its
own HTTP client (own connection pool), ``concurrency`` worker tasks and its own
retry timer. A lane sends as soon as 1,000 events are queued or the oldest has
waited ``linger`` seconds. A slow or failing endpoint only ever occupies its
own lane's workers.

Retries and dead letters
------------------------
Connection errors, timeouts, HTTP 5xx/408/429 and TikTok code 40100 are
transient: the lane backs off (exponential, with jitter, honouring
Retry-After) and sends one probe at a time until an answer comes. Permanent
answers (40001, 40002, 40105, other 4xx or non-zero codes) dead-letter the
events with TikTok's message; a 40002 batch is first bisected so its good
events still go. 40105 marks the pixel's credentials as failing (``/readyz``,
``pixel_forward_credentials_failing``) until the pixel's settings change;
meanwhile its events are dead-lettered without being sent. Dead letters are the
ledger's ``dead`` rows; ``pixel-server deliveries replay`` rebuilds them from
``events`` and queues them again (``sinks.ledger.replay``).

Memory and the offset commit rule
---------------------------------
The log offset is committed up to the end of the oldest log batch that still
has an unfinished event. An event is finished when it was sent or
dead-lettered *and* that ledger row is in ClickHouse, or when it is safely
(fsynced) in its pixel's spill store. So a crash loses nothing: what was not
finished is read from the log again.

Memory is bounded three ways: a lane keeps at most ``lane_capacity`` events in
memory (more go straight to its spill store); events that waited
``spill_after`` seconds in memory are spilled (a slow endpoint); and at the
first transient failure the failed batch and the lane's whole queue are
spilled, and new events for that pixel go to disk until it recovers. Only
then does the offset advance past them, so one pixel's outage never holds the
log (and ingestion's disk budget) hostage. The reader pauses when
``max_in_memory`` events are in memory overall (plain backpressure), and when
``max_ledger_backlog`` ledger rows wait for ClickHouse: during a ClickHouse
outage forwarding goes on for that many attempts, then waits, because an
event whose outcome is not on the record would be sent again after a crash
(keeping ledger rows in a local journal instead is left for later).

Never twice
-----------
An event (pixel, event, event_id, source) is sent again only when the outcome
of an attempt is unknown (timeout, connection lost, or a crash before the
ledger row reached ClickHouse). After a restart, the log ranges the previous
run handed out without committing (the reader persists them) and the spill
chunks found on disk are checked against the ledger, and events whose latest
row is ``sent`` or ``dead`` are skipped. A spilled event
remembers its position in the log; after a crash, spill entries the committed
offset had not passed are dropped, because the log hands those out again.
A retried event keeps its event_id, so TikTok deduplicates it.

Modules: :mod:`.constants`, :mod:`.payload` (what TikTok receives),
:mod:`.routing` (which copies go), :mod:`.lanes` (per-pixel state),
:mod:`.forwarder` (the reader, the lanes' workers, the commit rule); answers
and retry policy are :mod:`pixel_server.sinks.answers`.
"""

from __future__ import annotations

from pixel_server.sinks.answers import Answer, RetryPolicy, classify
from pixel_server.sinks.tiktok.constants import (
    API_PATH,
    INVALID_PARAMETER,
    INVALID_TOKEN,
    MAX_EVENTS,
    NO_PERMISSION,
    READER_NAME,
    SPILL_DIR,
)
from pixel_server.sinks.tiktok.forwarder import Forwarder
from pixel_server.sinks.tiktok.payload import encode_body, encode_event, test_code_of, tiktok_event
from pixel_server.sinks.tiktok.routing import pixel_skip_reason

__all__ = [
    "API_PATH",
    "INVALID_PARAMETER",
    "INVALID_TOKEN",
    "MAX_EVENTS",
    "NO_PERMISSION",
    "READER_NAME",
    "SPILL_DIR",
    "Answer",
    "Forwarder",
    "RetryPolicy",
    "classify",
    "encode_body",
    "encode_event",
    "pixel_skip_reason",
    "test_code_of",
    "tiktok_event",
]
