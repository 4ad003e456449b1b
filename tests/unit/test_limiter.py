"""Connection leases in Redis: giving one back must never cost the call its outcome."""

from __future__ import annotations

from structlog.testing import capture_logs

from actionrelay.limiter import LEASE_SECONDS, RateLimits

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # port 1: nothing listens, the connect is refused


async def test_a_lease_that_cannot_be_given_back_expires_instead_of_failing_the_call() -> None:
    limits = RateLimits(UNREACHABLE_REDIS)
    with capture_logs() as logs:
        await limits._release_lease("api.example.com-0123456789", "lease-1")
    [warning] = logs
    assert warning["event"] == "endpoint.lease_not_released"
    assert warning["endpoint"] == "api.example.com-0123456789"
    assert f"{LEASE_SECONDS:g} s" in warning["note"]
