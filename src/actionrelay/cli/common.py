"""Pieces shared by the operating commands (``actions list|test``, ``dlq``, ``publish``),
and ``actionrelay publish`` itself."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
import orjson
from pydantic import ValidationError

from actionrelay.core.errors import ActionRelayError, ConfigError
from actionrelay.core.triage import DeadLetterFilter, parse_since
from actionrelay.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_PROBLEM = 1  # the command ran and found a problem (failed call, no match, …)
EXIT_CONFIG = 2  # bad options or settings, like click's usage errors
EXIT_NO_RESULT = 3  # publish --wait: no result in time
PIPED_WIDTH = 200


def settings_from(**overrides: Any) -> Settings:
    """Settings from ACTIONRELAY_* variables, with the options given on top."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise click.UsageError("invalid settings: " + "; ".join(lines)) from exc


def fail(message: str, code: int = EXIT_PROBLEM) -> NoReturn:
    click.echo(f"actionrelay: {message}", err=True)
    sys.exit(code)


def run_async(
    coroutine: Coroutine[Any, Any, T], exit_codes: Mapping[type[Exception], int] | None = None
) -> T:
    """``asyncio.run``, with actionrelay errors turned into a message and an exit code."""
    # The clients' own tracebacks on a lost connection would bury the one-line reason.
    for name in ("aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        return asyncio.run(coroutine)
    except ActionRelayError as exc:
        codes = {**(exit_codes or {}), ConfigError: EXIT_CONFIG}
        fail(str(exc), next((c for kind, c in codes.items() if isinstance(exc, kind)), 1))


def stdout() -> Console:
    """Tables on stdout; piped into grep or a file they are not folded at 80 columns."""
    from rich.console import Console  # imported here: rich stays out of `actionrelay run`

    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=PIPED_WIDTH if piped else None)


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def read_params(text: str) -> dict[str, Any]:
    """``--params``: a JSON object, or ``@path`` to a file holding one (``@-`` = stdin)."""
    if text.startswith("@"):
        where = text[1:]
        try:
            raw = sys.stdin.buffer.read() if where == "-" else Path(where).read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {where}: {exc.strerror}") from exc
    else:
        raw = text.encode()
    try:
        params = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise click.BadParameter(f"must be a JSON object, not {type(params).__name__}")
    return params


PARAMS_HELP = (
    "The step's variable values: a JSON object such as "
    '\'{"phone": "+33612345678", "text": "Hi"}\', or @FILE to read it from a file (@- = stdin).'
)


def amqp_url_option(func: F) -> F:
    return click.option(
        "--amqp-url",
        default=None,
        metavar="URL",
        help="RabbitMQ URL [env ACTIONRELAY_AMQP_URL; default: amqp://guest:guest@localhost:5672/].",
    )(func)


ERROR_TYPES = (
    "http_error, timeout, connection, validation, unknown_action, invalid_event, "
    "deadline_expired, auth, capped, forbidden_destination, too_many_redirects, internal, "
    "delivery_limit (dead-lettered by RabbitMQ after the delivery limit)"
)


def queue_options(func: F) -> F:
    func = click.option(
        "--queue",
        default=None,
        metavar="QUEUE",
        help="Dead-letter queue [env ACTIONRELAY_DEAD_LETTER_QUEUE; default: actionrelay.dead].",
    )(func)
    return amqp_url_option(func)


def filter_options(func: F) -> F:
    """The filters every dlq command shares; several values of one option mean "any of"."""
    options = [
        click.option(
            "--action",
            "actions",
            multiple=True,
            metavar="NAME",
            help="Only this action (repeatable).",
        ),
        click.option(
            "--error-type",
            "error_types",
            multiple=True,
            metavar="TYPE",
            help=f"Only this error type (repeatable): {ERROR_TYPES}.",
        ),
        click.option(
            "--http-status",
            "http_statuses",
            multiple=True,
            type=int,
            metavar="CODE",
            help="Only those whose last HTTP answer had this status (repeatable).",
        ),
        click.option(
            "--event-id",
            "event_ids",
            multiple=True,
            metavar="ID",
            help="Only this event (repeatable).",
        ),
        click.option(
            "--since",
            metavar="WHEN",
            help="Only those that failed at or after WHEN: ISO 8601 (2026-11-27T12:00:00Z, "
            "UTC when no zone) or a span ago (30m, 1h, 2d, 1h30m).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def build_filter(
    actions: tuple[str, ...],
    error_types: tuple[str, ...],
    http_statuses: tuple[int, ...],
    event_ids: tuple[str, ...],
    since: str | None,
) -> DeadLetterFilter:
    try:
        since_at = parse_since(since, datetime.now(UTC)) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    return DeadLetterFilter(
        frozenset(actions),
        frozenset(error_types),
        frozenset(http_statuses),
        frozenset(event_ids),
        since_at,
    )
