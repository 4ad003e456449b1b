"""``actionrelay publish``: a step event, as the journey engine sends it."""

from __future__ import annotations

import sys
import uuid

import click
import orjson

from actionrelay.broker.step_publisher import NoResultYet, publish_step, step_event
from actionrelay.cli.common import (
    EXIT_NO_RESULT,
    EXIT_PROBLEM,
    PARAMS_HELP,
    amqp_url_option,
    read_params,
    run_async,
    settings_from,
)


@click.command(short_help="Publish a step event; --wait prints its result.")
@click.argument("action_name", metavar="NAME")
@click.option("--params", "params_text", default="{}", metavar="JSON|@FILE", help=PARAMS_HELP)
@click.option(
    "--event-id", default=None, help="Event id (also the Idempotency-Key) [default: cli-<uuid>]."
)
@click.option("--profile-id", default=None, help="profile_id to put in the event.")
@click.option("--wait", is_flag=True, help="Wait for the result event and print it as JSON.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    default=60.0,
    show_default=True,
    help="With --wait: seconds to wait for the result.",
)
@amqp_url_option
@click.option(
    "--queue",
    default=None,
    help="Request queue to publish to "
    "[env ACTIONRELAY_REQUEST_QUEUE; default: actionrelay.requests].",
)
def publish(
    action_name: str,
    params_text: str,
    event_id: str | None,
    profile_id: str | None,
    wait: bool,
    timeout: float,
    amqp_url: str | None,
    queue: str | None,
) -> None:
    """Publish a step event for action NAME, as the journey engine would.

    The running workers take it like any other event: the API is really called
    and the result goes to the results exchange. With --wait the event asks for
    its result on a private reply queue (reply_to) and this command prints it.

    \b
    Example:
      actionrelay publish sendSms --wait \\
        --params '{"phone": "+33612345678", "text": "Hi", "tenant": "acme", "country": "fr"}'

    \b
    Exit codes: 0 published (with --wait: the result is success),
    1 the broker refused the event or the result is not success,
    3 no result within --timeout (the event may still be retrying).
    """
    settings = settings_from(amqp_url=amqp_url, request_queue=queue)
    event = step_event(
        action_name,
        read_params(params_text),
        event_id=event_id or f"cli-{uuid.uuid4()}",
        profile_id=profile_id,
    )
    coroutine = publish_step(
        settings.amqp_url,
        settings.request_queue,
        event,
        wait_seconds=timeout if wait else None,
        on_published=lambda: click.echo(
            f"published event {event['event_id']} to {settings.request_queue}", err=True
        ),
    )
    result = run_async(coroutine, {NoResultYet: EXIT_NO_RESULT})
    if result is None:
        return
    click.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    if result.get("status") != "success":
        sys.exit(EXIT_PROBLEM)
