"""The endpoint gate against a real (unreachable or in-memory) limit store."""

from __future__ import annotations

import pytest
from yarl import URL

from actionrelay.limits.breaker import BreakerState
from actionrelay.limits.endpoint import Breaker, EndpointConfig, EndpointTable
from actionrelay.limits.gate import Capped, EndpointGate, Hold, Park
from actionrelay.limits.limiter import RateLimits

URL_ = URL("https://api.test/v1/send")


def gate(entry: dict[str, object], redis_url: str | None = None) -> EndpointGate:
    entry = {"breaker": {"failures": 1, "cool_down_seconds": 1}, **entry}
    table = EndpointTable([EndpointConfig.model_validate(entry)])
    return EndpointGate(table, RateLimits(redis_url), Breaker(failures=1, cool_down_seconds=1))


async def test_an_unreachable_limit_store_parks_the_event_instead_of_failing_it() -> None:
    # Port 1 on loopback refuses connections: Redis is "down".
    g = gate(
        {"url": "https://api.test/v1/*", "capping": {"max_calls": 5, "period_ms": 1000}},
        redis_url="redis://127.0.0.1:1/0",
    )
    with pytest.raises(Park, match="endpoint limits unavailable"):
        await g.admit("POST", URL_, held_since=None)


async def test_a_throttled_event_is_held_before_the_breaker_is_asked() -> None:
    g = gate({"url": "https://api.test/v1/*", "throttling": {"max_per_second": 5}})
    breaker = g._breaker(g.table.entries[0].key, g.table.entries[0])
    breaker.record(failed=True, now=0)  # open, cool-down long over
    with pytest.raises(Hold):
        await g.admit("POST", URL_, held_since=None)
    assert breaker.state is BreakerState.OPEN  # no probe was spent on an event that waits


async def test_a_capped_probe_gives_the_probe_back() -> None:
    g = gate({"url": "https://api.test/v1/*", "capping": {"max_calls": 1, "period_ms": 60000}})
    await g.admit("POST", URL_, held_since=None)  # uses the one call of the window
    breaker = g._breaker(g.table.entries[0].key, g.table.entries[0])
    breaker.record(failed=True, now=0)
    with pytest.raises(Capped):
        await g.admit("POST", URL_, held_since=None)  # the probe, capped: no call made
    assert breaker.admit(10**9).probe  # so the next event may probe
