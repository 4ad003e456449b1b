"""The status arithmetic: p95 from histogram buckets, differences over the window,
and the workers' /metrics as Prometheus text."""

from __future__ import annotations

import math

import pytest

from actionrelay.console.security import is_loopback
from actionrelay.console.status import Snapshots, Totals, parse_metrics, quantile, statuses
from actionrelay.observability.metrics import Metrics

INF = math.inf


@pytest.mark.parametrize(
    ("buckets", "p95"),
    [
        ({}, None),
        ({0.1: 0.0, INF: 0.0}, None),
        ({0.1: 100.0, 1.0: 100.0, INF: 100.0}, 0.095),  # all under 100 ms
        ({0.1: 0.0, 1.0: 100.0, INF: 100.0}, 0.1 + 0.9 * 0.95),
        ({0.1: 90.0, 1.0: 90.0, INF: 100.0}, 1.0),  # the tail is past the last bound
    ],
)
def test_p95_like_histogram_quantile(buckets: dict[float, float], p95: float | None) -> None:
    found = quantile(0.95, buckets)
    assert found == p95 if p95 is None else found == pytest.approx(p95)


def test_figures_are_the_change_over_the_window() -> None:
    snapshots = Snapshots(window_seconds=60)
    first = Totals(calls={"a": 10}, errors={"a": 5})
    assert snapshots.add(0.0, first) == (first, None)
    change, seconds = snapshots.add(30.0, Totals(calls={"a": 30}, errors={"a": 5}))
    assert (change.calls, change.errors, seconds) == ({"a": 20}, {"a": 0}, 30.0)
    change, seconds = snapshots.add(100.0, Totals(calls={"a": 40}, errors={"a": 6}))
    assert (change.calls, seconds) == ({"a": 10}, 70.0)  # from the one at 30 s
    restarted, _ = snapshots.add(101.0, Totals(calls={"a": 1}))
    assert restarted.calls == {"a": 0.0}  # a restarted worker never makes it negative


def test_workers_metrics_add_up() -> None:
    metrics = Metrics()
    metrics.calls.labels("sendSms", "sms.example.com", "http_200").inc(8)
    metrics.calls.labels("sendSms", "sms.example.com", "http_503").inc(2)
    for _ in range(10):
        metrics.latency.labels("sendSms", "sms.example.com").observe(0.2)
    metrics.breaker_state.labels("sms.example.com").set(2)
    totals = Totals()
    text = metrics.render().decode()
    parse_metrics(text, totals)
    parse_metrics(text, totals)  # a second worker
    [(name, status)] = statuses(totals).items()
    assert (name, status.calls, status.error_rate) == ("sendSms", 20, 0.2)
    assert status.p95_seconds is not None
    assert 0.1 < status.p95_seconds <= 0.25
    assert totals.breakers == {"sms.example.com": 2}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("10.0.0.5", False), ("console.example.com", False)],
)  # fmt: skip
def test_only_loopback_is_open(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
