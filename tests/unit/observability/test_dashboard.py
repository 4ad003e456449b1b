"""deploy/grafana/actionrelay.json queries only what the worker exports.

Metric and label names come from a real ``Metrics`` registry, so renaming a
metric or a label in metrics.py without updating the dashboard fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from actionrelay.observability.metrics import Metrics
from tests.unit.deploy.support import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "actionrelay.json"
# Series suffixes prometheus-client adds, by metric type.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}
TARGET_LABELS = {"instance", "job"}  # added by Prometheus at scrape time
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
SELECTOR = re.compile(r"(?<![\w:])([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}")
IDENTIFIER = re.compile(r"(?<![\w$.:])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(?!\s*\()")
MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
VARIABLE = re.compile(r"\$\{?(\w+)")


@dataclass
class Query:
    """What one PromQL expression reads: series with their matched labels, groupings."""

    selectors: list[tuple[str, set[str]]] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)


def parse(expr: str) -> Query:
    """Enough of PromQL for our expressions: selectors, label matchers, by/without."""
    query = Query()
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings may hold {, }, $ or regexes
    text = re.sub(r"\[[^\]]*\]", "", text)  # range windows and subqueries
    for match in GROUPING.finditer(text):
        query.grouping |= {label.strip() for label in match[2].split(",") if label.strip()}
    text = GROUPING.sub(" ", text)
    for match in SELECTOR.finditer(text):
        assert match[1], f"selector without a metric name in {expr}"
        query.selectors.append((match[1], set(MATCHER.findall(match[2]))))
    text = SELECTOR.sub(" ", text)
    for name in IDENTIFIER.findall(text):
        if name not in KEYWORDS:
            query.selectors.append((name, set()))
    return query


@cache
def exported() -> dict[str, set[str]]:
    """Series names a worker exports, each with its label names."""
    metrics = Metrics()
    labels = {
        next(iter(wrapper.describe())).name: set(wrapper._labelnames)  # no public accessor
        for wrapper in vars(metrics).values()
        if isinstance(wrapper, MetricWrapperBase)
    }
    series: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        for suffix in SUFFIXES[family.type]:
            extra = {"le"} if suffix == "_bucket" else set()
            series[family.name + suffix] = labels[family.name] | extra
    return series


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", ())


def expressions() -> list[str]:
    return [t["expr"] for p in panels() for t in p.get("targets", ())]


def variable_queries() -> list[str]:
    found = []
    for variable in dashboard()["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else ""
        inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", text)
        if inner:
            found.append(inner[1])
    return found


def test_parse_reads_selectors_matchers_and_groupings() -> None:
    query = parse(
        'histogram_quantile(0.95, sum by (le, endpoint) (rate(m_bucket{a=~"$x", b!="{1}"}'
        "[$__rate_interval]))) / on (endpoint) group_left count(other)"
    )
    assert query.selectors == [("m_bucket", {"a", "b"}), ("other", set())]
    assert query.grouping == {"le", "endpoint"}


def test_exported_series_follow_prometheus_client_naming() -> None:
    series = exported()
    assert series["actionrelay_calls_total"] == {"action", "endpoint", "status_code"}
    assert series["actionrelay_call_duration_seconds_bucket"] == {"action", "endpoint", "le"}
    assert series["actionrelay_in_flight"] == set()


@pytest.mark.parametrize("expr", expressions() + variable_queries())
def test_queries_use_only_exported_metrics_and_their_labels(expr: str) -> None:
    query = parse(expr)
    assert query.selectors, f"no metric in {expr}"
    known = exported()
    usable = set(TARGET_LABELS)
    for name, matched in query.selectors:
        assert name in known, f"{name} is not a metric of observability.metrics ({expr})"
        assert matched <= known[name] | TARGET_LABELS, f"{name} has no label {matched}"
        usable |= known[name]
    assert query.grouping <= usable, f"grouping by labels no metric has: {expr}"


def test_dashboard_shows_the_monitoring_view() -> None:
    used = {name for expr in expressions() for name, _ in parse(expr).selectors}
    wanted = {
        "actionrelay_calls_total",  # successful, 4xx, 5xx, timeouts, calls per second
        "actionrelay_call_duration_seconds_sum",  # average latency
        "actionrelay_call_duration_seconds_bucket",  # p95
        "actionrelay_capped_total",
        "actionrelay_throttle_wait_seconds_sum",  # average queue time, throttled endpoints
        "actionrelay_dead_lettered_total",
        "actionrelay_retries_scheduled_total",
        "actionrelay_in_flight",
        "actionrelay_consumer_up",
        "actionrelay_endpoint_effective_rate",
        "actionrelay_endpoint_breaker_state",
    }
    assert wanted <= used, f"no panel for {sorted(wanted - used)}"
    exprs = "\n".join(expressions())
    for status in ('"http_2.."', '"http_4.."', '"http_5.."', '"timedout"'):
        assert status in exprs


def test_endpoint_then_action_drill_down() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    endpoint, action = variables["endpoint"], variables["action"]
    assert endpoint["includeAll"]
    assert action["includeAll"]
    assert "$endpoint" in action["query"]["query"], "actions listed within the endpoint"
    for expr in expressions():
        query = parse(expr)
        for name, matched in query.selectors:
            labels = exported()[name]
            for label in ("endpoint", "action"):
                if label in labels:
                    assert label in matched, f"{name} not filtered by ${label}: {expr}"


def test_variables_and_datasources_resolve() -> None:
    defined = {v["name"] for v in dashboard()["templating"]["list"]}
    for panel in panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            used = set(VARIABLE.findall(target["expr"])) - {"__range", "__rate_interval"}
            assert used - {"__interval"} <= defined, f"{panel['title']}: {used - defined}"


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids))
    taken: dict[tuple[int, int], str] = {}
    for panel in panels():
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        for x in range(box["x"], box["x"] + box["w"]):
            for y in range(box["y"], box["y"] + box["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]
