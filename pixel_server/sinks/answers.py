"""TikTok's answers and the retry policy, shared by everything that calls TikTok's
Business API (the event forwarder, the catalog push).

:func:`classify` sorts an HTTP answer into sent / retry / dead: code 0 (and
20001, partial success) is sent; TikTok's rate-limit code 40100, HTTP
408/429/5xx and an unreadable 200 (an unknown outcome) are retried; any other
code or 4xx is permanent (dead-lettered with TikTok's message).
:class:`RetryPolicy` is exponential backoff with jitter that honours
Retry-After.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

SUCCESS_CODES: Final = frozenset({0, 20001})  # 20001: partial success, treated as success
RATE_LIMITED: Final = 40100

# ------------------------------------------------------------------ answers

AnswerKind = Literal["sent", "retry", "dead"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What a request's answer means for its events."""

    kind: AnswerKind
    http_status: int = 0  # 0: no HTTP answer
    code: int = 0
    message: str = ""
    request_id: str = ""
    retry_after: float | None = None


def classify(status: int, body: bytes, retry_after: str | None = None) -> Answer:
    """Sort an HTTP answer into sent / retry / dead (reference page, "Limits and answers")."""
    parsed: Any = None
    with contextlib.suppress(ValueError):
        parsed = orjson.loads(body) if body else None
    code: int | None = None
    message = ""
    request_id = ""
    if isinstance(parsed, dict):
        raw_code = parsed.get("code")
        if isinstance(raw_code, int) and not isinstance(raw_code, bool):
            code = raw_code
        message = str(parsed.get("message") or "")
        request_id = str(parsed.get("request_id") or "")
    if not message:
        message = body[:200].decode("utf-8", "replace").strip() or f"HTTP {status}"
    wait = seconds(retry_after)
    if status == 200 and code is not None:
        if code in SUCCESS_CODES:
            return Answer("sent", status, code, message, request_id)
        kind: AnswerKind = "retry" if code == RATE_LIMITED else "dead"
        return Answer(kind, status, code, message, request_id, wait)
    if status in (408, 429) or status >= 500 or status == 200:
        # An unreadable 200 may or may not have been taken: an unknown outcome.
        return Answer("retry", status, code or 0, message, request_id, wait)
    return Answer("dead", status, code or 0, message, request_id)


def seconds(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None  # an HTTP date: rare from APIs; our own backoff applies


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for a pixel whose endpoint is failing."""

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.5  # the delay is drawn from [d * (1 - jitter), d]

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        d = min(self.max_delay, self.base * self.factor ** max(0, failures - 1))
        d *= 1.0 - self.jitter * random.random()  # jitter, not security
        if retry_after is not None:
            d = max(d, min(retry_after, self.max_delay))
        return d
