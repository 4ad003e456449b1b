"""What stands between a built request and the endpoint: breaker, throttling, capping.

``EndpointGate.admit`` either lets a call through, or raises what should happen
to the event instead: wait in the broker (``Park``), join the endpoint's
holding queue (``Hold``), or end with status capped (``Capped``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from yarl import URL

from actionrelay.breaker import CircuitBreaker
from actionrelay.endpoint import Breaker, EndpointConfig, EndpointTable
from actionrelay.errors import ConnectFailure, HttpStatusError, PermanentFailure, StepFailure
from actionrelay.limiter import RateLimits
from actionrelay.metrics import BREAKER_STATES, Metrics

log = structlog.get_logger("actionrelay.gate")


class Capped(PermanentFailure):
    """Over the endpoint's cap, or throttled longer than its max wait; no call made."""

    error_type = "capped"
    status = "capped"

    @property
    def status_code(self) -> str:
        return "capped"


class Park(Exception):
    """Wait ``seconds`` in the broker without using an attempt (breaker open)."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.reason = reason


class Hold(Exception):
    """Queue behind the endpoint's throttle, in the broker."""

    def __init__(self, endpoint: EndpointConfig) -> None:
        super().__init__(endpoint.url)
        self.endpoint = endpoint


@dataclass(frozen=True, slots=True)
class Passage:
    endpoint: EndpointConfig | None
    breaker_key: str
    host: str  # the ``endpoint`` label of metrics


class EndpointGate:
    def __init__(
        self,
        table: EndpointTable,
        limits: RateLimits,
        default_breaker: Breaker,
        metrics: Metrics | None = None,
    ) -> None:
        self.table = table
        self.limits = limits
        self.metrics = metrics or Metrics()
        self._default_breaker = default_breaker
        self._breakers: dict[str, CircuitBreaker] = {}

    def throttled(self) -> list[EndpointConfig]:
        return [e for e in self.table.entries if e.throttling is not None]

    async def admit(
        self, method: str, url: URL, *, held_since: float | None, action: str = ""
    ) -> Passage:
        """Let one call through, or raise Park, Hold or Capped."""
        try:
            return await self._admit(method, url, held_since)
        except Capped:
            self.metrics.capped.labels(action, url.host or "").inc()
            raise

    async def _admit(self, method: str, url: URL, held_since: float | None) -> Passage:
        endpoint = self.table.find(method, url)
        key = endpoint.key if endpoint else str(url.origin())
        host = url.host or ""
        admission = self._breaker(key, endpoint).admit(time.monotonic())
        if admission.probe:
            log.warning("endpoint.breaker", endpoint=key, state="half_open", note="probe call")
            self.metrics.breaker_state.labels(host).set(BREAKER_STATES["half_open"])
        if not admission.call:
            raise Park(admission.wait_seconds, f"circuit open for {url.origin()}")
        if endpoint is None:
            return Passage(None, key, host)
        if endpoint.throttling is not None:
            if held_since is None:
                raise Hold(endpoint)
            give_up_at = held_since + endpoint.throttling.max_wait_seconds
            admitted = await self.limits.wait_for_slot(endpoint, give_up_at)
            self.metrics.queue_time.labels(host).observe(max(0.0, time.time() - held_since))
            rate = self.limits.effective_rate(endpoint)
            self.metrics.effective_rate.labels(host).set(rate or 0)
            if not admitted:
                raise Capped(
                    f"throttled longer than {endpoint.throttling.max_wait_seconds:g} s "
                    f"for {endpoint.url}; no call made"
                )
        if not await self.limits.allow_call(endpoint):
            assert endpoint.capping is not None
            raise Capped(
                f"over the cap of {endpoint.capping.max_calls} calls per "
                f"{endpoint.capping.period_ms} ms for {endpoint.url}; no call made"
            )
        return Passage(endpoint, key, host)

    @asynccontextmanager
    async def connection(self, passage: Passage) -> AsyncIterator[None]:
        if passage.endpoint is None:
            yield
            return
        async with self.limits.connection(passage.endpoint):
            yield

    def record(self, passage: Passage, status: int | None, failure: StepFailure | None) -> None:
        """Feed the breaker and the 429 adaptation with one call's outcome."""
        failed = isinstance(failure, ConnectFailure) or (status is not None and status >= 500)
        breaker = self._breakers[passage.breaker_key]
        changed = breaker.record(failed=failed, now=time.monotonic())
        if changed is not None:
            self.metrics.breaker_state.labels(passage.breaker_key).set(
                BREAKER_STATES[changed.value]
            )
            log.warning(
                "endpoint.breaker",
                endpoint=passage.breaker_key,
                state=changed.value,
                consecutive_failures=breaker.consecutive_failures,
                cool_down_seconds=breaker.cool_down,
            )
        if passage.endpoint is not None and status == 429:
            self.limits.on_429(passage.endpoint)

    def _breaker(self, key: str, endpoint: EndpointConfig | None) -> CircuitBreaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            spec = endpoint.breaker if endpoint else self._default_breaker
            breaker = self._breakers[key] = CircuitBreaker(spec.failures, spec.cool_down_seconds)
        return breaker


def status_of(failure: StepFailure | None) -> int | None:
    return failure.http_status if isinstance(failure, HttpStatusError) else None
