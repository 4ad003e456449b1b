"""Endpoint rate limits that hold across replicas.

Counting uses the ``limits`` library: its Redis storage when
``ACTIONRELAY_REDIS_URL`` is set (global across replicas), its memory
storage otherwise (per worker). Capping is a sliding window; throttling waits
for a slot of a one-second sliding window, slots spaced at twice the rate in
each worker (``Pacer``). A 429 lowers an endpoint's effective rate, which then
recovers step by step.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from actionrelay.core.errors import ActionRelayError, ConfigError
from actionrelay.limits.endpoint import EndpointConfig

if TYPE_CHECKING:
    import coredis
    from limits import RateLimitItem
    from limits.aio.storage import Storage
    from limits.aio.strategies import MovingWindowRateLimiter

log = structlog.get_logger("actionrelay.limiter")

# A throttle slot costs COST_SCALE units of a window holding max_per_second *
# COST_SCALE; a lowered rate costs more units per call, so the window (and its
# Redis key) stays the same whatever the effective rate.
COST_SCALE = 10
MIN_FACTOR = 0.05
MIN_RATE = 1.0
BACKOFF = 0.5
RECOVERY_STEP = 1.25
RECOVERY_EVERY_SECONDS = 5.0
LEASE_SECONDS = 120.0
# A worker spaces a throttled endpoint's slots at twice its rate, 10 ms of them at
# once at most: a whole second's slots granted together start their calls together,
# and those on new connections reach the endpoint late, within a second of the
# next second's calls on warm ones, so the endpoint would count more than the rate.
PACE_FACTOR = 2.0
PACE_BURST_SECONDS = 0.01


@dataclass
class Adaptation:
    """The share of an endpoint's configured rate currently used (1.0 = all of it)."""

    factor: float = 1.0
    changed_at: float = field(default_factory=time.monotonic)

    def on_429(self, now: float) -> bool:
        before = self.factor
        self.factor = max(MIN_FACTOR, self.factor * BACKOFF)
        self.changed_at = now
        return self.factor != before

    def recover(self, now: float) -> bool:
        if self.factor >= 1.0 or now - self.changed_at < RECOVERY_EVERY_SECONDS:
            return False
        steps = int((now - self.changed_at) // RECOVERY_EVERY_SECONDS)
        self.factor = min(1.0, self.factor * RECOVERY_STEP**steps)
        self.changed_at = now
        return True


@dataclass
class Pacer:
    """Spacing of one endpoint's slots in this worker: a virtual-scheduling GCRA."""

    next_at: float = 0.0  # monotonic time the next slot is due

    def delay(self, now: float) -> float:
        """Seconds to wait before the next slot may be taken."""
        return max(0.0, self.next_at - now - PACE_BURST_SECONDS)

    def taken(self, now: float, rate: float) -> None:
        self.next_at = max(self.next_at, now) + 1.0 / (rate * PACE_FACTOR)


class LimitsUnavailable(ActionRelayError):
    """The store that counts endpoint limits (Redis) did not answer."""


def store_error_types() -> tuple[type[BaseException], ...]:
    """What the Redis clients raise when Redis is down; translated here, once.

    coredis is imported only when Redis is configured (it costs 12 MB of memory), and
    the limits library only when an endpoint is capped or throttled (2 MB).
    """
    errors: list[type[BaseException]] = [ConnectionError, OSError]
    limits_errors = sys.modules.get("limits.errors")
    if limits_errors is not None:
        errors.append(limits_errors.StorageError)
    redis_exceptions = sys.modules.get("coredis.exceptions")
    if redis_exceptions is not None:
        errors.append(redis_exceptions.RedisError)
    return tuple(errors)


@contextmanager
def store_errors() -> Iterator[None]:
    try:
        yield
    except store_error_types() as exc:
        raise LimitsUnavailable(f"{type(exc).__name__}: {exc}") from exc


class RateLimits:
    """Capping, throttling and connection limits for every configured endpoint."""

    def __init__(self, redis_url: str | None) -> None:
        self.shared = redis_url is not None
        self._redis_url = redis_url
        self._client: coredis.Redis[bytes] | None = None
        if redis_url:
            import coredis  # only with Redis: it costs 12 MB of memory

            self._client = coredis.Redis.from_url(redis_url)
        self._counter: tuple[Storage, MovingWindowRateLimiter] | None = None
        self._adaptations: dict[str, Adaptation] = {}
        self._local_slots: dict[str, asyncio.Semaphore] = {}
        self._order: dict[str, asyncio.Lock] = {}
        self._pacers: dict[str, Pacer] = {}

    @property
    def _storage(self) -> Storage:
        return self._counting()[0]

    @property
    def _limiter(self) -> MovingWindowRateLimiter:
        return self._counting()[1]

    def _counting(self) -> tuple[Storage, MovingWindowRateLimiter]:
        """The limits library's storage and strategy, made on first use."""
        if self._counter is None:
            from limits.aio.storage import MemoryStorage, RedisStorage
            from limits.aio.strategies import MovingWindowRateLimiter

            url = self._redis_url
            storage: Storage = (
                RedisStorage(url.replace("redis://", "async+redis://", 1), wrap_exceptions=True)
                if url
                else MemoryStorage()
            )
            self._counter = (storage, MovingWindowRateLimiter(storage))
        return self._counter

    async def check(self) -> None:
        """Fail at start, not at the first call, when Redis is unreachable."""
        try:
            with store_errors():
                answered = await self._storage.check()
        except LimitsUnavailable as exc:
            raise ConfigError(f"Redis for endpoint limits: {exc}") from exc
        if not answered:
            raise ConfigError("Redis for endpoint limits does not answer (ACTIONRELAY_REDIS_URL)")

    def close(self) -> None:
        """Drop the Redis connections (graceful shutdown)."""
        if self._client is not None:
            self._client.connection_pool.disconnect()
        if self._counter is None:
            return
        bridge = getattr(self._storage, "bridge", None)
        redis = getattr(bridge, "storage", None)  # the limits library's own client
        if redis is not None:
            redis.connection_pool.disconnect()

    async def allow_call(self, endpoint: EndpointConfig) -> bool:
        """Capping: one call if the sliding window has room (retries count too)."""
        capping = endpoint.capping
        if capping is None:
            return True
        item = _window(capping.max_calls, capping.period_ms)
        with store_errors():
            return await self._limiter.hit(item, "cap", endpoint.key)

    def effective_rate(self, endpoint: EndpointConfig) -> float | None:
        if endpoint.throttling is None:
            return None
        adaptation = self._adaptations.setdefault(endpoint.key, Adaptation())
        if adaptation.recover(time.monotonic()):
            log.info("endpoint.rate_recovering", **_rate_change(endpoint, adaptation))
        return _lowered(endpoint.throttling.max_per_second, adaptation)

    def on_429(self, endpoint: EndpointConfig) -> None:
        if endpoint.throttling is None:
            return
        adaptation = self._adaptations.setdefault(endpoint.key, Adaptation())
        if adaptation.on_429(time.monotonic()):
            log.warning(
                "endpoint.rate_lowered", reason="HTTP 429", **_rate_change(endpoint, adaptation)
            )

    async def wait_for_slot(self, endpoint: EndpointConfig, give_up_at: float) -> bool:
        """Throttling: wait, in arrival order, for a slot; False if none before ``give_up_at``."""
        throttling = endpoint.throttling
        if throttling is None:
            return True
        item = _per_second(max(1, math.ceil(throttling.max_per_second * COST_SCALE)))
        pacer = self._pacers.setdefault(endpoint.key, Pacer())
        async with self._order.setdefault(endpoint.key, asyncio.Lock()):
            while True:
                if pace := pacer.delay(time.monotonic()):
                    if time.time() + pace > give_up_at:
                        return False
                    await asyncio.sleep(pace)
                # Read after the pause: a 429 meanwhile must price this slot.
                rate = self.effective_rate(endpoint) or throttling.max_per_second
                cost = max(1, round(throttling.max_per_second * COST_SCALE / rate))
                with store_errors():
                    admitted = await self._limiter.hit(item, "throttle", endpoint.key, cost=cost)
                if admitted:
                    pacer.taken(time.monotonic(), rate)
                    return True
                wait = min(1.0, max(0.005, 1.0 / rate))
                if time.time() + wait > give_up_at:
                    return False
                await asyncio.sleep(wait)

    @asynccontextmanager
    async def connection(self, endpoint: EndpointConfig) -> AsyncIterator[None]:
        """Hold one of the endpoint's ``max_connections`` (all replicas with Redis)."""
        limit = endpoint.max_connections
        if limit is None:
            yield
            return
        if not self.shared:
            async with self._local_slots.setdefault(endpoint.key, asyncio.Semaphore(limit)):
                yield
            return
        with store_errors():
            lease = await self._acquire_lease(endpoint.key, limit)
        try:
            yield
        finally:
            await self._release_lease(endpoint.key, lease)

    async def _acquire_lease(self, key: str, limit: int) -> str:
        client = self._redis()
        name, member = f"actionrelay:conn:{key}", uuid.uuid4().hex
        while True:
            now = time.time()
            await client.zremrangebyscore(name, -math.inf, now - LEASE_SECONDS)
            await client.zadd(name, {member: now})
            rank = await client.zrank(name, member)
            if isinstance(rank, int) and rank < limit:
                await client.expire(name, int(LEASE_SECONDS) * 2)
                return member
            await client.zrem(name, [member])
            await asyncio.sleep(0.01)

    async def _release_lease(self, key: str, member: str) -> None:
        """Give the slot back; shielded, so a cancelled call still returns it.

        Runs after the call: if Redis fails here, the call's outcome must still be
        reported, and the lease expires by itself after ``LEASE_SECONDS``.
        """
        try:
            await asyncio.shield(self._redis().zrem(f"actionrelay:conn:{key}", [member]))
        except store_error_types() as exc:
            log.warning(
                "endpoint.lease_not_released",
                endpoint=key,
                error=str(exc),
                note=f"the connection slot frees itself within {LEASE_SECONDS:g} s",
            )

    def _redis(self) -> coredis.Redis[bytes]:
        assert self._client is not None
        return self._client


def _rate_change(endpoint: EndpointConfig, adaptation: Adaptation) -> dict[str, object]:
    """The fields of the log line that reports a new effective rate."""
    assert endpoint.throttling is not None
    rate = _lowered(endpoint.throttling.max_per_second, adaptation)
    return {"endpoint": endpoint.url, "effective_per_second": round(rate, 2)}


def _per_second(amount: int, seconds: int = 1) -> RateLimitItem:
    from limits import RateLimitItemPerSecond

    return RateLimitItemPerSecond(amount, seconds)


def _window(amount: int, period_ms: int) -> RateLimitItem:
    """A sliding window of ``amount`` per ``period_ms`` (whole seconds, at least one)."""
    return _per_second(amount, max(1, math.ceil(period_ms / 1000)))


def _lowered(max_per_second: float, adaptation: Adaptation) -> float:
    """The adapted rate, never under one call per second: a slot of the one-second
    window costs more as the rate falls, and under 1/s it would cost more than the
    whole window, so no call would ever go out."""
    return max(MIN_RATE, max_per_second * adaptation.factor)
