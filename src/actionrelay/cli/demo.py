"""``actionrelay demo``: the whole pipeline on one machine, with one command.

Starts the demo API and a worker against the local broker (on throw-away
queues, so it never touches real traffic), publishes a few example step
events and returns their results.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from actionrelay.broker.broker import Broker
from actionrelay.broker.connection import connect_once
from actionrelay.broker.step_publisher import send_confirmed
from actionrelay.catalog.loader import load_catalog
from actionrelay.cli.demo_api import make_app
from actionrelay.core.secret import Redactor
from actionrelay.service import build_worker
from actionrelay.settings import Settings
from actionrelay.worker import Worker

EVENTS: list[dict[str, Any]] = [
    {
        "event_id": "demo-sms",
        "action": "sendSms",
        "journey": {"id": "welcome", "step_id": "sms-1"},
        "profile_id": "p-42",
        "params": {"phone": "+33612345678", "text": "Welcome!", "tenant": "acme", "country": "fr"},
    },
    {"event_id": "demo-loyalty", "action": "getLoyaltyTier", "params": {"memberId": "m-42"}},
    {
        "event_id": "demo-contact",
        "action": "upsertContact",
        "params": {"contactId": "c-42", "email": "ada@example.com", "optIn": True, "age": 36},
    },
    {"event_id": "demo-404", "action": "getLoyaltyTier", "params": {"memberId": "unknown-7"}},
    {"event_id": "demo-invalid", "action": "sendSms", "params": {"text": "no phone"}},
    {"event_id": "demo-unknown", "action": "sendFax", "params": {}},
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def run_demo(settings: Settings, wait_seconds: float = 20.0) -> list[dict[str, Any]]:
    """The results of ``EVENTS``, in the order they were published."""
    port = _free_port()
    runner = web.AppRunner(make_app(), handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    prefix = f"actionrelay.demo.{uuid.uuid4().hex[:8]}"
    demo = settings.model_copy(
        update={
            "request_queue": f"{prefix}.requests",
            "results_exchange": f"{prefix}.results",
            "results_queue": f"{prefix}.results",
            "dead_letter_queue": f"{prefix}.dead",
            "allow_http_hosts": "127.0.0.1",
            "allow_private_networks": "127.0.0.1/32",
            "http_port": 0,
            "reload_interval_seconds": 0,
            "shutdown_grace_seconds": 2,
        }
    )
    environ = {**os.environ, "DEMO_API_URL": f"http://127.0.0.1:{port}"}
    catalog = load_catalog(Path(demo.actions_dir), environ)
    broker = Broker(demo, connection_name="actionrelay demo")
    worker = await build_worker(demo, catalog, Redactor(catalog.secrets), broker)
    try:
        async with worker.http:
            return await _exchange(demo, worker, wait_seconds)
    finally:
        await broker.close()
        await runner.cleanup()


async def _exchange(demo: Settings, worker: Worker, wait_seconds: float) -> list[dict[str, Any]]:
    running = asyncio.create_task(worker.run())
    connection = await connect_once(
        demo.amqp_urls, client_properties={"connection_name": "actionrelay demo client"}
    )
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    try:
        replies = await channel.declare_queue(exclusive=True, auto_delete=True)
        for event in EVENTS:
            await send_confirmed(channel, demo.request_queue, event, reply_to=replies.name)
        by_id: dict[str, dict[str, Any]] = {}
        async with asyncio.timeout(wait_seconds), replies.iterator() as messages:
            async for message in messages:
                await message.ack()
                result = orjson.loads(message.body)
                by_id[result["event_id"]] = result
                if len(by_id) == len(EVENTS):
                    break
        return [by_id[e["event_id"]] for e in EVENTS]
    finally:
        worker.request_stop()
        await running
        for name in (demo.request_queue, demo.results_queue, demo.dead_letter_queue):
            await channel.queue_delete(name)
        await channel.exchange_delete(demo.results_exchange)
        await connection.close()
