"""Token buckets per key: ``allow(key, cost)`` is 0.0 when the cost is taken,
else the seconds until it would be. Time comes from an injected clock."""

from __future__ import annotations

import pytest

from pixel_server.ingest.ratelimit import RateLimiter, client_key


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_new_key_starts_with_a_full_burst(clock: Clock) -> None:
    limiter = RateLimiter(rate=1, burst=3, clock=clock)
    assert [limiter.allow("ip") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.allow("ip") == pytest.approx(1.0)


def test_the_wait_is_the_time_until_the_cost_is_refilled(clock: Clock) -> None:
    limiter = RateLimiter(rate=2, burst=4, clock=clock)
    assert limiter.allow("ip", 4) == 0.0
    assert limiter.allow("ip", 3) == pytest.approx(1.5)  # 3 tokens at 2/s
    clock.advance(0.5)
    assert limiter.allow("ip", 3) == pytest.approx(1.0)  # 1 token back, 2 missing


def test_a_refused_request_takes_no_tokens(clock: Clock) -> None:
    limiter = RateLimiter(rate=1, burst=2, clock=clock)
    assert limiter.allow("ip", 2) == 0.0
    for _ in range(5):
        assert limiter.allow("ip") > 0
    clock.advance(1.0)
    assert limiter.allow("ip") == 0.0  # the refusals did not dig a hole


def test_buckets_refill_at_the_rate_up_to_the_burst(clock: Clock) -> None:
    limiter = RateLimiter(rate=10, burst=5, clock=clock)
    assert limiter.allow("ip", 5) == 0.0
    clock.advance(0.2)  # 2 tokens
    assert limiter.allow("ip", 2) == 0.0
    assert limiter.allow("ip", 1) > 0
    clock.advance(3600)  # refilled, but never above the burst
    assert limiter.allow("ip", 5) == 0.0
    assert limiter.allow("ip", 1) > 0


def test_keys_have_separate_buckets(clock: Clock) -> None:
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    assert limiter.allow("a") == 0.0
    assert limiter.allow("a") > 0
    assert limiter.allow("b") == 0.0


def test_a_request_larger_than_the_burst_passes_on_a_full_bucket(clock: Clock) -> None:
    limiter = RateLimiter(rate=1, burst=10, clock=clock)
    assert limiter.allow("ip", 50) == 0.0  # else it could never pass
    assert limiter.allow("ip", 50) == pytest.approx(10.0)
    clock.advance(10)
    assert limiter.allow("ip", 50) == 0.0


def test_fractional_costs_and_rates(clock: Clock) -> None:
    limiter = RateLimiter(rate=0.5, burst=1, clock=clock)
    assert limiter.allow("ip", 0.5) == 0.0
    assert limiter.allow("ip", 0.5) == 0.0
    assert limiter.allow("ip", 0.5) == pytest.approx(1.0)


def test_a_clock_that_does_not_move_gives_nothing_back(clock: Clock) -> None:
    limiter = RateLimiter(rate=1000, burst=1, clock=clock)
    assert limiter.allow("ip") == 0.0
    assert limiter.allow("ip") == pytest.approx(0.001)
    assert limiter.allow("ip") == pytest.approx(0.001)


def test_memory_is_bounded_by_forgetting_the_least_recently_used_keys(clock: Clock) -> None:
    limiter = RateLimiter(rate=1, burst=1, max_keys=2, clock=clock)
    assert limiter.allow("a") == 0.0
    assert limiter.allow("b") == 0.0
    assert limiter.allow("a") > 0  # "a" is now the most recently used
    assert limiter.allow("c") == 0.0  # "b" is forgotten
    assert limiter.allow("a") > 0  # "a" was kept, still empty
    # A forgotten key starts again with a full bucket: errs towards accepting.
    assert limiter.allow("b") == 0.0
    assert len(limiter._buckets) <= 2


def test_many_keys_stay_within_the_bound(clock: Clock) -> None:
    limiter = RateLimiter(rate=1, burst=1, max_keys=100, clock=clock)
    for i in range(10_000):
        limiter.allow(f"ip-{i}")
    assert len(limiter._buckets) == 100
    assert limiter.allow("ip-9999") > 0  # recent: remembered (and empty)
    assert limiter.allow("ip-0") == 0.0  # old: forgotten


def test_ipv6_addresses_of_one_64_share_a_bucket(clock: Clock) -> None:
    limiter = RateLimiter(rate=1, burst=2, clock=clock)
    a, b = client_key("2001:db8:1:2::1"), client_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert a == b == "2001:db8:1:2::/64"
    assert limiter.allow(a) == limiter.allow(b) == 0.0
    assert limiter.allow(client_key("2001:db8:1:2:abcd::9")) > 0  # the /64's bucket is empty
    assert limiter.allow(client_key("2001:db8:1:3::1")) == 0.0  # the next /64 is someone else


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("", ""),
        ("testclient", "testclient"),
    ],
)
def test_ipv4_and_other_addresses_are_keyed_as_they_are(address: str, key: str) -> None:
    assert client_key(address) == key
