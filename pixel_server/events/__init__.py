"""The event model: names, schema and decoding, PII normalising and hashing."""

from pixel_server.events.names import (
    STANDARD_EVENTS,
    STORE_EVENTS,
    canonical_event_name,
    is_tiktok_standard,
)
from pixel_server.events.normalise import hash_user
from pixel_server.events.schema import (
    ApiEnvelope,
    Content,
    Event,
    EventError,
    Limits,
    Page,
    Properties,
    User,
    decode_api_body,
    decode_collect_body,
    decode_event,
    event_json_schema,
)

__all__ = [
    "STANDARD_EVENTS",
    "STORE_EVENTS",
    "ApiEnvelope",
    "Content",
    "Event",
    "EventError",
    "Limits",
    "Page",
    "Properties",
    "User",
    "canonical_event_name",
    "decode_api_body",
    "decode_collect_body",
    "decode_event",
    "event_json_schema",
    "hash_user",
    "is_tiktok_standard",
]
