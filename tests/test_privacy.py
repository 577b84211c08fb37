"""Personal data outside ``user.*`` is found nowhere: not in the event log, not
in ClickHouse's files after a merge, not in what TikTok receives."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest

from pixel_server.config import Settings
from pixel_server.events.normalise import hash_email
from tests.ingest_helpers import metric, wait_for_rows
from tests.standins.tiktok_api import TikTokStandIn
from tests.test_forwarder import (
    event,
    forwarding_app,
    post_browser,
    post_server,
    runtime_of,
    settled,
    tiktok_pixel,
    wait_for,
)


@pytest.fixture
def api() -> Iterator[TikTokStandIn]:
    with TikTokStandIn() as standin:
        yield standin


def files_containing(root: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {n!r}" for n in needles if n in data]
    return found


def test_an_email_in_a_url_a_description_and_a_property_is_stored_and_sent_nowhere(
    settings: Settings, engine_dir: Path, api: TikTokStandIn
) -> None:
    email = f"jane.{uuid.uuid4().hex[:10]}@example.com"
    needles = [email.encode(), quote(email).encode(), email.split("@")[0].encode()]
    with forwarding_app(settings) as client:
        pixel = tiktok_pixel(client, api, forward_browser=True)
        page = {"url": f"https://shop.example.com/thanks?email={quote(email)}&step=2",
                "referrer": f"https://mail.example.net/read?from={email}"}  # fmt: skip
        props = {"description": f"gift for {email}", "contents": [{"content_id": "SKU-1"}],
                 "note_to_shop": f"write to {email} please"}  # fmt: skip
        browser = event("ViewContent", page=page, properties=props)
        server = event("Lead", properties={"description": f"lead {email}", "crm": [email]})
        post_browser(client, pixel, [browser])
        post_server(client, pixel, [server])
        runtime = runtime_of(client)
        assert wait_for_rows(runtime, 2, pixel["id"]) == 2
        assert wait_for(lambda: settled(client))
        assert wait_for(lambda: len(api.events(pixel["code"])) == 2)
        db = runtime.database.client()
        db.command("OPTIMIZE TABLE events FINAL")
        rows = db.query(
            "SELECT page_url, page_referrer, description, properties FROM events"
            " WHERE pixel_id = {p:String} ORDER BY event",
            parameters={"p": pixel["id"]},
        ).result_rows
        assert metric(client, "pixel_pii_redacted_total", field="page_url") == 1
        assert metric(client, "pixel_pii_redacted_total", field="properties") == 2
        sent = orjson.dumps(api.events(pixel["code"]))
    digest = hash_email(email)
    lead, view = rows
    assert view[0] == "https://shop.example.com/thanks?step=2"
    assert view[1] == "https://mail.example.net/read"
    assert view[2] == f"gift for {digest}"
    assert orjson.loads(view[3]) == {"note_to_shop": f"write to {digest} please"}
    assert lead[2] == f"lead {digest}"
    assert orjson.loads(lead[3]) == {"crm": [digest]}
    assert not [n for n in needles if n in sent], "raw email sent to TikTok"
    assert files_containing(settings.data_dir, needles) == []
    assert files_containing(engine_dir, needles) == []
