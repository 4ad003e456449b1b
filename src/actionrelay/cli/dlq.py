"""``actionrelay dlq``: inspect, replay and purge the dead-letter queue."""

from __future__ import annotations

from typing import Any

import click
import orjson

from actionrelay.broker.dlq import Progress, ScanReport
from actionrelay.cli.common import (
    build_filter,
    fail,
    filter_options,
    queue_options,
    stderr,
    stdout,
)
from actionrelay.cli.dlq_replay import purge, replay
from actionrelay.cli.dlq_scan import exit_if_partial, open_queue, run_scan
from actionrelay.cli.terminal import (
    dead_letter_panel,
    dead_letter_table,
    stats_tables,
)
from actionrelay.core.deadletter import DeadLetter
from actionrelay.core.triage import DeadLetterFilter, DeadLetterStats


@click.group(short_help="Inspect, replay and purge the dead-letter queue.")
def dlq() -> None:
    """Inspect, replay and purge dead letters (the ACTIONRELAY_DEAD_LETTER_QUEUE queue).

    Every command reads the queue from head to tail, at most the messages that
    were there when it started, and holds them unacknowledged while it looks.
    What it does not delete or replay goes back to RabbitMQ in its original
    order when it ends, or if it is killed: inspecting never loses a dead
    letter. Only 'replay' and 'purge --yes' remove messages.

    \b
    Filters (AND between options; a repeated option means any of its values):
      --action NAME  --error-type TYPE  --http-status CODE  --event-id ID  --since WHEN

    \b
    Typical session:
      actionrelay dlq stats
      actionrelay dlq list --error-type http_error --since 1h
      actionrelay dlq show e-9f2
      actionrelay dlq replay --action sendSms --since 1h --dry-run
      actionrelay dlq replay --action sendSms --since 1h
    """


@dlq.command(short_help="Count dead letters by action, error type and HTTP status.")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
@queue_options
def stats(as_json: bool, amqp_url: str | None, queue: str | None, **filters: Any) -> None:
    """Count dead letters by action, by error type, by HTTP status and by all three.

    Reads every dead letter (filters narrow what is counted) and changes nothing.
    The count is exact whatever the size of the queue; when some dead letters
    could not be read (another command holds them), the output says "partial"
    (JSON: "complete": false) and the exit code is 1.
    """
    criteria = build_filter(**filters)
    counts = DeadLetterStats()
    target = open_queue(amqp_url, queue, "dlq stats")

    async def scan(progress: Progress) -> ScanReport:
        async with target:
            return await target.inspect(criteria, counts.add, progress=progress)

    report = run_scan(stderr(), "counting", scan)
    if as_json:
        read = {"complete": report.complete, "read": report.scanned, "depth": report.depth}
        click.echo(orjson.dumps({"queue": report.queue, **read, **counts.as_json()}).decode())
        exit_if_partial(report)
        return
    console = stdout()
    scope = "" if report.complete else f"; partial: read {report.scanned} of {report.depth}"
    console.print(f"{counts.total} dead letters in {report.queue} ({criteria.describe()}{scope})")
    for table in stats_tables(counts) if counts.total else []:
        console.print(table)
    exit_if_partial(report)


@dlq.command("list", short_help="List dead letters, oldest first.")
@filter_options
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    metavar="N",
    default=50,
    show_default=True,
    help="Show at most N dead letters, from the head of the queue (0 = all).",
)
@click.option(
    "--skip",
    type=click.IntRange(min=0),
    metavar="N",
    default=0,
    show_default=True,
    help="Page on: leave out the first N matching dead letters.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per line instead of a table."
)
@queue_options
def list_dead_letters(
    limit: int,
    skip: int,
    as_json: bool,
    amqp_url: str | None,
    queue: str | None,
    **filters: Any,
) -> None:
    """List dead letters, oldest first: event id, action, why it failed, when, replays.

    '#' is the position in the queue (0 = next to be read). Page through a large
    queue with --skip and --limit (--skip 50 --limit 50 is the second page).
    Changes nothing; exit code 1 when some dead letters could not be read.
    """
    criteria = build_filter(**filters)
    found: list[DeadLetter] = []
    target = open_queue(amqp_url, queue, "dlq list")

    async def scan(progress: Progress) -> ScanReport:
        async with target:
            return await target.inspect(
                criteria, found.append, limit=limit or None, skip=skip, progress=progress
            )

    report = run_scan(stderr(), "reading", scan)
    if as_json:
        for letter in found:
            click.echo(orjson.dumps(letter.summary()).decode())
        exit_if_partial(report)
        return
    title = f"{len(found)} dead letters in {report.queue} ({criteria.describe()})"
    if skip:
        title += f"; after the first {skip}"
    if limit and len(found) == limit:
        title += f"; {limit} shown, use --skip {skip + limit} for the next page, --limit 0 for all"
    stdout().print(dead_letter_table(found, title))
    exit_if_partial(report)


@dlq.command(short_help="Show one event's dead letter in full.")
@click.argument("event_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per copy).")
@queue_options
def show(event_id: str, as_json: bool, amqp_url: str | None, queue: str | None) -> None:
    """Show everything about the dead letter(s) of EVENT_ID: failure, headers, event.

    EVENT_ID is the step event's event_id (or its AMQP message_id when the body
    is not JSON). Every copy is shown if the event failed more than once.
    Changes nothing; exit code 1 when there is none.
    """
    criteria = DeadLetterFilter(event_ids=frozenset({event_id}))
    found: list[DeadLetter] = []
    target = open_queue(amqp_url, queue, "dlq show")

    async def scan(progress: Progress) -> ScanReport:
        async with target:
            return await target.inspect(criteria, found.append, progress=progress)

    report = run_scan(stderr(), "searching", scan)
    if not found and report.stalled:
        exit_if_partial(report)
    if not found:
        fail(f"no dead letter with event id {event_id!r} in {report.queue}")
    for letter in found:
        if as_json:
            click.echo(orjson.dumps(letter.detail()).decode())
        else:
            stdout().print(dead_letter_panel(letter))


dlq.add_command(replay)
dlq.add_command(purge)
