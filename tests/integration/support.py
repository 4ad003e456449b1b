"""Real collaborators for integration tests: a recording HTTP API and a worker harness."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aiohttp import web

from actionrelay.broker import Broker, Topology
from actionrelay.catalog import load_catalog
from actionrelay.delivery import HttpClient
from actionrelay.settings import Settings
from actionrelay.worker import Worker


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

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(
            Received(
                method=request.method,
                path=request.path,
                raw_path=request.raw_path.split("?")[0],
                query=list(request.query.items()),
                headers=dict(request.headers),
                body=body,
                at=time.monotonic(),
            )
        )
        reply = self.scripted.popleft() if self.scripted else self.default
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


def worker_env(settings: Settings) -> dict[str, str]:
    """The ACTIONRELAY_* variables that make a worker process use ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONRELAY_")}
    for name, value in settings.model_dump().items():
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
        self._declared = False

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
        await broker.connect()
        http = HttpClient()
        await http.open()
        worker = Worker(settings, load_catalog(settings.actions_dir), broker, http)
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

    async def spawn_worker(self, **overrides: Any) -> asyncio.subprocess.Process:
        """A worker in its own process (``python -m actionrelay run``)."""
        await self.declare()
        settings = self.settings.model_copy(update=overrides)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "actionrelay",
            "run",
            env=worker_env(settings),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._processes.append(process)
        return process

    async def wait_consuming(self, consumers: int, timeout: float = 15.0) -> None:
        """Until the request queue has ``consumers`` consumers (a spawned worker is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            queue = await self.channel.declare_queue(self.settings.request_queue, passive=True)
            if queue.declaration_result.consumer_count >= consumers:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"fewer than {consumers} consumers on {self.settings.request_queue}")

    async def publish(
        self,
        event: dict[str, Any] | bytes,
        *,
        reply_to: str | None = None,
        correlation_id: str | None = None,
        message_id: str | None = None,
    ) -> None:
        await self.declare()
        body = event if isinstance(event, bytes) else orjson.dumps(event)
        message = aio_pika.Message(
            body=body,
            reply_to=reply_to,
            correlation_id=correlation_id,
            message_id=message_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self.channel.default_exchange.publish(
            message, routing_key=self.settings.request_queue
        )

    async def reply_queue(self) -> str:
        queue = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        return queue.name

    async def collect(
        self, queue_name: str, count: int, timeout: float = 10.0
    ) -> list[AbstractIncomingMessage]:
        """Exactly ``count`` messages from ``queue_name`` (acked), or TimeoutError."""
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
            got.append(message)
        return got

    async def results(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        messages = await self.collect(self.settings.results_queue, count, timeout)
        return [orjson.loads(m.body) for m in messages]

    async def depth(self, queue_name: str) -> int:
        queue = await self.channel.declare_queue(queue_name, passive=True)
        count = queue.declaration_result.message_count
        return count or 0

    async def close(self) -> None:
        await self.stop_workers()
        for process in self._processes:
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
                await process.wait()
