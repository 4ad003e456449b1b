"""What stands between a built request and the endpoint: breaker, throttling, capping.

``EndpointGate.admit`` either lets a call through, or raises what should happen
to the event instead: wait in the broker (``Park``), join the endpoint's
holding queue (``Hold``), or end with status capped (``Capped``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass

import structlog
from yarl import URL

from actionrelay.core.errors import (
    ActionRelayError,
    CallTimeout,
    ConnectFailure,
    PermanentFailure,
    StepFailure,
)
from actionrelay.limits.breaker import CircuitBreaker
from actionrelay.limits.endpoint import Breaker, EndpointConfig, EndpointTable
from actionrelay.limits.limiter import LimitsUnavailable, RateLimits
from actionrelay.observability.metrics import BREAKER_STATES, Metrics

log = structlog.get_logger("actionrelay.gate")
NO_SLOT: AbstractAsyncContextManager[None] = nullcontext()
STORE_DOWN_WAIT_SECONDS = 5.0


class Capped(PermanentFailure):
    """Over the endpoint's cap, or throttled longer than its max wait; no call made."""

    error_type = "capped"
    status = "capped"

    @property
    def status_code(self) -> str:
        return "capped"


class Park(ActionRelayError):
    """Wait ``seconds`` in the broker without using an attempt (breaker open)."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.reason = reason


class Hold(ActionRelayError):
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
        if endpoint is not None and endpoint.throttling is not None and held_since is None:
            raise Hold(endpoint)  # before the breaker: a probe it lets out must be a call
        breaker = self._breaker(key, endpoint)
        admission = breaker.admit(time.monotonic())
        if admission.probe:
            log.warning("endpoint.breaker", endpoint=key, state="half_open", note="probe call")
            self.metrics.breaker_state.labels(host).set(BREAKER_STATES["half_open"])
        if not admission.call:
            raise Park(admission.wait_seconds, f"circuit open for {url.origin()}")
        try:
            if endpoint is not None:
                await self._limit(endpoint, host, held_since)
        except LimitsUnavailable as exc:
            if admission.probe:
                breaker.cancel_probe()
            raise Park(STORE_DOWN_WAIT_SECONDS, f"endpoint limits unavailable: {exc}") from exc
        except BaseException:
            if admission.probe:
                breaker.cancel_probe()
            raise
        return Passage(endpoint, key, host)

    async def _limit(self, endpoint: EndpointConfig, host: str, held_since: float | None) -> None:
        """Throttling then capping; raises Capped when the call may not be made."""
        if endpoint.throttling is not None and held_since is not None:
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

    def connection(
        self, passage: Passage, wait_seconds: float
    ) -> AbstractAsyncContextManager[None]:
        """One of the endpoint's ``max_connections``, waited for at most ``wait_seconds``."""
        if passage.endpoint is None:
            return NO_SLOT  # no generator kept alive for the whole call
        return self._slot(passage, wait_seconds)

    @asynccontextmanager
    async def _slot(self, passage: Passage, wait_seconds: float) -> AsyncIterator[None]:
        assert passage.endpoint is not None
        async with AsyncExitStack() as stack:
            try:
                async with asyncio.timeout(wait_seconds):
                    await stack.enter_async_context(self.limits.connection(passage.endpoint))
            except TimeoutError as exc:
                raise CallTimeout(
                    f"no free connection to {passage.host} within {wait_seconds:g} s "
                    "(the endpoint's max_connections are all in use)"
                ) from exc
            except LimitsUnavailable as exc:
                raise ConnectFailure(f"endpoint limits unavailable: {exc}") from exc
            yield

    def record(self, passage: Passage, status: int | None, failure: StepFailure | None) -> None:
        """Feed the breaker and the 429 adaptation with one call's outcome."""
        failed = isinstance(failure, ConnectFailure) or (status is not None and status >= 500)
        breaker = self._breakers[passage.breaker_key]
        changed = breaker.record(failed=failed, now=time.monotonic())
        if changed is not None:
            self.metrics.breaker_state.labels(passage.host).set(BREAKER_STATES[changed.value])
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
