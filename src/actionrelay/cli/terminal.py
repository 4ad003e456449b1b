"""What the operating commands print: rich tables and panels, built from plain data.

No I/O beyond writing to the ``Console`` the CLI hands in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from actionrelay.catalog.loader import Catalog
from actionrelay.core.action import ActionDefinition
from actionrelay.core.deadletter import DeadLetter
from actionrelay.core.result import HttpResponse
from actionrelay.core.secret import Redactor
from actionrelay.core.triage import DeadLetterStats
from actionrelay.http.probe import ProbeOutcome, ShownRequest, auth_mode

MESSAGE_WIDTH = 80
BODY_CHARS = 64 * 1024


def variables(action: ActionDefinition) -> str:
    """``phone: string, tags?: listString`` (``?`` = optional)."""
    return ", ".join(
        f"{name}{'?' if spec.optional else ''}: {spec.type}"
        for name, spec in action.variables.items()
    )


def actions_table(catalog: Catalog) -> Table:
    """Every action; a secret in a URL (a webhook token in the path) is masked."""
    mask = Redactor(catalog.secrets).mask
    table = Table(title=f"{len(catalog)} actions", title_justify="left")
    for column in ("name", "version", "method", "URL", "auth", "variables"):
        table.add_column(column, overflow="fold")
    for name in sorted(catalog):
        action = catalog[name]
        table.add_row(
            name,
            str(action.version),
            action.method,
            mask(action.url + (action.path or "")),
            auth_mode(action.auth),
            variables(action) or "-",
        )
    return table


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def dead_letter_table(letters: Iterable[DeadLetter], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("#", "event id", "action", "error type", "status", "attempts", "failed at"):
        table.add_column(column, overflow="fold", no_wrap=column == "failed at")
    table.add_column("replays", justify="right")
    table.add_column("message", overflow="ellipsis", max_width=MESSAGE_WIDTH)
    for letter in letters:
        table.add_row(
            str(letter.position),
            _cell(letter.event_id),
            _cell(letter.action),
            letter.error_type,
            _cell(letter.status_code),
            _cell(letter.attempts),
            letter.failed_at.strftime("%Y-%m-%d %H:%M:%S") if letter.failed_at else "-",
            str(letter.replay_count),
            letter.error_message,
        )
    return table


def _count_table(title: str, key: str, counts: Counter[str]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(key)
    table.add_column("dead letters", justify="right")
    for name, count in counts.most_common():
        table.add_row(name, str(count))
    return table


def stats_tables(stats: DeadLetterStats) -> list[Table]:
    causes = Table(title="by cause", title_justify="left")
    for column in ("action", "error type", "http status"):
        causes.add_column(column)
    causes.add_column("dead letters", justify="right")
    for (action, error_type, status), count in stats.by_cause.most_common():
        causes.add_row(action, error_type, status, str(count))
    return [
        _count_table("by action", "action", stats.by_action),
        _count_table("by error type", "error type", stats.by_error_type),
        _count_table("by http status", "http status", stats.by_http_status),
        causes,
    ]


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def dead_letter_panel(letter: DeadLetter) -> Panel:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    for key, value in letter.summary().items():
        facts.add_row(key.replace("_", " "), _cell(value))
    facts.add_row("delivery count", _cell(letter.delivery_count))
    headers = Table("header", "value", title="headers", title_justify="left")
    for name, value in sorted(letter.headers.items()):
        headers.add_row(name, value if isinstance(value, str) else _json_text(value))
    properties = Table("property", "value", title="properties", title_justify="left")
    for name, value in letter.properties.items():
        properties.add_row(name, _cell(value))
    event = Text(_json_text(letter.event()) if letter.body else "(empty body)")
    return Panel(
        Group(facts, headers, properties, Text("event", style="bold"), event),
        title=f"dead letter {letter.event_id or '(no event id)'} at position {letter.position}",
        title_align="left",
        expand=False,
    )


def _headers_table(title: str, headers: Any) -> Table:
    table = Table("header", "value", title=title, title_justify="left")
    for name, value in headers.items():
        table.add_row(name, value)
    return table


def request_panel(request: ShownRequest) -> Panel:
    body = Text("(no body)") if request.body is None else Text(_json_text(request.body))
    if isinstance(request.body, str):  # a form body's fields
        body = Text(request.body)
    return Panel(
        Group(
            Text(f"{request.method} {request.url}"),
            _headers_table("headers", request.headers),
            body,
        ),
        title="request as sent (credentials masked)",
        title_align="left",
        expand=False,
    )


def _body_text(response: HttpResponse, mask: Callable[[str], str]) -> Text:
    if not response.body:
        return Text("(empty body)")
    raw = response.body[:BODY_CHARS]
    try:
        text = _json_text(orjson.loads(response.body))
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", errors="replace")
    note = " (truncated)" if response.truncated or len(response.body) > BODY_CHARS else ""
    return Text(mask(text[:BODY_CHARS]) + note)


def response_panel(outcome: ProbeOutcome, mask: Callable[[str], str]) -> Panel:
    response = outcome.response
    parts: list[Any] = []
    if response is not None:
        parts += [
            Text(f"HTTP {response.status} in {response.latency_ms:.1f} ms", style="bold"),
            _headers_table("headers", {k: mask(v) for k, v in response.headers.items()}),
            _body_text(response, mask),
        ]
    if outcome.failure is not None and response is None:
        parts.append(Text(f"no answer: {outcome.failure.error_type}: {outcome.failure.message}"))
    parts.append(Text(f"worker verdict: {outcome.verdict}", style="bold"))
    return Panel(Group(*parts), title="response", title_align="left", expand=False)


def progress_bar(console: Console, verb: str) -> Progress:
    """A bar for long scans; silent when stderr is not a terminal."""
    return Progress(
        TextColumn(f"[bold]{verb}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
