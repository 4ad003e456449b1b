"""The broker-only ceiling: consume a step event and publish a confirmed result, no HTTP.

    .venv/bin/python benchmarks/ceiling.py --queue Q [--prefetch P]

What RabbitMQ and aio-pika allow on this machine when the pipeline does
nothing else: one task per delivery, a persistent result to ``reply_to`` on a
confirming channel, then the ack. No parsing beyond the event_id. A pipeline's
events/s as a share of this figure says how much of the time goes to the
broker round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, DeliveryMode


async def answer(channel: AbstractChannel, message: AbstractIncomingMessage) -> None:
    event_id = orjson.loads(message.body).get("event_id")
    await channel.default_exchange.publish(
        aio_pika.Message(
            orjson.dumps({"event_id": event_id, "status": "success"}),
            content_type="application/json",
            delivery_mode=DeliveryMode.PERSISTENT,
            correlation_id=message.correlation_id,
        ),
        routing_key=message.reply_to or "",
    )
    await message.ack()


async def run(amqp_url: str, queue_name: str, prefetch: int) -> None:
    connection = await aio_pika.connect(
        amqp_url, client_properties={"connection_name": f"benchmark ceiling {queue_name}"}
    )
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.get_queue(queue_name, ensure=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        tag = await queue.consume(lambda message: answer(channel, message))
        await stop.wait()
        await queue.cancel(tag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--queue", required=True, help="Step events queue (already declared).")
    parser.add_argument("--prefetch", type=int, default=256)
    parser.add_argument("--target-url", default=None, help="Ignored: no HTTP here.")
    args = parser.parse_args()
    asyncio.run(run(args.amqp_url, args.queue, args.prefetch))


if __name__ == "__main__":
    main()
