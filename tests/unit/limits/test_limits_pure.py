"""Endpoint matching, breaker state machine and 429 adaptation: pure tables."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from yarl import URL

from actionrelay.core.errors import CatalogError
from actionrelay.limits.breaker import BreakerState, CircuitBreaker
from actionrelay.limits.endpoint import EndpointConfig, EndpointTable, load_endpoints
from actionrelay.limits.limiter import (
    PACE_BURST_SECONDS,
    PACE_FACTOR,
    RECOVERY_EVERY_SECONDS,
    Adaptation,
    Pacer,
)


@pytest.mark.parametrize(
    ("pattern", "methods", "method", "url", "hit"),
    [
        ("https://sms.test/v1/*", ["POST"], "POST", "https://sms.test/v1/messages", True),
        ("https://sms.test/v1/*", ["POST"], "GET", "https://sms.test/v1/messages", False),
        ("https://sms.test/v1/*", ["POST"], "POST", "https://sms.test/v2/messages", False),
        ("https://sms.test/v1/*", ["POST"], "POST", "http://sms.test/v1/messages", False),
        ("https://sms.test/v1/*", ["POST"], "POST", "https://sms.test:8443/v1/x", False),
        ("https://sms.test:8443/v1", ["POST"], "POST", "https://sms.test:8443/v1/x", True),
        ("https://sms.test/v1", ["POST"], "POST", "https://sms.test/v1", True),
        ("https://sms.test/v1", ["POST"], "POST", "https://sms.test/v10", False),
        ("https://sms.test/", ["GET", "POST"], "GET", "https://sms.test/anything", True),
        ("https://other.test/*", ["POST"], "POST", "https://sms.test/v1", False),
    ],
)
def test_endpoint_matching(
    pattern: str, methods: list[str], method: str, url: str, hit: bool
) -> None:
    config = EndpointConfig(url=pattern, methods=methods)
    assert config.matches(method, URL(url)) is hit


def test_first_matching_entry_wins() -> None:
    narrow = EndpointConfig(url="https://a.test/v1/special/*")
    broad = EndpointConfig(url="https://a.test/*")
    table = EndpointTable([narrow, broad])
    assert table.find("POST", URL("https://a.test/v1/special/x")) is narrow
    assert table.find("POST", URL("https://a.test/v1/other")) is broad
    assert table.find("POST", URL("https://b.test/")) is None


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"url": "https://*.test/"}, "* only in the path"),
        ({"url": "https://a.test/*/x"}, "* may only end the path"),
        ({"url": "ftp://a.test/"}, "http(s)"),
        ({"url": "https://a.test/", "methods": ["FETCH"]}, "unknown methods"),
        ({"url": "https://a.test/", "capping": {"max_calls": 0, "period_ms": 1000}}, "capping"),
        ({"url": "https://a.test/", "throttling": {"max_per_second": 0}}, "throttling"),
        ({"url": "https://a.test/", "throttling": {"max_per_second": 0.5}}, "throttling"),
        ({"url": "https://a.test/", "max_connections": 401}, "max_connections"),
        ({"url": "https://a.test/", "throttle": {}}, "throttle"),
    ],
)
def test_bad_endpoint_entries_name_file_entry_and_field(
    tmp_path: Path, entry: dict[str, object], problem: str
) -> None:
    (tmp_path / "endpoints.yaml").write_text(yaml.safe_dump([entry]))
    with pytest.raises(CatalogError) as caught:
        load_endpoints(tmp_path)
    message = str(caught.value)
    assert "endpoints.yaml: [0]." in message
    assert problem in message


def test_endpoints_load_from_file_and_directory(tmp_path: Path) -> None:
    (tmp_path / "endpoints.yaml").write_text("- url: https://a.test/\n")
    (tmp_path / "endpoints").mkdir()
    (tmp_path / "endpoints" / "b.yaml").write_text("- url: https://b.test/\n")
    assert [e.url for e in load_endpoints(tmp_path).entries] == [
        "https://a.test/",
        "https://b.test/",
    ]
    assert load_endpoints(tmp_path / "endpoints").entries == []


def test_breaker_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(failures=3, cool_down_seconds=10)
    for outcome in (True, True, False, True, True):
        assert breaker.record(failed=outcome, now=0) is None
    assert breaker.record(failed=True, now=1) is BreakerState.OPEN
    assert breaker.admit(5).call is False
    assert breaker.admit(5).wait_seconds == pytest.approx(6)


def test_breaker_half_open_lets_one_probe_through() -> None:
    breaker = CircuitBreaker(failures=1, cool_down_seconds=10)
    breaker.record(failed=True, now=0)
    probe = breaker.admit(10)
    assert (probe.call, probe.probe) == (True, True)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.admit(10.5).call is False  # the others wait for the probe
    assert breaker.record(failed=False, now=11) is BreakerState.CLOSED
    assert breaker.admit(11).call is True


def test_breaker_failed_probe_opens_again() -> None:
    breaker = CircuitBreaker(failures=5, cool_down_seconds=10)
    for _ in range(5):
        breaker.record(failed=True, now=0)
    assert breaker.admit(10).probe
    assert breaker.record(failed=True, now=10) is BreakerState.OPEN
    assert breaker.admit(15).wait_seconds == pytest.approx(5)


def test_late_failures_do_not_extend_an_open_breaker() -> None:
    breaker = CircuitBreaker(failures=1, cool_down_seconds=10)
    breaker.record(failed=True, now=0)
    breaker.record(failed=True, now=8)
    assert breaker.admit(10).call


def test_adaptation_halves_on_429_and_recovers_in_steps() -> None:
    adaptation = Adaptation(changed_at=0)
    assert adaptation.on_429(0)
    assert adaptation.factor == 0.5
    assert adaptation.on_429(1)
    assert adaptation.factor == 0.25
    assert not adaptation.recover(1 + RECOVERY_EVERY_SECONDS / 2)
    assert adaptation.recover(1 + RECOVERY_EVERY_SECONDS)
    assert adaptation.factor == pytest.approx(0.3125)
    assert adaptation.recover(1 + RECOVERY_EVERY_SECONDS * 20)
    assert adaptation.factor == 1.0
    for _ in range(20):
        adaptation.on_429(200)
    assert adaptation.factor == 0.05  # never stops an endpoint entirely


def test_a_burst_of_slots_is_spaced_at_twice_the_rate() -> None:
    pacer, now, taken = Pacer(), 100.0, []
    for _ in range(20):  # 20 events ready at once, 20 calls/s
        now += pacer.delay(now)
        pacer.taken(now, rate=20)
        taken.append(now)
    # The first two are 10 ms closer: the burst allowance.
    gaps = {round(b - a, 4) for a, b in itertools.pairwise(taken[1:])}
    assert gaps == {round(1 / (20 * PACE_FACTOR), 4)}
    assert taken[-1] - taken[0] == pytest.approx(19 / 40 - PACE_BURST_SECONDS)


def test_a_fast_endpoint_takes_10_ms_of_slots_at_once() -> None:
    pacer, now = Pacer(), 100.0
    at_once = 0
    while pacer.delay(now) == 0:
        pacer.taken(now, rate=5000)
        at_once += 1
    assert at_once == pytest.approx(5000 * PACE_FACTOR * PACE_BURST_SECONDS, abs=1)


def test_a_slot_taken_after_a_pause_is_due_at_once() -> None:
    pacer = Pacer()
    pacer.taken(100.0, rate=1)
    assert pacer.delay(100.2) == pytest.approx(0.29)
    assert pacer.delay(200.0) == 0
    pacer.taken(200.0, rate=1)  # spaced from the slot taken now, not from the old one
    assert pacer.delay(200.0) == pytest.approx(0.49)
