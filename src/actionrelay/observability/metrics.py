"""Prometheus metrics, served on ``/metrics`` beside the health probes.

One ``Metrics`` object per worker holds its own registry (no global state), so
tests and several workers in one process never share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
WAIT_BUCKETS = (0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600, 21600)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.calls = Counter(
            "actionrelay_calls",
            "HTTP calls made, by action, endpoint host and status_code (http_<code>, "
            "timedout, invalid for a refused redirect or address, internalError).",
            ["action", "endpoint", "status_code"],
            registry=r,
        )
        self.latency = Histogram(
            "actionrelay_call_duration_seconds",
            "Duration of HTTP calls, token fetch and redirects included.",
            ["action", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.results = Counter(
            "actionrelay_results",
            "Final result events published, by action and status.",
            ["action", "status", "status_code"],
            registry=r,
        )
        self.in_flight = Gauge(
            "actionrelay_in_flight", "Step events being handled right now.", registry=r
        )
        self.retries = Counter(
            "actionrelay_retries_scheduled",
            "Events parked in a delay queue, by action and reason (retry, park = breaker open).",
            ["action", "reason"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "actionrelay_dead_lettered",
            "Events copied to the dead-letter queue, by action and error type.",
            ["action", "error_type"],
            registry=r,
        )
        self.unpublishable = Counter(
            "actionrelay_results_unpublishable",
            "Events whose result RabbitMQ would not take (refused or not encodable): "
            "dead-lettered once, the API not called again.",
            ["action"],
            registry=r,
        )
        self.capped = Counter(
            "actionrelay_capped",
            "Calls not made because of an endpoint's cap or max wait.",
            ["action", "endpoint"],
            registry=r,
        )
        self.throttled = Counter(
            "actionrelay_throttled",
            "Events queued behind an endpoint's throttle.",
            ["endpoint"],
            registry=r,
        )
        self.queue_time = Histogram(
            "actionrelay_throttle_wait_seconds",
            "Time a throttled event waited for its slot.",
            ["endpoint"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.effective_rate = Gauge(
            "actionrelay_endpoint_effective_rate",
            "Calls per second a throttled endpoint currently gets (lowered after 429).",
            ["endpoint"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "actionrelay_endpoint_breaker_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open.",
            ["endpoint"],
            registry=r,
        )
        self.token_fetches = Counter(
            "actionrelay_token_fetches",
            "Token endpoint requests, by outcome (ok, error).",
            ["outcome"],
            registry=r,
        )
        self.consuming = Gauge(
            "actionrelay_consumer_up",
            "1 while connected to RabbitMQ and consuming, else 0.",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
