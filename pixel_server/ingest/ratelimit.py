"""Token buckets per client IP and per pixel, in bounded memory."""

from __future__ import annotations

import functools
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """``allow(key, cost)`` takes ``cost`` tokens from ``key``'s bucket.

    Buckets refill at ``rate`` tokens/s up to ``burst``. At most ``max_keys``
    buckets are kept (least recently used dropped): a forgotten key starts
    with a full bucket, which only ever errs towards accepting.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, cost: float = 1.0) -> float:
        """0.0 when allowed, else the seconds to wait before ``cost`` is available."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if cost > self.burst:
            cost = self.burst  # a single request larger than the burst may pass when full
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (cost - tokens) / self.rate
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait


@functools.lru_cache(maxsize=4096)
def client_key(address: str) -> str:
    """The bucket key of a client address: IPv4 as it is, IPv6 by its /64.

    One IPv6 subscriber is given a whole /64 (often more) and can pick any
    address in it; keyed by full address, one person would get 2**64 buckets.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return address
