"""The ``actionrelay`` command: the only place that reads the environment,
configures logging and starts the event loop.

Subcommands other than ``run`` are imported when they are called: ``run`` loads
only what a worker needs, and keeps rich (the other commands' tables, which
structlog would import too) and greenlet out of a long-running process's memory.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import click
import orjson

from actionrelay.cli.common import amqp_url_option, settings_from
from actionrelay.core.errors import ActionRelayError, ConfigError
from actionrelay.settings import Settings

F = Callable[..., Any]
OPTION_TYPES: dict[Any, Any] = {int: click.INT, float: click.FLOAT, Path: click.Path()}


def settings_options(func: F) -> F:
    """One ``--option`` per Settings field, documented with its env variable."""
    for name, info in reversed(Settings.model_fields.items()):
        env = f"ACTIONRELAY_{name.upper()}"
        default = "generated" if info.default_factory else info.default
        default = {"": "empty", None: "unset"}.get(default, default)
        # Only a Literal is a choice: ``str | None`` has args too, and must stay free text.
        literal = get_origin(info.annotation) is Literal
        choices = get_args(info.annotation) if literal else ()
        kind: Any = click.Choice(choices) if choices else OPTION_TYPES.get(info.annotation)
        flags = ["--actions", "--actions-dir"] if name == "actions_dir" else []
        func = click.option(
            *flags or [f"--{name.replace('_', '-')}"],
            name,
            type=kind,
            default=None,
            help=f"{info.description or ''} [env {env}; default: {default}]".strip(),
        )(func)
    return func


def run_loop(main: Coroutine[Any, Any, None], kind: str = "auto") -> None:
    """Run the worker on uvloop when it is there (or asked for), else on asyncio's loop."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                main.close()  # never awaited: close it so Python does not warn at exit
                message = (
                    "ACTIONRELAY_EVENT_LOOP=uvloop but uvloop is not installed: "
                    "install it (pip install uvloop) or set ACTIONRELAY_EVENT_LOOP=auto"
                )
                raise click.UsageError(message) from None
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


class LazyGroup(click.Group):
    """A group whose commands named in ``lazy`` ("module:attribute") load when used."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, attribute = self.lazy[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, cmd_name)


LAZY = {
    "actions": "actionrelay.cli.actions:actions",
    "console": "actionrelay.cli.console:console_command",
    "dlq": "actionrelay.cli.dlq:dlq",
    "publish": "actionrelay.cli.publish:publish",
}


@click.group(cls=LazyGroup, lazy=LAZY, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="actionrelay")
def main() -> None:
    """actionrelay: delivers journey custom actions from RabbitMQ to REST APIs."""


@main.command()
@settings_options
def run(**overrides: Any) -> None:
    """Consume step events, call the actions' APIs and publish result events.

    Every option can also be set with its ACTIONRELAY_ environment variable;
    an option given on the command line wins.
    """
    settings = settings_from(**overrides)
    keep_worker_lean()
    from actionrelay.catalog.loader import load_catalog
    from actionrelay.core.secret import Redactor
    from actionrelay.observability.logs import configure_logging
    from actionrelay.service import serve

    try:
        catalog = load_catalog(settings.actions_dir)
        redactor = Redactor(catalog.secrets)
        configure_logging(settings.log_level, settings.log_format, redactor)
        run_loop(serve(settings, catalog, redactor), settings.event_loop)
    except ConfigError as exc:
        click.echo(f"actionrelay: {exc}", err=True)
        sys.exit(2)
    except ActionRelayError as exc:
        click.echo(f"actionrelay: {exc}", err=True)
        sys.exit(1)


def keep_worker_lean() -> None:
    """Keep out of a worker's memory what structlog imports for nothing.

    structlog imports rich when it is installed, for its console renderer: a worker
    never renders for a console, and rich with pygments weighs about 6 MB. It also
    imports greenlet when that is installed (Playwright and SQLAlchemy bring it), for
    its deprecated thread-local context, which actionrelay does not use: 0.25 MB.
    greenlet is hidden only while structlog loads, so anything else may still use it.
    """
    if "rich" not in sys.modules:
        sys.modules["rich"] = None  # type: ignore[assignment]  # import rich: ImportError
    if "structlog" not in sys.modules and "greenlet" not in sys.modules:
        sys.modules["greenlet"] = None  # type: ignore[assignment]  # import greenlet: ImportError
        try:
            import structlog  # noqa: F401
        finally:
            sys.modules.pop("greenlet", None)


@main.command("demo-api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, help="Port to listen on.")
def demo_api(host: str, port: int) -> None:
    """Serve the demo third-party API that the example actions call."""
    from aiohttp import web

    from actionrelay.cli.demo_api import make_app

    web.run_app(make_app(), host=host, port=port)


@main.command("asyncapi")
def asyncapi_command() -> None:
    """Print the AsyncAPI 3 document of the step-event, result and dead-letter messages."""
    from actionrelay.cli.asyncapi import render

    click.echo(render(), nl=False)


@main.command("openapi")
def openapi_command() -> None:
    """Print the OpenAPI 3.1 document of the catalog API (GET /api/v1/actions…) as YAML."""
    from actionrelay.cli.openapi import render

    click.echo(render(), nl=False)


@main.command("demo")
@click.option(
    "--actions",
    "actions_dir",
    type=click.Path(path_type=Path),
    default=Path("examples/actions"),
    show_default=True,
    help="Example actions that call the demo API (DEMO_API_URL is set for them).",
)
@amqp_url_option
def demo_command(actions_dir: Path, amqp_url: str | None) -> None:
    """See actionrelay work: demo API + worker on throw-away queues, example events, results."""
    from actionrelay.cli.demo import run_demo
    from actionrelay.observability.logs import configure_logging

    settings = settings_from(actions_dir=actions_dir, amqp_url=amqp_url)
    configure_logging("error", "console")
    try:
        results = asyncio.run(run_demo(settings))
    except ActionRelayError as exc:
        click.echo(f"actionrelay demo: {exc}", err=True)
        sys.exit(1)
    for result in results:
        error = result["error"]["message"] if result["error"] else ""
        kept = orjson.dumps(result["response"]).decode() if result["response"] else ""
        click.echo(
            f"{result['event_id']:<14} {result['action']:<15} {result['status']:<8} "
            f"{result['status_code']:<9} {kept or error}"
        )
