"""Calling a store's admin API for the catalog: paging stays in the sources,
waiting and retrying live here.

:class:`StoreHttp` sends one request and returns its JSON, retrying what a
store answers when it is busy or briefly broken, with the backoff of
:class:`~pixel_server.sinks.answers.RetryPolicy`:

* ``429`` waits ``Retry-After`` seconds (or BigCommerce's
  ``X-Rate-Limit-Time-Reset-Ms``), then tries again;
* ``5xx``, ``408``, timeouts and connection errors back off and try again;
* a source's ``throttled`` hook may ask to wait and retry a ``200`` (Shopify's
  GraphQL ``THROTTLED`` errors), and its ``pause`` hook to wait before the next
  request (BigCommerce's ``X-Rate-Limit-Requests-Left: 0``, Shopify's cost
  budget running low), so a full pull stays under the store's limits instead
  of running into them;
* ``401``/``403``, ``404`` and other ``4xx`` are final.

After ``max_attempts`` a :class:`SourceError` ends the pull, which then leaves
the catalog as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from pixel_server.sinks.answers import RetryPolicy, seconds

Reason = Literal[
    "not_configured", "unauthorized", "not_found", "http_error", "rate_limited", "unavailable",
    "bad_response",
]  # fmt: skip
Throttled = Callable[[httpx.Response, Any], float | None]
Pause = Callable[[httpx.Response, Any], float]


class SourceError(Exception):
    """A store API call that failed for good; the message is for the operator."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message


@dataclass(frozen=True)
class Pacing:
    """How patient a pull is with a store."""

    policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(base=0.5, max_delay=30.0))
    max_attempts: int = 6
    timeout: float = 30.0
    sleep: Callable[[float], None] = time.sleep  # tests record the waits instead


class StoreHttp:
    def __init__(
        self,
        headers: dict[str, str],
        pacing: Pacing | None = None,
        *,
        auth: httpx.Auth | tuple[str, str] | None = None,
        throttled: Throttled | None = None,
        pause: Pause | None = None,
    ) -> None:
        self.pacing = pacing or Pacing()
        self._client = httpx.Client(
            headers={"accept": "application/json", **headers},
            auth=auth,
            timeout=self.pacing.timeout,
        )
        self._throttled = throttled
        self._pause = pause
        self._sleep = self.pacing.sleep
        self.requests = 0
        self.waited = 0.0  # seconds spent waiting for the store

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, params: dict[str, Any] | None = None) -> tuple[Any, httpx.Response]:
        return self.request("GET", url, params=params)

    def post(self, url: str, body: Any) -> tuple[Any, httpx.Response]:
        return self.request("POST", url, json=body)

    def request(self, method: str, url: str, **kwargs: Any) -> tuple[Any, httpx.Response]:
        where = f"{method} {url}"  # URLs hold ids only; tokens travel in headers
        failures = 0
        while True:
            wait, problem = self._attempt(method, url, where, **kwargs)
            if isinstance(problem, tuple):
                return problem
            failures += 1
            if failures >= self.pacing.max_attempts:
                raise SourceError(problem.reason, f"{problem.message} ({failures} attempts)")
            self._wait(self.pacing.policy.delay(failures, wait))

    def _attempt(
        self, method: str, url: str, where: str, **kwargs: Any
    ) -> tuple[float | None, SourceError | tuple[Any, httpx.Response]]:
        """(seconds the store asked us to wait, the failure) or (None, the answer)."""
        self.requests += 1
        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            return None, SourceError("unavailable", f"{where}: timed out")
        except httpx.HTTPError as exc:
            return None, SourceError("unavailable", f"{where}: {type(exc).__name__}: {exc}")
        status = response.status_code
        if status == 429:
            reset_ms = seconds(response.headers.get("x-rate-limit-time-reset-ms"))
            wait = seconds(response.headers.get("retry-after"))
            wait = wait if wait is not None else (reset_ms / 1000 if reset_ms else None)
            return wait, SourceError("rate_limited", f"{where}: 429 rate limited")
        if status >= 500 or status == 408:
            return None, SourceError("unavailable", f"{where}: answered {status}")
        if status in (401, 403):
            raise SourceError("unauthorized", f"{where}: {status}: the store refused the token")
        if status == 404:
            raise SourceError("not_found", f"{where}: 404")
        if status >= 400:
            raise SourceError("http_error", f"{where}: answered {status}: {response.text[:200]}")
        try:
            body = response.json() if status != 204 and response.content else None
        except ValueError:
            return None, SourceError("bad_response", f"{where}: the answer is not JSON")
        if self._throttled is not None:
            wait = self._throttled(response, body)
            if wait is not None:
                return wait, SourceError("rate_limited", f"{where}: throttled")
        if self._pause is not None:
            self._wait(self._pause(response, body))
        return None, (body, response)

    def _wait(self, delay: float) -> None:
        if delay > 0:
            self.waited += delay
            self._sleep(delay)
