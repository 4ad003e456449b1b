"""What every ``actionrelay dlq`` command shares: opening the queue, and a scan with
a progress bar that says what it could not read."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

from rich.console import Console

from actionrelay.broker.dlq import DeadLetterQueue, Progress, ScanReport
from actionrelay.cli.common import EXIT_PROBLEM, fail, run_async, settings_from
from actionrelay.cli.terminal import progress_bar

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
            f"[red]partial:[/] read {report.scanned} of the {report.depth} dead letters that "
            "were ready at the start; the others did not arrive (held by another consumer?). "
            "What follows covers only those read; run the command again."
        )
    if report.max_delivery_count >= DELIVERY_COUNT_WARNING:
        console.print(
            f"[yellow]warning:[/] a dead letter in {report.queue} was delivered "
            f"{report.max_delivery_count} times. On RabbitMQ 4 a quorum queue declared without "
            "x-delivery-limit (as by an actionrelay older than this one) drops a message after "
            "20 deliveries; give it a delivery-limit policy: see docs/operations.md"
        )
    return report


def exit_if_partial(report: ScanReport) -> None:
    """A partial read is never a total: exit 1 once its output is printed."""
    if report.stalled:
        partial(report)


def partial(report: ScanReport) -> NoReturn:
    fail(
        f"partial read: {report.scanned} of {report.depth} dead letters in {report.queue}",
        EXIT_PROBLEM,
    )
