"""The yardstick: a minimal hand-written pipeline doing what actionrelay does, minus the product.

    .venv/bin/python benchmarks/reference.py --queue Q --target-url URL [--prefetch P]

aio-pika consume (one task per delivery, bounded by the prefetch) -> aiohttp
POST of the event's ``params`` as JSON through one shared session -> publish a
small result JSON to the message's ``reply_to`` queue on a confirming channel
-> ack. No validation, no templating, no logging per event. SIGTERM stops
consuming, lets in-flight messages finish for a few seconds and closes.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import aio_pika
import aiohttp
import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, DeliveryMode

from peer_args import pipeline_parser

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
GRACE_SECONDS = 5.0


class ReferencePipeline:
    def __init__(self, channel: AbstractChannel, session: aiohttp.ClientSession, url: str) -> None:
        self.channel = channel
        self.session = session
        self.url = url
        self.in_flight: set[asyncio.Task[Any]] = set()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.in_flight.add(task)
        try:
            await self.handle(message)
        finally:
            self.in_flight.discard(task)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        event = orjson.loads(message.body)
        result: dict[str, Any] = {"event_id": event.get("event_id")}
        try:
            async with self.session.post(
                self.url, data=orjson.dumps(event.get("params")), headers=HEADERS
            ) as resp:
                body = await resp.read()
            ok = 200 <= resp.status < 300
            result |= {"status": "success" if ok else "error", "http_status": resp.status}
            result["response"] = orjson.loads(body) if ok and body else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            result |= {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        await self.channel.default_exchange.publish(
            aio_pika.Message(
                orjson.dumps(result),
                content_type="application/json",
                delivery_mode=DeliveryMode.PERSISTENT,
                correlation_id=message.correlation_id,
            ),
            routing_key=message.reply_to or "",
        )
        await message.ack()


async def run(amqp_url: str, queue_name: str, prefetch: int, url: str) -> None:
    connection = await aio_pika.connect(
        amqp_url, client_properties={"connection_name": f"benchmark reference {queue_name}"}
    )
    connector = aiohttp.TCPConnector(limit=0)  # concurrency is bounded by the prefetch
    timeout = aiohttp.ClientTimeout(total=30)
    async with connection, aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.get_queue(queue_name, ensure=True)
        pipeline = ReferencePipeline(channel, session, url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        tag = await queue.consume(pipeline.on_message)
        await stop.wait()
        await queue.cancel(tag)
        if pipeline.in_flight:
            await asyncio.wait(pipeline.in_flight, timeout=GRACE_SECONDS)


def main() -> None:
    args = pipeline_parser(__doc__).parse_args()
    asyncio.run(run(args.amqp_url, args.queue, args.prefetch, args.target_url))


if __name__ == "__main__":
    main()
