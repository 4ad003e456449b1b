"""Publish step events to actionrelay so that none is lost before a worker sees it.

The rules (README, "Publishing step events"):
- persistent messages (delivery mode 2) with content type application/json;
- publisher confirms: an event counts as sent only once RabbitMQ confirmed it;
- on a nack, a return (no queue) or a lost connection, publish the same body
  again: the same event_id, so the API sees the same Idempotency-Key.

    python publish_step_events.py --amqp-url amqp://guest:guest@localhost:5672/ \\
        --queue actionrelay.requests < events.jsonl

One JSON step event per line on stdin. Exits 1 naming the events it could not
send after its attempts. Needs aio-pika.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable
from typing import Any

import aio_pika
import aiormq

MAX_ID_BYTES = 255  # AMQP short strings
IN_FLIGHT = 200  # publishes awaiting their confirm at once
RETRYABLE = (aiormq.exceptions.DeliveryError, aiormq.exceptions.AMQPError, ConnectionError)


class NotSent(Exception):
    """Some events were not confirmed after every attempt."""


def step_message(event: dict[str, Any], reply_to: str | None = None) -> aio_pika.Message:
    event_id = str(event["event_id"])
    return aio_pika.Message(
        json.dumps(event).encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event_id if len(event_id.encode()) <= MAX_ID_BYTES else None,
        reply_to=reply_to,
    )


async def publish_step_events(
    amqp_url: str,
    queue: str,
    events: Iterable[dict[str, Any]],
    *,
    attempts: int = 10,
    reply_to: str | None = None,
) -> int:
    """Publish every event, confirmed; returns how many. Raises NotSent otherwise."""
    pending = [step_message(event, reply_to) for event in events]
    total = len(pending)
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        for attempt in range(1, attempts + 1):
            pending = await _publish_round(connection, queue, pending)
            if not pending:
                return total
            await asyncio.sleep(min(0.2 * 2**attempt, 5.0))  # full queue, restarting broker
    finally:
        await connection.close()
    ids = ", ".join(str(m.message_id) for m in pending[:10])
    raise NotSent(
        f"{len(pending)} of {total} events not confirmed after {attempts} attempts: {ids}"
    )


async def _publish_round(
    connection: aio_pika.abc.AbstractRobustConnection,
    queue: str,
    messages: list[aio_pika.Message],
) -> list[aio_pika.Message]:
    """Publish ``messages`` once each, confirmed; returns those to publish again."""
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    except RETRYABLE:
        return messages
    failed: list[aio_pika.Message] = []
    try:
        for start in range(0, len(messages), IN_FLIGHT):
            batch = messages[start : start + IN_FLIGHT]
            outcomes = await asyncio.gather(
                *(
                    channel.default_exchange.publish(m, routing_key=queue, mandatory=True)
                    for m in batch
                ),
                return_exceptions=True,
            )
            failed += [m for m, outcome in zip(batch, outcomes, strict=True) if _failed(outcome)]
    finally:
        if not channel.is_closed:
            await channel.close()
    return failed


def _failed(outcome: object) -> bool:
    if isinstance(outcome, RETRYABLE):
        return True
    if isinstance(outcome, BaseException):
        raise outcome
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amqp-url", default="amqp://guest:guest@localhost:5672/")
    parser.add_argument("--queue", default="actionrelay.requests")
    parser.add_argument("--reply-to", default=None, help="Queue for the results.")
    args = parser.parse_args()
    events = [json.loads(line) for line in sys.stdin if line.strip()]
    try:
        sent = asyncio.run(
            publish_step_events(args.amqp_url, args.queue, events, reply_to=args.reply_to)
        )
    except NotSent as exc:
        sys.exit(f"not sent: {exc}")
    print(f"{sent} events published and confirmed")


if __name__ == "__main__":
    main()
