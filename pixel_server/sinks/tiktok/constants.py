"""Names and limits the forwarder's modules share: TikTok's path, batch limits and
answer codes, the log reader's name and where the retry store lives."""

from __future__ import annotations

import re
from typing import Final, TypeVar

READER_NAME: Final = "forwarder"
SPILL_DIR: Final = "forwarder"  # under the data directory: the retry store, per pixel
API_PATH: Final = "/open_api/v1.3/event/track/"
MAX_EVENTS: Final = 1000  # TikTok rejects a larger request whole
MAX_BODY_BYTES: Final = 1_000_000  # no published limit; integrators stay under 1 MB
NO_PERMISSION: Final = 40001
INVALID_PARAMETER: Final = 40002
INVALID_TOKEN: Final = 40105
DISPATCH_SLICE: Final = 500  # events handed out between turns of the event loop
PIXEL_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # also a directory name

T = TypeVar("T")
