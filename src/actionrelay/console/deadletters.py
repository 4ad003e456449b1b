"""The console's dead-letter pages: filter and page, one letter, replay and purge.

Everything goes through ``broker/dlq.py``, the code of ``actionrelay dlq``, with
the same guarantees (docs/operations.md): nothing only looked at is acked, a
replayed letter is acked only once its copy is confirmed, and what a command does
not remove goes back in order. A replay or purge is always shown as a dry run
first; the page of the dry run holds the form that does it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from actionrelay.broker.broker import BrokerUnavailable
from actionrelay.broker.dlq import DeadLetterQueue, ScanReport
from actionrelay.console.app import Console, console_of
from actionrelay.core.deadletter import DeadLetter
from actionrelay.core.errors import ActionRelayError
from actionrelay.core.triage import DeadLetterFilter, parse_since

PAGE = 50
FILTER_FIELDS = ("action", "error_type", "http_status", "since")


def criteria_of(form: Any) -> tuple[DeadLetterFilter, dict[str, str]]:
    """The filter of a query string or form; ValueError names the bad field."""
    given = {name: str(form.get(name, "")).strip() for name in FILTER_FIELDS}
    status = given["http_status"]
    if status and not status.isdigit():
        raise ValueError("HTTP status must be a number such as 503")
    since = parse_since(given["since"], datetime.now(UTC)) if given["since"] else None
    criteria = DeadLetterFilter(
        actions=frozenset({given["action"]} - {""}),
        error_types=frozenset({given["error_type"]} - {""}),
        http_statuses=frozenset({int(status)} if status else set()),
        since=since,
    )
    return criteria, given


def queue(console: Console, purpose: str) -> DeadLetterQueue:
    s = console.settings
    return DeadLetterQueue(s.amqp_url, s.dead_letter_queue, purpose=f"console {purpose}")


async def page_of(
    console: Console, criteria: DeadLetterFilter, skip: int
) -> tuple[list[DeadLetter], ScanReport]:
    """One page of matches, and the exact count of all of them (one whole scan)."""
    found: list[DeadLetter] = []
    seen = 0

    def keep(letter: DeadLetter) -> None:
        nonlocal seen
        if skip <= seen < skip + PAGE:
            found.append(letter)
        seen += 1

    async with queue(console, "dead letters") as source:
        report = await source.inspect(criteria, keep)
    return found, report


async def dead_letters(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    skip = (
        int(request.query.get("skip", "0") or 0) if request.query.get("skip", "0").isdigit() else 0
    )
    try:
        criteria, given = criteria_of(request.query)
        letters, report = await page_of(console, criteria, skip)
    except (ValueError, BrokerUnavailable, ActionRelayError) as exc:
        return problem_page(request, console, str(exc))
    return console.render(
        request,
        "dead_letters.html",
        letters=[console.redactor.mask_value(letter.summary()) for letter in letters],
        report=report,
        given=given,
        skip=skip,
        page=PAGE,
        criteria=criteria.describe(),
    )


async def dead_letter(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    event_id = request.match_info["event_id"]
    found: list[DeadLetter] = []
    try:
        async with queue(console, "dead letter") as source:
            report = await source.inspect(
                DeadLetterFilter(event_ids=frozenset({event_id})), found.append
            )
    except (BrokerUnavailable, ActionRelayError) as exc:
        return problem_page(request, console, str(exc))
    details = [console.redactor.mask_value(letter.detail()) for letter in found]
    response = console.render(
        request, "dead_letter.html", event_id=event_id, details=details, report=report
    )
    if not details:
        response.set_status(404)
    return response


async def change(request: web.Request) -> web.StreamResponse:
    """POST /dead-letters/{replay|purge}: a dry run, or (confirm=yes) the real thing."""
    console = console_of(request)
    what = request.match_info["what"]
    form = await request.post()
    try:
        criteria, given = criteria_of(form)
        if form.get("confirm") != "yes":
            letters, report = await page_of(console, criteria, 0)
            return console.render(
                request,
                "change.html",
                what=what,
                dry_run=True,
                letters=[console.redactor.mask_value(x.summary()) for x in letters],
                report=report,
                given=given,
                criteria=criteria.describe(),
                target=console.settings.request_queue,
            )
        report = await carry_out(console, what, criteria)
    except (ValueError, BrokerUnavailable, ActionRelayError) as exc:
        return problem_page(request, console, str(exc))
    return console.render(
        request,
        "change.html",
        what=what,
        dry_run=False,
        letters=[],
        report=report,
        given=given,
        criteria=criteria.describe(),
        target=console.settings.request_queue,
    )


async def carry_out(console: Console, what: str, criteria: DeadLetterFilter) -> ScanReport:
    async with queue(console, what) as source:
        if what == "replay":
            return await source.replay(criteria, console.settings.request_queue)
        return await source.purge(criteria)


def problem_page(request: web.Request, console: Console, problem: str) -> web.Response:
    response = console.render(request, "problem.html", problem=console.redactor.mask(problem))
    response.set_status(400)
    return response


def routes() -> list[web.RouteDef]:
    return [
        web.get("/dead-letters", dead_letters),
        web.get("/dead-letters/{event_id}", dead_letter),
        web.post("/dead-letters/{what:replay|purge}", change),
    ]
