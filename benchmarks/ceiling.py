"""The broker-only ceiling: consume a step event and publish a confirmed result, no HTTP.

    .venv/bin/python benchmarks/ceiling.py --queue Q [--prefetch P] [--delay-ms D]

What RabbitMQ and aio-pika allow on this machine when a pipeline does nothing
but the broker's part of actionrelay's job, done the fastest way we know:
actionrelay's own connection (aiormq's frame queues unbounded), one task per
delivery, a persistent result to ``reply_to`` published without waiting for
the writer and then awaited until the broker confirms it, and acks sent as
actionrelay sends them (``AckBatcher``: one multiple ack per flush). No
parsing beyond the event_id, no HTTP, no validation, no logs, no metrics;
on uvloop, like actionrelay.
A pipeline's events/s as a share of this figure says how much of its time
goes to everything that is not the broker. With ``--delay-ms`` each event
waits that long before its result is published (a sleep standing in for a
slow API, costing no CPU): what the prefetch and the broker's round trips
allow against such an API.
"""

from __future__ import annotations

import asyncio
import signal
from typing import cast

import aiormq
import orjson
import uvloop
from pamqp.commands import Basic

from actionrelay.broker.acks import AckBatcher
from actionrelay.broker.connection import WorkerConnection
from actionrelay.broker.delivery import Delivery, WorkerQueue
from peer_args import pipeline_parser


async def run(amqp_url: str, queue_name: str, prefetch: int, delay_seconds: float) -> None:
    connection = WorkerConnection(
        [amqp_url], client_properties={"connection_name": f"benchmark ceiling {queue_name}"}
    )
    await connection.connect()
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=prefetch)
        amqp = cast(aiormq.Channel, await channel.get_underlay_channel())
        acks = AckBatcher(amqp)

        async def answer(message: Delivery) -> None:
            tag = message.delivery_tag or 0
            acks.delivered(tag)
            if delay_seconds:
                await asyncio.sleep(delay_seconds)
            event_id = orjson.loads(message.body).get("event_id")
            await amqp.basic_publish(
                orjson.dumps({"event_id": event_id, "status": "success"}),
                routing_key=message.reply_to or "",
                properties=Basic.Properties(
                    content_type="application/json",
                    delivery_mode=2,
                    correlation_id=message.correlation_id,
                ),
                wait=False,
            )
            acks.settle(tag)

        queue = await channel.get_queue(queue_name, ensure=True)
        assert isinstance(queue, WorkerQueue)  # a WorkerConnection's: it hands out a Delivery
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        tag = await queue.consume(answer)
        await stop.wait()
        await queue.cancel(tag)
        await acks.drain()


def main() -> None:
    parser = pipeline_parser(__doc__, calls_target=False)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="Wait per event (no CPU).")
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run(args.amqp_url, args.queue, args.prefetch, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
