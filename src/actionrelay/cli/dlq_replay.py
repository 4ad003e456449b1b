"""``actionrelay dlq replay`` and ``dlq purge``: the commands that change the queue."""

from __future__ import annotations

from typing import Any

import click

from actionrelay.broker.dlq import DeadLetterQueue, Progress, PurgeReport, ReplayReport, ScanReport
from actionrelay.cli.common import (
    EXIT_CONFIG,
    build_filter,
    fail,
    filter_options,
    queue_options,
    settings_from,
    stderr,
    stdout,
)
from actionrelay.cli.dlq_scan import SHOWN_ROWS, exit_if_partial, open_queue, run_scan
from actionrelay.cli.terminal import dead_letter_table
from actionrelay.core.deadletter import DeadLetter
from actionrelay.core.triage import DeadLetterFilter


@click.command(short_help="Send dead letters back for processing.")
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
        report = preview(source, criteria, limit, f"would be replayed to {destination}")
        click.echo(f"dry run: {report.matched} dead letters would be replayed; nothing was changed")
        exit_if_partial(report)
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
    exit_if_partial(report)


@click.command(short_help="Delete dead letters (needs --yes).")
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
        report = preview(source, criteria, limit, "would be deleted")
        exit_if_partial(report)
        fail(f"nothing was deleted: add --yes to delete these {report.matched} dead letters")

    async def scan(progress: Progress) -> PurgeReport:
        async with source:
            return await source.purge(criteria, limit=limit, progress=progress)

    report = run_scan(stderr(), "purging", scan)
    click.echo(
        f"deleted {report.purged} dead letters from {report.queue} ({criteria.describe()}; "
        f"{report.depth - report.purged} stay)"
    )
    exit_if_partial(report)


def preview(
    source: DeadLetterQueue, criteria: DeadLetterFilter, limit: int | None, what: str
) -> ScanReport:
    """The dry run of replay and purge: a table of the first matches and their count."""
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
    return report
