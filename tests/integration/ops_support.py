"""Helpers for the operating-command tests: run the CLI, fill and read queues fast."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from click.testing import CliRunner, Result

from actionrelay.cli.main import main
from actionrelay.settings import Settings

WIDE = {"COLUMNS": "250"}  # rich tables must not fold the values the tests look for


async def poll(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    """Until ``await check()`` holds, or TimeoutError saying ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {timeout:g} s for {what}")
        await asyncio.sleep(0.005)


async def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """``actionrelay ARGS`` in a thread (it calls ``asyncio.run``), output captured."""
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, main, list(args), env={**WIDE, **(env or {})}, catch_exceptions=False
    )


def dlq_args(settings: Settings) -> list[str]:
    return ["--amqp-url", settings.amqp_url, "--queue", settings.dead_letter_queue]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]


@dataclass(frozen=True)
class Finished:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


async def run_process(*args: str, env: dict[str, str] | None = None) -> Finished:
    """``python -m actionrelay ARGS`` in its own process: nothing else in this process
    (a worker's log lines, for one) can end up in its output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "actionrelay",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **WIDE, **(env or {})},
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode())


async def spawn_cli(*args: str) -> asyncio.subprocess.Process:
    """``python -m actionrelay ARGS`` as its own process (to be killed), output discarded."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "actionrelay",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def dead_letter(
    event_id: str,
    *,
    action: str = "notify",
    error_type: str = "http_error",
    http_status: int | None = 503,
    failed_at: datetime | None = None,
) -> aio_pika.Message:
    """A dead letter as ``Broker.dead_letter`` writes it, for tests that need many fast."""
    failed = (failed_at or datetime.now(UTC)).isoformat()
    headers: dict[str, Any] = {
        "x-actionrelay-attempts": 4,
        "x-actionrelay-first-received-at": failed,
        "x-actionrelay-first-attempt-at": failed,
        "x-actionrelay-error-type": error_type,
        "x-actionrelay-error-message": f"action {action}: failed ({error_type})",
        "x-actionrelay-status-code": f"http_{http_status}" if http_status else "timedout",
        "x-actionrelay-last-attempt-at": failed,
        "x-actionrelay-action": action,
        "x-actionrelay-action-version": 1,
        "x-actionrelay-failed-at": failed,
        "x-actionrelay-worker-id": "test-worker",
    }
    if http_status is not None:
        headers["x-actionrelay-http-status"] = http_status
    body = {"event_id": event_id, "action": action, "params": {"id": event_id}}
    return aio_pika.Message(
        orjson.dumps(body),
        headers=headers,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event_id,
    )


async def publish_all(
    channel: AbstractChannel,
    queue: str,
    messages: Iterable[aio_pika.Message],
    *,
    batch: int = 500,
) -> None:
    """Publish in confirmed batches of ``batch``, in order within the queue."""
    pending: list[aio_pika.Message] = []
    for message in messages:
        pending.append(message)
        if len(pending) == batch:
            await _publish_batch(channel, queue, pending)
    await _publish_batch(channel, queue, pending)


async def _publish_batch(
    channel: AbstractChannel, queue: str, batch: list[aio_pika.Message]
) -> None:
    exchange = channel.default_exchange
    await asyncio.gather(*(exchange.publish(m, routing_key=queue) for m in batch))
    batch.clear()


async def take_all(channel: AbstractChannel, queue_name: str, timeout: float = 20.0) -> list[str]:
    """Consume (and ack) everything ready on ``queue_name``; the event ids in queue order."""
    underlay = await channel.get_underlay_channel()
    expected = (await underlay.queue_declare(queue_name, passive=True)).message_count or 0
    got: list[AbstractIncomingMessage] = []
    done = asyncio.Event()

    async def receive(message: AbstractIncomingMessage) -> None:
        got.append(message)
        if len(got) >= expected:
            done.set()

    if expected:
        queue = await channel.declare_queue(queue_name, passive=True)
        tag = await queue.consume(receive, no_ack=True)
        await asyncio.wait_for(done.wait(), timeout)
        await queue.cancel(tag)
    return [orjson.loads(m.body)["event_id"] for m in got]
