"""Connection leases and throttle slots, on the limiter's own storage (nothing running)."""

from __future__ import annotations

import asyncio
import time

from limits import RateLimitItemPerSecond
from structlog.testing import capture_logs

from actionrelay.limits.endpoint import EndpointConfig
from actionrelay.limits.limiter import COST_SCALE, LEASE_SECONDS, RateLimits

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # port 1: nothing listens, the connect is refused


async def test_a_lease_that_cannot_be_given_back_expires_instead_of_failing_the_call() -> None:
    limits = RateLimits(UNREACHABLE_REDIS)
    with capture_logs() as logs:
        await limits._release_lease("api.example.com-0123456789", "lease-1")
    [warning] = logs
    assert warning["event"] == "endpoint.lease_not_released"
    assert warning["endpoint"] == "api.example.com-0123456789"
    assert f"{LEASE_SECONDS:g} s" in warning["note"]


def throttled(per_second: float) -> EndpointConfig:
    return EndpointConfig.model_validate(
        {"url": "https://api.example.com/hook", "throttling": {"max_per_second": per_second}}
    )


async def window_left(limits: RateLimits, endpoint: EndpointConfig) -> int:
    """Units left in the endpoint's throttle window (COST_SCALE per call at full rate)."""
    item = RateLimitItemPerSecond(20 * COST_SCALE)
    stats = await limits._limiter.get_window_stats(item, "throttle", endpoint.key)
    return stats.remaining


async def test_a_slot_due_after_the_give_up_time_is_not_taken() -> None:
    limits, endpoint = RateLimits(None), throttled(10)
    assert await limits.wait_for_slot(endpoint, time.time() + 10)
    started = time.monotonic()
    # The window has room, but the next slot is due in 40 ms: past the give-up time.
    assert not await limits.wait_for_slot(endpoint, time.time() + 0.01)
    assert time.monotonic() - started < 0.03


async def test_a_429_during_the_pause_prices_the_next_slot() -> None:
    limits, endpoint = RateLimits(None), throttled(20)
    assert await limits.wait_for_slot(endpoint, time.time() + 10)
    assert await window_left(limits, endpoint) == 19 * COST_SCALE
    waiting = asyncio.create_task(limits.wait_for_slot(endpoint, time.time() + 10))
    await asyncio.sleep(0)  # it is pausing for the next slot now
    limits.on_429(endpoint)  # half the rate: a slot costs twice as much
    assert await waiting
    assert await window_left(limits, endpoint) == 17 * COST_SCALE


async def test_a_rate_lowered_under_one_call_per_second_still_lets_calls_out() -> None:
    limits, endpoint = RateLimits(None), throttled(10)
    for _ in range(6):  # 10/s halved six times would be 0.16/s
        limits.on_429(endpoint)
    assert limits.effective_rate(endpoint) == 1.0
    assert await asyncio.wait_for(limits.wait_for_slot(endpoint, time.time() + 5), 2)
