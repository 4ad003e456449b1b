"""A peer in the benchmark: the same job written with FastStream, as its docs suggest.

    .venv/bin/python benchmarks/faststream_peer.py --queue Q --target-url URL [--prefetch P]

A ``RabbitBroker`` subscriber on the (already declared) request queue with a
pydantic-typed handler: parse the contract step event, POST its ``params`` as
JSON through one shared aiohttp session, publish a persistent result to
``reply_to`` (FastStream's default confirming channel) and let FastStream ack.
No per-event log line (FastStream's own logger is at WARNING). SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import aiohttp
import orjson
from faststream.rabbit import Channel, RabbitBroker, RabbitMessage, RabbitQueue
from pydantic import BaseModel, Field

from peer_args import pipeline_parser

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class StepEvent(BaseModel):
    """The contract's step event (docs/asyncapi.yaml), as a typed handler would take it."""

    event_id: str = Field(min_length=1, max_length=256)
    action: str = Field(min_length=1, max_length=256)
    journey: dict[str, Any] | None = None
    profile_id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


def build(url: str, queue: str, prefetch: int, target: str) -> tuple[RabbitBroker, list[Any]]:
    logger = logging.getLogger("faststream-peer")
    logger.setLevel(logging.WARNING)
    broker = RabbitBroker(url, logger=logger, graceful_timeout=5.0)
    session: list[aiohttp.ClientSession] = []

    @broker.subscriber(
        RabbitQueue(queue, declare=False),
        channel=Channel(prefetch_count=prefetch),
        no_reply=True,
    )
    async def handle(event: StepEvent, message: RabbitMessage) -> None:
        result: dict[str, Any] = {"event_id": event.event_id, "action": event.action}
        try:
            async with session[0].post(
                target, data=orjson.dumps(event.params), headers=HEADERS
            ) as response:
                body = await response.read()
            ok = 200 <= response.status < 300
            result |= {"status": "success" if ok else "error", "http_status": response.status}
            result["response"] = orjson.loads(body) if ok and body else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            result |= {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        await broker.publish(
            result,
            routing_key=message.reply_to or "",
            persist=True,
            correlation_id=message.correlation_id,
        )

    return broker, session


async def run(url: str, queue: str, prefetch: int, target: str) -> None:
    broker, session = build(url, queue, prefetch, target)
    connector = aiohttp.TCPConnector(limit=0)  # concurrency is bounded by the prefetch
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as client:
        session.append(client)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await broker.start()
        await stop.wait()
        await broker.stop()


def main() -> None:
    args = pipeline_parser(__doc__).parse_args()
    asyncio.run(run(args.amqp_url, args.queue, args.prefetch, args.target_url))


if __name__ == "__main__":
    main()
