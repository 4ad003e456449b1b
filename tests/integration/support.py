"""Real collaborators for integration tests: a recording HTTP API and a worker harness."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import orjson
import pika  # type: ignore[import-untyped]
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aiohttp import web

from actionrelay.broker.broker import Broker
from actionrelay.broker.topology import Topology
from actionrelay.catalog.loader import load_catalog
from actionrelay.core.event import salvage_ids
from actionrelay.core.secret import Redactor
from actionrelay.http.client import HttpClient
from actionrelay.service import build_worker
from actionrelay.settings import Settings
from actionrelay.worker import Worker
from tests import contract


@dataclass(frozen=True)
class Received:
    """One request as the third-party API saw it."""

    method: str
    path: str
    raw_path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    json: Any = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: bytes | None = None


class RecordingApi:
    """A real aiohttp server on 127.0.0.1 that records requests and answers scripted replies.

    Replies queued with ``script`` are used in order; after that ``default`` answers.
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.scripted: deque[Reply] = deque()
        self.default = Reply()
        self.in_flight = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        self.scripted.extend(replies)

    def reply_for(self, received: Received) -> Reply:
        """The scripted replies in order, then ``default``; subclasses may decide per request."""
        return self.scripted.popleft() if self.scripted else self.default

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        received = Received(
            method=request.method,
            path=request.path,
            raw_path=request.raw_path.split("?")[0],
            query=list(request.query.items()),
            headers=dict(request.headers),
            body=body,
            at=time.monotonic(),
        )
        self.received.append(received)
        reply = self.reply_for(received)
        self.in_flight += 1
        try:
            if reply.delay:
                await asyncio.sleep(reply.delay)
        finally:
            self.in_flight -= 1
        payload = reply.body if reply.body is not None else orjson.dumps(reply.json)
        return web.Response(
            body=payload,
            status=reply.status,
            headers=reply.headers,
            content_type="application/json",
        )


async def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll until ``check()`` holds, or TimeoutError saying ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {timeout:g} s for {what}")
        await asyncio.sleep(0.01)


@dataclass
class ProcessLog:
    """A spawned worker's stderr, read as it comes so that the pipe never fills up."""

    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def read(self, stream: asyncio.StreamReader) -> None:
        pending = b""
        while chunk := await stream.read(64 * 1024):
            *complete, pending = (pending + chunk).split(b"\n")
            self.lines.extend(line.decode(errors="replace") for line in complete)
        if pending:
            self.lines.append(pending.decode(errors="replace"))

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The JSON log records, optionally only those whose ``event`` is ``name``."""
        records = []
        for line in self.lines:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and name in (None, record.get("event")):
                records.append(record)
        return records

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.lines[-lines:])


def worker_env(settings: Settings) -> dict[str, str]:
    """The ACTIONRELAY_* variables that make a worker process use ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONRELAY_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"ACTIONRELAY_{name.upper()}"] = str(value)
    return env


class WorkerHarness:
    """Declares the test's topology, runs workers, publishes events and collects results."""

    def __init__(self, settings: Settings, channel: AbstractChannel, api: RecordingApi) -> None:
        self.settings = settings
        self.channel = channel
        self.api = api
        self._workers: list[tuple[Worker, Broker, HttpClient, asyncio.Task[None]]] = []
        self._processes: list[asyncio.subprocess.Process] = []
        self._logs: dict[int, ProcessLog] = {}
        self._ended_on_purpose: set[int] = set()
        self._declared = False
        # The contract (docs/asyncapi.yaml) is checked on every event sent and every
        # result and dead letter read: what the document says of each event sent, by id.
        self._result_queues = {settings.results_queue}
        self._refusals: dict[str, list[str]] = {}

    def action(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Write an action file; ``url`` defaults to the recording API."""
        full = {"url": f"{self.api.url}/hook", **definition}
        path: Path = self.settings.actions_dir / f"{full['name']}.json"
        path.write_bytes(orjson.dumps(full))
        return full

    async def declare(self) -> None:
        if not self._declared:
            await Topology(self.settings).declare(self.channel)
            self._declared = True

    async def start_worker(self, **overrides: Any) -> Worker:
        """A worker in this process, as ``actionrelay run`` builds it."""
        await self.declare()
        settings = self.settings.model_copy(update=overrides)
        broker = Broker(settings, connection_name=f"worker {settings.worker_id}")
        catalog = load_catalog(settings.actions_dir)
        worker = await build_worker(settings, catalog, Redactor(catalog.secrets), broker)
        http = worker.http
        await http.open()
        task = asyncio.create_task(worker.run())
        self._workers.append((worker, broker, http, task))
        return worker

    async def stop_workers(self) -> None:
        for worker, broker, http, task in self._workers:
            worker.request_stop()
            await task
            await http.close()
            await broker.close()
        self._workers.clear()

    async def spawn_worker(
        self, *, extra_env: dict[str, str] | None = None, **overrides: Any
    ) -> asyncio.subprocess.Process:
        """A worker in its own process (``python -m actionrelay run``)."""
        await self.declare()
        settings = self.settings.model_copy(update=overrides)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "actionrelay",
            "run",
            env=worker_env(settings) | (extra_env or {}),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        log = ProcessLog()
        log.reader = asyncio.create_task(log.read(process.stderr))
        self._logs[process.pid] = log
        self._processes.append(process)
        return process

    async def terminate(
        self, process: asyncio.subprocess.Process, sig: int = signal.SIGTERM, timeout: float = 15.0
    ) -> int:
        """Send ``sig`` and wait for the process to exit; returns its exit code."""
        self._ended_on_purpose.add(process.pid)
        process.send_signal(sig)
        return await asyncio.wait_for(process.wait(), timeout)

    def live_log(self, process: asyncio.subprocess.Process) -> ProcessLog:
        """What a running worker process has written to stderr so far."""
        return self._logs[process.pid]

    async def process_log(self, process: asyncio.subprocess.Process) -> ProcessLog:
        """Everything an exited worker process wrote to stderr."""
        if process.returncode is None:
            raise RuntimeError(f"worker process {process.pid} is still running")
        log = self._logs[process.pid]
        if log.reader is not None:
            await log.reader
        return log

    async def wait_consuming(self, consumers: int, timeout: float = 15.0) -> None:
        """Until the request queue has ``consumers`` consumers (a spawned worker is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self._fail_if_a_process_died()
            state = await self.queue_state(self.settings.request_queue)
            if (state.consumer_count or 0) >= consumers:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"fewer than {consumers} consumers on {self.settings.request_queue}")

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Until the request queue has no consumer left.

        The broker takes back a stopped worker's unacked events as it drops its
        consumer, so from then on the queue depth tells what awaits redelivery.
        """
        deadline = time.monotonic() + timeout
        while (await self.queue_state(self.settings.request_queue)).consumer_count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"consumers are still on {self.settings.request_queue}")
            await asyncio.sleep(0.02)

    async def _fail_if_a_process_died(self) -> None:
        """A worker that exited without ``terminate`` will not consume: show why."""
        for process in self._processes:
            if process.returncode is not None and process.pid not in self._ended_on_purpose:
                log = await self.process_log(process)
                raise RuntimeError(
                    f"worker process {process.pid} exited with {process.returncode}:\n{log.tail()}"
                )

    async def publish(
        self,
        event: dict[str, Any] | bytes,
        *,
        reply_to: str | None = None,
        correlation_id: str | None = None,
        message_id: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> None:
        await self.declare()
        body = event if isinstance(event, bytes) else orjson.dumps(event)
        message = aio_pika.Message(
            body=body,
            headers=headers,
            reply_to=reply_to,
            correlation_id=correlation_id,
            message_id=message_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        self._sent(body, amqp_properties(message), headers)
        await self.channel.default_exchange.publish(
            message, routing_key=self.settings.request_queue
        )

    async def publish_bare(
        self,
        body: bytes,
        *,
        reply_to: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Publish with only the properties given, as producers in other languages do.

        aio-pika (aiormq) gives every message a random ``message_id``; pika does not.
        """
        await self.declare()
        properties = {"reply_to": reply_to, "correlation_id": correlation_id, "delivery_mode": 2}
        self._sent(body, properties, None)
        await asyncio.to_thread(
            _pika_publish,
            self.settings.amqp_url,
            self.settings.request_queue,
            body,
            {"reply_to": reply_to, "correlation_id": correlation_id, "delivery_mode": 2},
        )

    async def reply_queue(self) -> str:
        queue = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        return self.expect_results(queue.name)

    def expect_results(self, queue_name: str) -> str:
        """Messages read from ``queue_name`` are checked as result events."""
        self._result_queues.add(queue_name)
        return queue_name

    def _sent(
        self, body: bytes, properties: dict[str, Any], headers: dict[str, Any] | None
    ) -> None:
        """Remember whether the document accepts this event, under each id it has."""
        refusals = contract.step_event_problems(body, properties, headers)
        event_id, _ = salvage_ids(body)
        for key in (event_id, properties.get("correlation_id"), properties.get("message_id")):
            if key:
                self._refusals[key] = refusals

    def _check(self, queue_name: str, message: AbstractIncomingMessage) -> None:
        """A result or dead letter read in a test matches docs/asyncapi.yaml."""
        properties = amqp_properties(message)
        if queue_name == self.settings.dead_letter_queue:
            problems = contract.dead_letter_problems(message.body, properties, message.headers)
        elif queue_name in self._result_queues:
            problems = contract.result_problems(message.body, properties, message.headers)
            problems += self._answer_problems(message)
        else:
            return
        assert not problems, f"{queue_name}: not as docs/asyncapi.yaml says: {problems}"

    def _answer_problems(self, message: AbstractIncomingMessage) -> list[str]:
        """invalid_event exactly for the events the document refuses."""
        result = orjson.loads(message.body)
        keys = (result.get("event_id"), message.correlation_id)
        refusals = next((self._refusals[k] for k in keys if k in self._refusals), None)
        if refusals is None:
            return []  # not sent through this harness
        invalid = (result.get("error") or {}).get("type") == "invalid_event"
        if refusals and not invalid:
            return [f"the document refuses the event ({refusals}); it got {result['status']}"]
        if invalid and not refusals:
            return [f"the document accepts the event; it got {result['error']['message']!r}"]
        return []

    async def bind_results(self, routing_key: str) -> str:
        """A queue of this test that gets the results published with ``routing_key``."""
        await self.declare()
        queue = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(self.settings.results_exchange, routing_key=routing_key)
        return self.expect_results(queue.name)

    async def collect(
        self, queue_name: str, count: int, timeout: float = 10.0, *, check: bool = True
    ) -> list[AbstractIncomingMessage]:
        """Exactly ``count`` messages from ``queue_name`` (acked), or TimeoutError; each
        checked against docs/asyncapi.yaml unless ``check`` is false (a test's own
        stand-in messages)."""
        queue = await self.channel.declare_queue(queue_name, passive=True)
        got: list[AbstractIncomingMessage] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(got)} of {count} messages on {queue_name}")
                await asyncio.sleep(0.02)
                continue
            if check:
                self._check(queue_name, message)
            got.append(message)
        return got

    async def results(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        messages = await self.collect(self.settings.results_queue, count, timeout)
        return [orjson.loads(m.body) for m in messages]

    async def dead_letters(
        self, count: int, timeout: float = 10.0, *, check: bool = True
    ) -> list[AbstractIncomingMessage]:
        return await self.collect(self.settings.dead_letter_queue, count, timeout, check=check)

    async def drain(self, queue_name: str) -> list[AbstractIncomingMessage]:
        """Every message ready on ``queue_name`` now (acked)."""
        queue = await self.channel.declare_queue(queue_name, passive=True)
        got = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            self._check(queue_name, message)
            got.append(message)
        return got

    async def queue_state(self, queue_name: str) -> aiormq.spec.Queue.DeclareOk:
        """The broker's counts now: a robust channel's ``declare_queue(passive=True)``
        returns the queue object it already has, with the counts of its first declaration."""
        channel = await self.channel.get_underlay_channel()
        return await channel.queue_declare(queue_name, passive=True)

    async def depth(self, queue_name: str) -> int:
        """Messages ready on ``queue_name`` (delivered but unacked ones are not counted)."""
        return (await self.queue_state(queue_name)).message_count or 0

    async def close(self) -> None:
        await self.stop_workers()
        for process in self._processes:
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
                await process.wait()
            await self.process_log(process)


def _pika_publish(url: str, queue: str, body: bytes, properties: dict[str, Any]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", queue, body, pika.BasicProperties(**properties))
    finally:
        connection.close()


def step_event(event_id: str, action: str, **fields: Any) -> dict[str, Any]:
    """A step event as the journey engine sends it; ``fields`` go on top."""
    return {"event_id": event_id, "action": action, **fields}


def close_connection(name: str) -> None:
    """Have RabbitMQ close the client connection named ``name``."""
    listed = subprocess.run(
        ["rabbitmqctl", "list_connections", "pid", "client_properties", "--quiet"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    ).stdout
    pids = [
        line.split("\t", 1)[0]
        for line in listed.splitlines()
        if f'{{"connection_name","{name}"}}' in line
    ]
    assert len(pids) == 1, f"connections named {name!r}: {pids}"
    subprocess.run(
        ["rabbitmqctl", "close_connection", pids[0], "test: connection dropped"],
        check=True,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def amqp_properties(message: aio_pika.Message | AbstractIncomingMessage) -> dict[str, Any]:
    """The basic properties the document describes, as plain values."""
    mode = message.delivery_mode
    return {
        "content_type": message.content_type,
        "delivery_mode": int(mode) if mode is not None else None,
        "type": message.type,
        "message_id": message.message_id,
        "correlation_id": message.correlation_id,
        "reply_to": message.reply_to,
    }
