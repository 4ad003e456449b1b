"""Calls, error rate and p95 latency per action, and breaker state per endpoint, over
the last minutes: from Prometheus when it is set, else from the workers' ``/metrics``.

Workers' counters only grow, so the console keeps the snapshots it has read and
takes the difference with the oldest one inside the window. The arithmetic
(``Totals``, ``quantile``, ``window``) is pure and table-tested.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

K = TypeVar("K", str, float)
BREAKER_NAMES = {0: "closed", 1: "half_open", 2: "open"}
FETCH_SECONDS = 5.0


@dataclass
class Totals:
    """Counter values summed over every worker read."""

    calls: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)
    breakers: dict[str, int] = field(default_factory=dict)

    def minus(self, earlier: Totals) -> Totals:
        return Totals(
            calls=_minus(self.calls, earlier.calls),
            errors=_minus(self.errors, earlier.errors),
            buckets={
                action: _minus(les, earlier.buckets.get(action, {}))
                for action, les in self.buckets.items()
            },
            breakers=dict(self.breakers),
        )


def _minus(now: dict[K, float], then: dict[K, float]) -> dict[K, float]:
    # A worker that restarted counts from zero again: never a negative figure.
    return {key: max(0.0, value - then.get(key, 0.0)) for key, value in now.items()}


@dataclass(frozen=True)
class ActionStatus:
    calls: int
    error_rate: float | None
    p95_seconds: float | None


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative ``{le: count}`` buckets."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return lower_le
            span = count - lower_count
            return lower_le + (le - lower_le) * ((rank - lower_count) / span if span else 1.0)
        lower_le, lower_count = le, count
    return lower_le


def statuses(totals: Totals) -> dict[str, ActionStatus]:
    found = {}
    for action, calls in totals.calls.items():
        errors = totals.errors.get(action, 0.0)
        found[action] = ActionStatus(
            calls=round(calls),
            error_rate=errors / calls if calls else None,
            p95_seconds=quantile(0.95, totals.buckets.get(action, {})),
        )
    return found


def parse_metrics(text: str, into: Totals) -> None:
    """Add one worker's ``/metrics`` to ``into``."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "actionrelay_calls_total":
                action = labels["action"]
                into.calls[action] = into.calls.get(action, 0.0) + sample.value
                if not labels["status_code"].startswith("http_2"):
                    into.errors[action] = into.errors.get(action, 0.0) + sample.value
            elif sample.name == "actionrelay_call_duration_seconds_bucket":
                les = into.buckets.setdefault(labels["action"], {})
                le = float(labels["le"])
                les[le] = les.get(le, 0.0) + sample.value
            elif sample.name == "actionrelay_endpoint_breaker_state":
                endpoint = labels["endpoint"]
                into.breakers[endpoint] = max(into.breakers.get(endpoint, 0), int(sample.value))


class Snapshots:
    """The totals read so far, to take differences over ``window_seconds``."""

    def __init__(self, window_seconds: float) -> None:
        self.window = window_seconds
        self._kept: deque[tuple[float, Totals]] = deque()

    def add(self, now: float, totals: Totals) -> tuple[Totals, float | None]:
        """The change over the window, and how many seconds it covers (None: since the
        workers started, when nothing older was read)."""
        while len(self._kept) > 1 and self._kept[1][0] <= now - self.window:
            self._kept.popleft()
        base = self._kept[0] if self._kept else None
        self._kept.append((now, totals))
        if base is None or base[0] == now:
            return totals, None
        return totals.minus(base[1]), now - base[0]


@dataclass
class Status:
    actions: dict[str, ActionStatus]
    breakers: dict[str, str]
    covers: str
    problems: list[str]


class MetricsReader:
    """Reads the workers' ``/metrics`` and keeps the snapshots."""

    def __init__(self, urls: list[str], window_seconds: float) -> None:
        self.urls = urls
        self._snapshots = Snapshots(window_seconds)

    async def status(self) -> Status:
        totals, problems = Totals(), []
        timeout = aiohttp.ClientTimeout(total=FETCH_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for url in self.urls:
                try:
                    async with session.get(url) as response:
                        response.raise_for_status()
                        parse_metrics(await response.text(), totals)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    problems.append(f"{url}: {type(exc).__name__}: {exc}")
        change, seconds = self._snapshots.add(time.monotonic(), totals)
        covers = "since the workers started" if seconds is None else f"last {seconds:.0f} s"
        breakers = {e: BREAKER_NAMES.get(v, str(v)) for e, v in change.breakers.items()}
        return Status(statuses(change), breakers, covers, problems)


PROMETHEUS_QUERIES = {
    "calls": "sum by (action) (increase(actionrelay_calls_total[{w}s]))",
    "errors": "sum by (action) "
    '(increase(actionrelay_calls_total{{status_code!~"http_2.."}}[{w}s]))',
    "p95": "histogram_quantile(0.95, sum by (action, le) "
    "(rate(actionrelay_call_duration_seconds_bucket[{w}s])))",
    "breakers": "max by (endpoint) (actionrelay_endpoint_breaker_state)",
}


class PrometheusReader:
    """The same figures from Prometheus (``ACTIONRELAY_PROMETHEUS_URL``)."""

    def __init__(self, url: str, window_seconds: float) -> None:
        self.url = url.rstrip("/")
        self.window = window_seconds

    async def status(self) -> Status:
        results: dict[str, dict[str, float]] = {}
        problems: list[str] = []
        timeout = aiohttp.ClientTimeout(total=FETCH_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for name, query in PROMETHEUS_QUERIES.items():
                try:
                    results[name] = await self._vector(session, query.format(w=int(self.window)))
                except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
                    problems.append(f"{self.url}: {name}: {type(exc).__name__}: {exc}")
                    results[name] = {}
        actions = {
            action: ActionStatus(
                calls=round(calls),
                error_rate=results["errors"].get(action, 0.0) / calls if calls else None,
                p95_seconds=_finite(results["p95"].get(action)),
            )
            for action, calls in results["calls"].items()
        }
        breakers = {e: BREAKER_NAMES.get(int(v), str(v)) for e, v in results["breakers"].items()}
        return Status(actions, breakers, f"last {self.window:.0f} s (Prometheus)", problems)

    async def _vector(self, session: aiohttp.ClientSession, query: str) -> dict[str, float]:
        url = f"{self.url}/api/v1/query"
        async with session.get(url, params={"query": query}) as response:
            response.raise_for_status()
            data = await response.json()
        return {
            next(iter(item["metric"].values()), ""): float(item["value"][1])
            for item in data["data"]["result"]
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
