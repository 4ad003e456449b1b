"""A circuit breaker per endpoint. Pure: the caller passes the clock.

closed --(N consecutive failures)--> open --(cool-down over)--> half-open
half-open --(probe succeeds)--> closed;  half-open --(probe fails)--> open
While open, and while a probe is out, events wait in the broker.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Admission:
    call: bool
    wait_seconds: float = 0.0
    probe: bool = False


PROBE_WAIT_SECONDS = 1.0


class CircuitBreaker:
    def __init__(self, failures: int, cool_down_seconds: float) -> None:
        self.threshold = failures
        self.cool_down = cool_down_seconds
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at = 0.0
        self._probe_out = False

    def admit(self, now: float) -> Admission:
        if self.state is BreakerState.CLOSED:
            return Admission(call=True)
        if self.state is BreakerState.OPEN:
            remaining = self.opened_at + self.cool_down - now
            if remaining > 0:
                return Admission(call=False, wait_seconds=remaining)
            self.state = BreakerState.HALF_OPEN
        if self._probe_out:
            return Admission(call=False, wait_seconds=PROBE_WAIT_SECONDS)
        self._probe_out = True
        return Admission(call=True, probe=True)

    def cancel_probe(self) -> None:
        """The probe was let through but no call was made (held, capped): allow another."""
        self._probe_out = False

    def record(self, *, failed: bool, now: float) -> BreakerState | None:
        """Count an outcome; returns the new state when it changed."""
        before = self.state
        if not failed:
            self.consecutive_failures = 0
            self._probe_out = False
            self.state = BreakerState.CLOSED
        else:
            self.consecutive_failures += 1
            tripped = self.consecutive_failures >= self.threshold
            if self.state is BreakerState.HALF_OPEN or (
                self.state is BreakerState.CLOSED and tripped
            ):
                self.state = BreakerState.OPEN
                self.opened_at = now
                self._probe_out = False
        return self.state if self.state is not before else None
