"""The console's action pages: the list with its status, one action, a test request."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from aiohttp import web

from actionrelay.broker.broker import BrokerUnavailable
from actionrelay.broker.dlq import DeadLetterQueue
from actionrelay.broker.topology import Topology
from actionrelay.catalog.api import action_document
from actionrelay.catalog.schema import example_params
from actionrelay.console.app import Console, console_of
from actionrelay.core.errors import ActionRelayError, PayloadError
from actionrelay.core.secret import MASK, Redactor
from actionrelay.core.triage import DeadLetterFilter, DeadLetterStats
from actionrelay.http.probe import ProbeOutcome, probe
from actionrelay.limits.endpoint import EndpointConfig
from actionrelay.observability.logs import SECRET_KEYS

BODY_BYTES = 64 * 1024


async def index(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    status = await console.status()
    stats, backlog, broker_problem = await broker_figures(console)
    actions = [
        action_document(console.catalog[name], console.endpoints, console.redactor)
        for name in sorted(console.catalog)
    ]
    return console.render(
        request,
        "index.html",
        actions=actions,
        status=status,
        stats=stats,
        backlog=backlog,
        broker_problem=broker_problem,
    )


async def broker_figures(
    console: Console,
) -> tuple[DeadLetterStats, list[dict[str, Any]], str | None]:
    """Dead letters by action and error type, and each throttled endpoint's backlog."""
    stats = DeadLetterStats()
    topology = Topology(console.settings)
    throttled = {
        topology.holding_queue_name(e): e for e in console.endpoints.entries if e.throttling
    }
    queue = DeadLetterQueue(
        console.settings.amqp_url, console.settings.dead_letter_queue, purpose="console status"
    )
    try:
        async with queue:
            report = await queue.inspect(DeadLetterFilter(), stats.add)
            depths = await queue.depths(list(throttled))
    except (BrokerUnavailable, ActionRelayError) as exc:
        return stats, [], str(exc)
    problem = None if report.complete else f"partial: read {report.scanned} of {report.depth}"
    backlog = [backlog_row(endpoint, depths.get(name)) for name, endpoint in throttled.items()]
    return stats, backlog, problem


def backlog_row(endpoint: EndpointConfig, waiting: int | None) -> dict[str, Any]:
    assert endpoint.throttling is not None
    return {"url": endpoint.url, "rate": endpoint.throttling.max_per_second, "waiting": waiting}


def action_or_404(console: Console, name: str) -> web.Response | None:
    if name in console.catalog:
        return None
    return web.Response(status=404, text=f"no action {name!r}")


async def action_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    name = request.match_info["name"]
    if (missing := action_or_404(console, name)) is not None:
        return missing
    return render_action(request, console, name, params_text=None, outcome=None, problem=None)


def render_action(
    request: web.Request,
    console: Console,
    name: str,
    *,
    params_text: str | None,
    outcome: ProbeOutcome | None,
    problem: str | None,
) -> web.Response:
    action = console.catalog[name]
    example = {"event_id": "example-1", "action": name, "params": example_params(action)}
    return console.render(
        request,
        "action.html",
        action=action_document(action, console.endpoints, console.redactor),
        example=example,
        params_text=params_text
        or orjson.dumps(example["params"], option=orjson.OPT_INDENT_2).decode(),
        outcome=outcome,
        answer=shown_answer(outcome, console.redactor),
        problem=problem,
    )


def shown_answer(outcome: ProbeOutcome | None, redactor: Redactor) -> dict[str, Any] | None:
    """The API's answer as the page shows it: credential headers and secrets masked."""
    response = outcome.response if outcome else None
    if response is None:
        return None
    headers = {
        name: MASK if name.lower() in SECRET_KEYS else redactor.mask(value)
        for name, value in response.headers.items()
    }
    body = redactor.mask(response.body[:BODY_BYTES].decode("utf-8", errors="replace"))
    return {"status": response.status, "ms": response.latency_ms, "headers": headers, "body": body}


async def test_request(request: web.Request) -> web.StreamResponse:
    """What ``actionrelay actions test`` does: one real call, credentials masked."""
    console = console_of(request)
    name = request.match_info["name"]
    if (missing := action_or_404(console, name)) is not None:
        return missing
    params_text = str((await request.post()).get("params", "{}"))
    try:
        params = orjson.loads(params_text)
        if not isinstance(params, dict):
            raise TypeError("the params must be a JSON object")
        outcome = await probe(
            console.catalog[name],
            params,
            event_id=f"console-test-{uuid.uuid4()}",
            settings=console.settings,
            redactor=console.redactor,
        )
    except (orjson.JSONDecodeError, TypeError, PayloadError) as exc:
        problem = console.redactor.mask(str(exc))
        return render_action(
            request, console, name, params_text=params_text, outcome=None, problem=problem
        )
    return render_action(
        request, console, name, params_text=params_text, outcome=outcome, problem=None
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/", index),
        web.get("/actions/{name}", action_page),
        web.post("/actions/{name}/test", test_request),
    ]
