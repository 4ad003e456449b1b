"""``actionrelay actions validate``, ``actions list``, ``actions schema`` and ``actions test``."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import click
import orjson

from actionrelay.catalog.loader import Catalog, load_catalog
from actionrelay.catalog.schema import params_schema
from actionrelay.cli.common import EXIT_PROBLEM, PARAMS_HELP, read_params, run_async, settings_from
from actionrelay.cli.common import stdout as stdout_console
from actionrelay.cli.terminal import actions_table, request_panel, response_panel
from actionrelay.core.action import ActionDefinition
from actionrelay.core.errors import ConfigError
from actionrelay.core.secret import Redactor
from actionrelay.http.probe import probe

ACTIONS_DIR_HELP = "Action files directory [env ACTIONRELAY_ACTIONS_DIR; default: actions]."


def load_or_exit(actions_dir: Path) -> Catalog:
    """The catalog, or every problem (file: field: reason) on stderr and exit 1."""
    try:
        return load_catalog(actions_dir)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_PROBLEM)


@click.command("validate")
@click.option("--actions", "actions_dir", type=click.Path(path_type=Path), help=ACTIONS_DIR_HELP)
def validate_actions(actions_dir: Path | None) -> None:
    """Load every action file and report each problem (file, field, reason); exit 1 on any."""
    settings = settings_from(actions_dir=actions_dir)
    catalog = load_or_exit(settings.actions_dir)
    click.echo(f"{len(catalog)} actions valid in {settings.actions_dir}")


@click.command("list", short_help="Table of the actions (exit 1 on an invalid file).")
@click.option("--actions", "actions_dir", type=click.Path(path_type=Path), help=ACTIONS_DIR_HELP)
def list_actions(actions_dir: Path | None) -> None:
    """Show every action: name, version, method, URL, auth mode and variables.

    Variables are NAME: TYPE; a '?' marks an optional one. A secret in a URL
    (a webhook token given by reference) is shown as ***. When any file is
    invalid, nothing is listed: each problem is printed as 'file: field: reason'
    and the exit code is 1 (as with 'actions validate').
    """
    settings = settings_from(actions_dir=actions_dir)
    catalog = load_or_exit(settings.actions_dir)
    stdout_console().print(actions_table(catalog))


@click.command("schema", short_help="Print the JSON Schema of an action's params.")
@click.argument("name")
@click.option("--actions", "actions_dir", type=click.Path(path_type=Path), help=ACTIONS_DIR_HELP)
def schema_of_action(name: str, actions_dir: Path | None) -> None:
    """Print the JSON Schema (draft 2020-12) of the params a step event for NAME carries.

    The same schema as the catalog API's GET /api/v1/actions/NAME gives under
    "params": types and formats, required variables, null where allowed, lists.

    \b
    Example:
      actionrelay actions schema sendSms --actions examples/actions
    """
    catalog = load_or_exit(settings_from(actions_dir=actions_dir).actions_dir)
    action = known_action(catalog, name)
    click.echo(orjson.dumps(params_schema(action), option=orjson.OPT_INDENT_2).decode())


def known_action(catalog: Catalog, name: str) -> ActionDefinition:
    if name not in catalog:
        known = ", ".join(sorted(catalog)) or "none"
        raise click.BadParameter(f"no action {name!r} (known: {known})", param_hint="NAME")
    return catalog[name]


@click.command("test", short_help="Call an action once for real and show the exchange.")
@click.argument("name")
@click.option("--params", "params_text", default="{}", metavar="JSON|@FILE", help=PARAMS_HELP)
@click.option(
    "--event-id",
    default=None,
    help="Sent as Idempotency-Key, as the event id would be [default: test-<uuid>].",
)
@click.option("--actions", "actions_dir", type=click.Path(path_type=Path), help=ACTIONS_DIR_HELP)
def test_action(
    name: str, params_text: str, event_id: str | None, actions_dir: Path | None
) -> None:
    """Call action NAME once for real with --params and show what happened.

    Prints the request as sent (credentials and secrets masked as ***), then the
    status, headers, body and time of the answer, and what the worker would do
    with it (success, retry, dead letter). Nothing is published to RabbitMQ.

    The call obeys the same egress policy as the worker:
    ACTIONRELAY_ALLOW_HTTP_HOSTS for plain http and
    ACTIONRELAY_ALLOW_PRIVATE_NETWORKS for private or loopback addresses.

    \b
    Example:
      actionrelay actions test sendSms --actions examples/actions \\
        --params '{"phone": "+33612345678", "text": "Hi", "tenant": "acme", "country": "fr"}'

    Exit code 0 when the API answered 2xx, 1 otherwise.
    """
    settings = settings_from(actions_dir=actions_dir)
    catalog = load_or_exit(settings.actions_dir)
    action = known_action(catalog, name)
    params = read_params(params_text)
    redactor = Redactor(catalog.secrets)
    coroutine = probe(
        action,
        params,
        event_id=event_id or f"test-{uuid.uuid4()}",
        settings=settings,
        redactor=redactor,
    )
    outcome = run_async(coroutine)  # params that do not fit the action: message, exit 1
    console = stdout_console()
    console.print(request_panel(outcome.request))
    console.print(response_panel(outcome, redactor.mask))
    if not outcome.succeeded:
        sys.exit(EXIT_PROBLEM)


@click.group()
def actions() -> None:
    """Inspect and check the action catalog."""


actions.add_command(validate_actions)
actions.add_command(list_actions)
actions.add_command(schema_of_action)
actions.add_command(test_action)
