"""``actionrelay console``: the web console for on-call engineers and action authors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from actionrelay.catalog.loader import load_catalog
from actionrelay.cli.common import EXIT_CONFIG, settings_from
from actionrelay.core.errors import ConfigError
from actionrelay.limits.endpoint import load_endpoints
from actionrelay.observability.logs import configure_logging
from actionrelay.settings import ConsoleSettings


def console_settings(**given: Any) -> ConsoleSettings:
    return ConsoleSettings(**{k: v for k, v in given.items() if v is not None})


@click.command("console", short_help="Serve the web console (actions, status, dead letters).")
@click.option("--host", default=None, help="Address [env ACTIONRELAY_CONSOLE_HOST; 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [env ACTIONRELAY_CONSOLE_PORT; 8420].")
@click.option("--actions", "actions_dir", type=click.Path(path_type=Path), help="Action files.")
@click.option(
    "--metrics-url",
    "metrics_urls",
    multiple=True,
    metavar="URL",
    help="A worker's /metrics (repeatable) [env ACTIONRELAY_CONSOLE_METRICS_URLS, commas].",
)
@click.option("--prometheus-url", default=None, help="Prometheus [env ACTIONRELAY_PROMETHEUS_URL].")
@click.option(
    "--amqp-url", default=None, metavar="URL", help="RabbitMQ [env ACTIONRELAY_AMQP_URL]."
)
def console_command(
    host: str | None,
    port: int | None,
    actions_dir: Path | None,
    metrics_urls: tuple[str, ...],
    prometheus_url: str | None,
    amqp_url: str | None,
) -> None:
    """Serve the console: actions with their status, each action's schema and a
    "send test request" form, and the dead letters (filter, show, replay, purge).

    It reads the workers' settings (ACTIONRELAY_AMQP_URL, _DEAD_LETTER_QUEUE,
    _REQUEST_QUEUE, _ACTIONS_DIR, _ALLOW_*) and serves the catalog API too
    (GET /api/v1/actions). It listens on 127.0.0.1 unless told otherwise; on any
    other address it refuses to start without ACTIONRELAY_CONSOLE_TOKEN, which
    every page then needs. Test requests, replays and purges always need the
    token (log in at /login), whatever the address.

    \b
    Example:
      ACTIONRELAY_CONSOLE_TOKEN=$(openssl rand -hex 16) actionrelay console \\
        --actions examples/actions --metrics-url http://127.0.0.1:9464/metrics
    """
    settings = settings_from(actions_dir=actions_dir, amqp_url=amqp_url)
    options = console_settings(
        console_host=host,
        console_port=port,
        prometheus_url=prometheus_url,
        console_metrics_urls=",".join(metrics_urls) or None,
    )
    from actionrelay.console.security import is_loopback

    if not is_loopback(options.console_host) and options.console_token is None:
        click.echo(
            f"actionrelay: the console on {options.console_host} needs ACTIONRELAY_CONSOLE_TOKEN",
            err=True,
        )
        sys.exit(EXIT_CONFIG)
    try:
        catalog = load_catalog(settings.actions_dir)
        endpoints = load_endpoints(settings.actions_dir)
    except ConfigError as exc:
        click.echo(f"actionrelay: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    from aiohttp import web

    from actionrelay.console.server import make_app

    configure_logging(settings.log_level, settings.log_format)
    app = make_app(settings, options, catalog, endpoints)
    web.run_app(app, host=options.console_host, port=options.console_port, print=None)
