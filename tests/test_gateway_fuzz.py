"""Hostile input for the TikTok-compatible gateway: never a 5xx, always
TikTok's envelope with one of the codes the gateway documents.

The same strategies as ``tests/test_ingest_fuzz.py`` (random bytes, random
and deeply nested JSON, odd numbers, lone surrogates, a real event with
fields replaced by wrong types) for the 2.0 path, and a 1.0 event template
mutated the same way for ``pixel/track/`` and ``pixel/batch/``. Schemathesis
then generates requests from the gateway's part of ``/openapi.json``.
"""

# ruff: noqa: F811 - fixtures imported from test_ingest_fuzz are requested by name

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth, negative_data_rejection
from starlette.applications import Starlette
from starlette.testclient import TestClient

from pixel_server.events.schema import ERROR_CODES
from pixel_server.ingest.gateway import CODES, EVENT_TRACK, PIXEL_BATCH, PIXEL_TRACK

# The fixtures (an app per module, its pixel, the app schemathesis drives) too.
from tests.test_ingest_fuzz import (  # noqa: F401 - fixtures
    ERROR_CODE,
    SETTINGS,
    _paths,
    _replace,
    api_app,
    api_bodies,
    api_pixel,
    client,
    encode,
    header_values,
    hostile,
    json_values,
    pixel,
    raw_bytes,
    scalars,
)

RECENT = (datetime.now(UTC) - timedelta(hours=1)).isoformat()  # inside the time window


def v1_template() -> dict[str, Any]:
    return {
        "type": "track",
        "event": "CompletePayment",
        "event_id": "o-1",
        "timestamp": RECENT,
        "context": {
            "ad": {"callback": "E.C.P"},
            "page": {"url": "https://shop.example.com/?ttclid=x", "referrer": ""},
            "user": {"email": "a@example.com", "phone_number": "+12133734253",
                     "external_id": "c-1", "ttp": "t"},
            "ip": "203.0.113.9",
            "user_agent": "Mozilla/5.0",
        },
        "properties": {
            "contents": [{"content_id": "sku", "content_type": "product", "price": 1.5,
                          "quantity": 2}],
            "content_id": "flat", "value": 3, "currency": "USD", "query": "q",
        },
    }  # fmt: skip


V1_PATHS = [p for p in _paths(v1_template()) if p]


@st.composite
def v1_events(draw: st.DrawFn) -> Any:
    """A 1.0 event with up to three fields replaced by something hostile."""
    item: Any = v1_template()
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(V1_PATHS))
        with contextlib.suppress(KeyError, IndexError, TypeError):
            item = _replace(item, path, draw(hostile | scalars))
    return item


@st.composite
def v1_bodies(draw: st.DrawFn, pixel_id: str) -> tuple[str, bytes]:
    shape = draw(st.sampled_from(["track", "track", "batch", "batch", "raw", "value"]))
    path = draw(st.sampled_from([PIXEL_TRACK, PIXEL_BATCH]))
    if shape == "raw":
        return path, draw(raw_bytes)
    if shape == "value":
        return path, encode(draw(hostile))
    code = draw(st.just(pixel_id) | st.just(pixel_id) | hostile)
    if shape == "track":
        body: Any = {"pixel_code": code, **draw(v1_events() | json_values.filter(
            lambda v: isinstance(v, dict)))}  # fmt: skip
        return PIXEL_TRACK, encode(body, draw(st.booleans()))
    body = {"pixel_code": code, "batch": draw(st.lists(v1_events() | json_values, max_size=6))}
    if draw(st.booleans()):
        body["test_event_code"] = draw(st.text(max_size=10) | hostile)
    return PIXEL_BATCH, encode(body, draw(st.booleans()))


def check(response: Any) -> None:
    """The contract for any input: HTTP 200, TikTok's envelope, a known code."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "request_id", "data"}, body
    code, data = body["code"], body["data"]
    event(f"code {code}")
    assert code in CODES, body
    assert isinstance(body["message"], str) and body["message"]
    if "error" in data:
        assert ERROR_CODE.match(data["error"]["code"]), data
        assert data["error"]["code"] != "internal_error"
        return
    assert isinstance(data["accepted"], int) and data["accepted"] >= 0
    assert code == (0 if not data["rejected"] else 20001 if data["accepted"] else 40002)
    for rejection in data["rejected"]:
        assert rejection["code"] in ERROR_CODES
        assert "[" not in rejection["field"]  # TikTok's dotted paths


def post(client: TestClient, path: str, body: bytes, key: str) -> Any:
    return client.post(
        path, content=body, headers={"access-token": key, "content-type": "application/json"}
    )


@SETTINGS
@given(data=st.data())
def test_event_track_survives_hostile_bodies(
    client: TestClient, pixel: dict[str, Any], data: st.DataObject
) -> None:
    check(post(client, EVENT_TRACK, data.draw(api_bodies(pixel["id"])), pixel["api_key"]))


@SETTINGS
@given(data=st.data())
def test_pixel_track_and_batch_survive_hostile_bodies(
    client: TestClient, pixel: dict[str, Any], data: st.DataObject
) -> None:
    path, body = data.draw(v1_bodies(pixel["id"]))
    check(post(client, path, body, pixel["api_key"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from([EVENT_TRACK, PIXEL_TRACK, PIXEL_BATCH]),
    headers=st.dictionaries(
        st.sampled_from(["access-token", "content-type", "content-length", "authorization"]),
        header_values,
        max_size=3,
    ),
    body=st.binary(max_size=200),
)
def test_hostile_headers(
    client: TestClient, path: str, headers: dict[str, str], body: bytes
) -> None:
    if "content-length" in headers:
        headers["content-length"] = headers["content-length"] or str(len(body))
    r = client.post(path, headers=headers, content=body)
    check(r)


# -------------------------------------------------------------- schemathesis


@pytest.fixture(scope="module")
def api_schema(api_app: Starlette, api_pixel: dict[str, Any]) -> Any:
    config = SchemathesisConfig.from_dict(
        {"auth": {"openapi": {"accessToken": {"api_key": api_pixel["api_key"]}}}}
    )
    return schemathesis.openapi.from_asgi("/openapi.json", api_app, config=config)


# TikTok answers refused input and credentials with HTTP 200 and a code, so
# the checks that expect a 4xx for them do not apply; the rest do.
_NOT_TIKTOKS = [negative_data_rejection, ignored_auth]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_gateways_openapi_document_holds_for_generated_requests(
    api_schema: Any, api_pixel: dict[str, Any], data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from([EVENT_TRACK, PIXEL_TRACK, PIXEL_BATCH]))
    operation = api_schema[path]["POST"]
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
    case = data.draw(operation.as_strategy(generation_mode=mode))
    if isinstance(case.body, dict):
        for key in ("event_source_id", "pixel_code"):
            if isinstance(case.body.get(key), str) and 1 <= len(case.body[key]) <= 64:
                case.body[key] = api_pixel["id"]  # a real pixel, so the events are reached
    response = case.call()
    assert response.status_code < 500, response.text
    event(f"code {response.json()['code']}")  # see --hypothesis-show-statistics
    case.validate_response(response, excluded_checks=_NOT_TIKTOKS)
