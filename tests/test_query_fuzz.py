"""Hostile query strings and path parameters on every GET route: never a 5xx.

The routes are read from the application itself, so a route added later is
covered without touching this file. Requests carry the pixel's owner token
(so they get past authentication into the code that reads the parameters),
and path parameters are mostly the real pixel id, sometimes anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from pixel_server.app import create_app
from tests.ingest_helpers import add_pixel, runtime_of, shared_settings

REPORTS = ("overview", "funnel", "purchases", "products", "attribution", "operations")
PARAMS = ("from", "to", "tz", "window", "model", "table", "format", "p", "u", "e", "id", "r",
          "token", "range", "preset", "name", "source", "limit", "status", "since")  # fmt: skip
_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
# Server-sent event streams answer until the client leaves: their query
# parameters are fuzzed by the live view's own tests, which read a bounded part.
STREAMS = ("/dashboard/{pixel_id}/live/stream",)

hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(min_size=200, max_size=600),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "1e999",
            "NaN",
            "2026-02-30",
            "9999-12-31",
            "0000-01-01",
            "../../etc/passwd",
            "%00",
            "\x00",
            "Europe/Berlin",
            "A" * 300,
            "UTC/../../../../../../etc/passwd",
            "2026-03-02T00:00:00+25:00",
            "[]",
            "{}",
            "'; DROP TABLE events; --",
            "<script>alert(1)</script>",
            '=HYPERLINK("http://x")',
            "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
        ]
    ),
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, engine_dir: Path) -> Iterator[dict[str, Any]]:
    app = create_app(shared_settings(tmp_path_factory, engine_dir))
    with TestClient(app, raise_server_exceptions=False) as client:
        pixel = add_pixel(runtime_of(client))
        yield {"client": client, "pixel": pixel, "routes": get_routes(app.routes)}


def get_routes(routes: list[Any]) -> list[str]:
    paths = [r.path for r in routes if isinstance(r, Route) and "GET" in (r.methods or ())]
    paths += [m.path + "/{file}" for m in routes if isinstance(m, Mount)]
    return sorted(set(paths) - set(STREAMS))


def fill(path: str, pixel_id: str, values: list[str]) -> str:
    it = iter(values)

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        value = next(it, "")
        if name == "pixel_id" and not value.startswith("!"):
            return pixel_id
        if name == "report" and value.startswith("#"):
            return REPORTS[len(value) % len(REPORTS)]
        return quote(value.lstrip("!#"), safe="") or "x"

    return _PARAM.sub(one, path)


def test_the_app_has_the_get_routes_this_file_expects(env: dict[str, Any]) -> None:
    routes = env["routes"]
    for path in ("/api/v1/reports/{pixel_id}/{report}", "/p/{pixel_id}.js", "/collect.gif",
                 "/readyz", "/metrics"):  # fmt: skip
        assert path in routes


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=st.data(),
    query=st.dictionaries(
        st.one_of(st.sampled_from(PARAMS), st.text(max_size=10)), hostile_text, max_size=5
    ),
    path_values=st.lists(st.one_of(hostile_text, st.just("#"), st.just("!")), max_size=3),
)
def test_no_get_route_answers_5xx(
    env: dict[str, Any], data: st.DataObject, query: dict[str, str], path_values: list[str]
) -> None:
    client: TestClient = env["client"]
    route = data.draw(st.sampled_from(env["routes"]))
    url = fill(route, env["pixel"]["id"], path_values)
    token = env["pixel"]["owner_token"]
    answer = client.get(url, params=query, headers={"authorization": f"Bearer {token}"})
    assert answer.status_code < 500, (url, query, answer.text[:300])


@pytest.mark.parametrize("report", REPORTS)
@pytest.mark.parametrize("suffix", ["", ".csv"])
def test_a_time_zone_hundreds_of_characters_long_is_400(
    env: dict[str, Any], report: str, suffix: str
) -> None:
    client: TestClient = env["client"]
    pixel = env["pixel"]
    answer = client.get(
        f"/api/v1/reports/{pixel['id']}/{report}{suffix}",
        params={"tz": "Europe/" + "x" * 400},
        headers={"authorization": f"Bearer {pixel['owner_token']}"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "tz"
