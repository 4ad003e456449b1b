"""``actionrelay dlq``: inspect, replay and purge the dead-letter queue."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
import orjson
from rich.console import Console

from actionrelay.cli_ops import (
    EXIT_CONFIG,
    build_filter,
    fail,
    filter_options,
    queue_options,
    run_async,
    settings_from,
    stderr,
    stdout,
)
from actionrelay.deadletter import DeadLetter
from actionrelay.dlq import DeadLetterQueue, Progress, PurgeReport, ReplayReport, ScanReport
from actionrelay.terminal import (
    dead_letter_panel,
    dead_letter_table,
    progress_bar,
    stats_tables,
)
from actionrelay.triage import DeadLetterFilter, DeadLetterStats

R = TypeVar("R", bound=ScanReport)
SHOWN_ROWS = 50
# Every inspection is a delivery. RabbitMQ 4 gives a quorum queue without its own
# x-delivery-limit a limit of 20, so a dead-letter queue declared by an older actionrelay
# would start dropping dead letters after 20 inspections: warn well before that.
DELIVERY_COUNT_WARNING = 10


def open_queue(amqp_url: str | None, queue: str | None, purpose: str) -> DeadLetterQueue:
    settings = settings_from(amqp_url=amqp_url, dead_letter_queue=queue)
    return DeadLetterQueue(settings.amqp_url, settings.dead_letter_queue, purpose=purpose)


def run_scan(console: Console, verb: str, scan: Callable[[Progress], Coroutine[Any, Any, R]]) -> R:
    """Run ``scan`` with a progress bar on stderr and warn about what it could not read."""
    with progress_bar(console, verb) as bar:
        task = bar.add_task(verb, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = run_async(scan(advance))
    if report.stalled:
        console.print(
            f"[yellow]note:[/] read {report.scanned} of the {report.depth} dead letters that "
            "were ready at the start; the others did not arrive (held by another consumer?)"
        )
    if report.max_delivery_count >= DELIVERY_COUNT_WARNING:
        console.print(
            f"[yellow]warning:[/] a dead letter in {report.queue} was delivered "
            f"{report.max_delivery_count} times. On RabbitMQ 4 a quorum queue declared without "
            "x-delivery-limit (as by an actionrelay older than this one) drops a message after "
            "20 deliveries; give it a delivery-limit policy: see docs/operations.md"
        )
    return report


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
    """
    criteria = build_filter(**filters)
    counts = DeadLetterStats()
    target = open_queue(amqp_url, queue, "dlq stats")

    async def scan(progress: Progress) -> ScanReport:
        async with target:
            return await target.inspect(criteria, counts.add, progress=progress)

    report = run_scan(stderr(), "counting", scan)
    if as_json:
        click.echo(orjson.dumps({"queue": report.queue, **counts.as_json()}).decode())
        return
    console = stdout()
    console.print(f"{counts.total} dead letters in {report.queue} ({criteria.describe()})")
    for table in stats_tables(counts) if counts.total else []:
        console.print(table)


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
    "--json", "as_json", is_flag=True, help="One JSON object per line instead of a table."
)
@queue_options
def list_dead_letters(
    limit: int, as_json: bool, amqp_url: str | None, queue: str | None, **filters: Any
) -> None:
    """List dead letters, oldest first: event id, action, why it failed, when, replays.

    '#' is the position in the queue (0 = next to be read). Changes nothing.
    """
    criteria = build_filter(**filters)
    found: list[DeadLetter] = []
    target = open_queue(amqp_url, queue, "dlq list")

    async def scan(progress: Progress) -> ScanReport:
        async with target:
            return await target.inspect(
                criteria, found.append, limit=limit or None, progress=progress
            )

    report = run_scan(stderr(), "reading", scan)
    if as_json:
        for letter in found:
            click.echo(orjson.dumps(letter.summary()).decode())
        return
    title = f"{len(found)} dead letters in {report.queue} ({criteria.describe()})"
    if limit and len(found) == limit:
        title += f"; first {limit} shown, use --limit 0 for all"
    stdout().print(dead_letter_table(found, title))


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
    if not found:
        fail(f"no dead letter with event id {event_id!r} in {report.queue}")
    for letter in found:
        if as_json:
            click.echo(orjson.dumps(letter.detail()).decode())
        else:
            stdout().print(dead_letter_panel(letter))


@dlq.command(short_help="Send dead letters back for processing.")
@filter_options
@click.option(
    "--limit", type=click.IntRange(min=1), metavar="N", help="Replay at most N dead letters."
)
@click.option(
    "--to",
    "target",
    metavar="QUEUE",
    help="Queue to send them to [default: the request queue, "
    "env ACTIONRELAY_REQUEST_QUEUE, actionrelay.requests].",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be replayed; change nothing.")
@click.option(
    "--batch",
    type=click.IntRange(1, 1000),
    metavar="N",
    default=100,
    show_default=True,
    help="Copies in flight at once; bounds what a killed replay can send twice.",
)
@queue_options
def replay(
    limit: int | None,
    target: str | None,
    dry_run: bool,
    batch: int,
    amqp_url: str | None,
    queue: str | None,
    **filters: Any,
) -> None:
    """Send matching dead letters back for processing, then remove them from the queue.

    Each copy keeps the original body and properties; the attempt headers are
    dropped so the worker starts counting attempts again, the failure is kept in
    x-actionrelay-replayed-from-* headers and x-actionrelay-replay-count goes up
    by one. A dead letter is removed only after RabbitMQ confirmed its copy.

    Safe to interrupt: rerun the same command. Only events in flight at the
    kill can be replayed twice: at most --batch of them, 2 x --batch with
    filters (same event_id, so the API sees the same Idempotency-Key). An event
    whose own deadline has passed comes straight back as deadline_expired.

    \b
    Examples:
      actionrelay dlq replay --action sendSms --since 1h --dry-run
      actionrelay dlq replay --error-type timeout --error-type connection
      actionrelay dlq replay --event-id e-9f2 --to actionrelay.requests
    """
    criteria = build_filter(**filters)
    settings = settings_from(amqp_url=amqp_url, dead_letter_queue=queue, request_queue=target)
    destination = target or settings.request_queue
    if destination == settings.dead_letter_queue:
        fail("--to must not be the dead-letter queue itself", EXIT_CONFIG)
    source = DeadLetterQueue(settings.amqp_url, settings.dead_letter_queue, purpose="dlq replay")
    if dry_run:
        count = preview(source, criteria, limit, f"would be replayed to {destination}")
        click.echo(f"dry run: {count} dead letters would be replayed; nothing was changed")
        return

    async def scan(progress: Progress) -> ReplayReport:
        async with source:
            return await source.replay(
                criteria, destination, limit=limit, batch=batch, progress=progress
            )

    report = run_scan(stderr(), "replaying", scan)
    kept = report.depth - report.replayed
    click.echo(
        f"replayed {report.replayed} of {report.matched} matching dead letters to {destination} "
        f"(read {report.scanned} of {report.depth}; {kept} stay in {report.queue})"
    )
    if report.failures:
        for failure in report.failures[:10]:
            click.echo(f"  not replayed: {failure}", err=True)
        fail(f"replay stopped after {len(report.failures)} unconfirmed copies; they stay queued")


@dlq.command(short_help="Delete dead letters (needs --yes).")
@filter_options
@click.option(
    "--limit", type=click.IntRange(min=1), metavar="N", help="Delete at most N dead letters."
)
@click.option("--yes", is_flag=True, help="Really delete; without it nothing is deleted.")
@queue_options
def purge(
    limit: int | None, yes: bool, amqp_url: str | None, queue: str | None, **filters: Any
) -> None:
    """Delete matching dead letters for good (all of them when no filter is given).

    Without --yes it only shows what would be deleted and exits with code 1.
    """
    criteria = build_filter(**filters)
    source = open_queue(amqp_url, queue, "dlq purge")
    if not yes:
        count = preview(source, criteria, limit, "would be deleted")
        fail(f"nothing was deleted: add --yes to delete these {count} dead letters")

    async def scan(progress: Progress) -> PurgeReport:
        async with source:
            return await source.purge(criteria, limit=limit, progress=progress)

    report = run_scan(stderr(), "purging", scan)
    click.echo(
        f"deleted {report.purged} dead letters from {report.queue} ({criteria.describe()}; "
        f"{report.depth - report.purged} stay)"
    )


def preview(
    source: DeadLetterQueue, criteria: DeadLetterFilter, limit: int | None, what: str
) -> int:
    """The dry run of replay and purge: a table of the first matches; returns their count."""
    found: list[DeadLetter] = []

    def keep(letter: DeadLetter) -> None:
        if len(found) < SHOWN_ROWS:
            found.append(letter)

    async def scan(progress: Progress) -> ScanReport:
        async with source:
            return await source.inspect(criteria, keep, limit=limit, progress=progress)

    report = run_scan(stderr(), "reading", scan)
    title = f"{report.matched} dead letters {what} ({criteria.describe()})"
    if report.matched > len(found):
        title += f"; first {len(found)} shown"
    stdout().print(dead_letter_table(found, title))
    return report.matched
