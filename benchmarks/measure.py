"""One measured run of one pipeline: feed step events, time the results, read /proc.

A run declares fresh queues, preloads the backlog (or, for a soak, keeps at
most ``backlog_window`` events unanswered by publishing in batches while the
pipeline consumes), starts the pipeline's processes and times the backlog.
The window opens when every process has a consumer on the request queue and
closes at the last backlog result; events/s and CPU µs/event count only the
results of that window. Then, optionally, a paced stream measures
publish-to-result latency at a fixed offered load.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, DeliveryMode

from pipelines import ACTION_NAME, BenchmarkError, Names, PipelineProcess
from procfs import cpu_snapshot, rss_mb

PUBLISH_BATCH = 500
POLL_SECONDS = 0.02


@dataclass(frozen=True)
class RunSpec:
    """What one run does; the same for both pipelines of a scenario."""

    events: int
    prefetch: int
    delay_ms: float
    processes: int = 1
    latency_events: int = 0
    latency_rate: float = 500.0
    backlog_window: int = 0  # 0: preload every event before the pipeline starts
    rss_marks: tuple[int, ...] = ()
    stall_seconds: float = 60.0

    def preloaded(self) -> int:
        return min(self.events, self.backlog_window) if self.backlog_window else self.events


@dataclass
class RunStats:
    pipeline: str
    processes: int
    events_per_s: float
    cpu_us_per_event: float  # all of the pipeline's processes, over the window
    peak_rss_mb: float  # the largest process's VmHWM
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_share: dict[str, float] = field(default_factory=dict)  # % of one core, by role
    rss_at_mb: dict[int, float] = field(default_factory=dict)  # VmRSS at result counts
    peak_open_calls: int = 0  # at the target
    metrics_successes: float | None = None  # from /metrics, actionrelay only
    results: int = 0
    profiles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    at: float
    count: int
    cpu: dict[str, float]


class ResultCollector:
    """Result events by correlation id: arrival times, failures, CPU and memory snapshots."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.expected = spec.events
        self.watched: dict[str, int] = {}
        self.pids: list[int] = []
        self.channel: AbstractChannel | None = None
        self.arrived: dict[str, float] = {}
        self.sent: dict[str, float] = {}
        self.failures: list[str] = []
        self.rss_at: dict[int, float] = {}
        self.start: Snapshot | None = None
        self.end: Snapshot | None = None
        self.last_arrival = time.perf_counter()

    def watch(self, pids: list[int], watched: dict[str, int], channel: AbstractChannel) -> None:
        """The pipeline's processes (memory), every process whose CPU is reported, and the
        runner's channel (a broker restart closes it, and the run means nothing then)."""
        self.pids = pids
        self.watched = watched
        self.channel = channel

    def snapshot(self) -> Snapshot:
        return Snapshot(time.perf_counter(), len(self.arrived), cpu_snapshot(self.watched))

    async def on_result(self, message: AbstractIncomingMessage) -> None:
        now = self.last_arrival = time.perf_counter()
        key = message.correlation_id or ""
        if key in self.arrived:
            self.failures.append(f"duplicate result for {key}")
            return
        self.arrived[key] = now
        if orjson.loads(message.body).get("status") != "success":
            self.failures.append(message.body.decode(errors="replace")[:500])
        count = len(self.arrived)
        if count in self.spec.rss_marks:
            self.rss_at[count] = sum(rss_mb(pid) for pid in self.pids)
        if count == self.spec.events:
            self.end = self.snapshot()

    def check(
        self, processes: list[PipelineProcess], tasks: Sequence[asyncio.Future[None]]
    ) -> None:
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                task.result()
        if self.channel is not None and self.channel.is_closed:
            raise BenchmarkError("the broker closed the runner's channel (restarted?)")
        if self.failures:
            raise BenchmarkError(f"{len(self.failures)} failed results, e.g. {self.failures[0]}")
        for p in processes:
            if p.process.returncode is not None:
                raise BenchmarkError(f"pipeline process {p.pid} exited with {p.process.returncode}")
        if time.perf_counter() - self.last_arrival > self.spec.stall_seconds:
            raise BenchmarkError(f"no result for {self.spec.stall_seconds:g} s: stalled")

    async def until(
        self,
        count: int,
        processes: list[PipelineProcess],
        tasks: Sequence[asyncio.Future[None]] = (),
    ) -> None:
        """Wait for ``count`` results; failures, an exited process, a failed task or a stall
        end the run."""
        self.last_arrival = max(self.last_arrival, time.perf_counter())
        while len(self.arrived) < count:
            self.check(processes, tasks)
            await asyncio.sleep(POLL_SECONDS * 2)
        self.check(processes, tasks)

    def latencies_ms(self) -> list[float]:
        return sorted((self.arrived[key] - sent) * 1000 for key, sent in self.sent.items())


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))]


# --- events ------------------------------------------------------------------------------


def step_event(event_id: str, reply_queue: str) -> aio_pika.Message:
    body = {
        "event_id": event_id,
        "action": ACTION_NAME,
        "journey": {"id": "benchmark", "version": "1", "step_id": "post-1"},
        "profile_id": f"p-{event_id}",
        "params": {
            "phone": "+33612345678",
            "text": "Your order has shipped and will arrive tomorrow.",
            "tenant": "acme",
            "sent_at": time.time(),
        },
    }
    return aio_pika.Message(
        orjson.dumps(body),
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        correlation_id=event_id,
        message_id=event_id,
        reply_to=reply_queue,
    )


async def publish_range(exchange: AbstractExchange, names: Names, start: int, stop: int) -> None:
    for first in range(start, stop, PUBLISH_BATCH):
        await asyncio.gather(
            *(
                exchange.publish(
                    step_event(f"{names.suffix}-{i}", names.reply_queue), names.request_queue
                )
                for i in range(first, min(first + PUBLISH_BATCH, stop))
            )
        )


async def feed(
    exchange: AbstractExchange, names: Names, spec: RunSpec, collector: ResultCollector
) -> None:
    """Publish the rest of the backlog in batches, keeping at most the window unanswered."""
    published = spec.preloaded()
    while published < spec.events:
        if published - len(collector.arrived) + PUBLISH_BATCH > spec.backlog_window:
            await asyncio.sleep(POLL_SECONDS)
            continue
        batch_end = min(published + PUBLISH_BATCH, spec.events)
        await publish_range(exchange, names, published, batch_end)
        published = batch_end


async def paced_stream(
    exchange: AbstractExchange, names: Names, collector: ResultCollector, spec: RunSpec
) -> None:
    """Publish at a fixed rate; each event's latency is its result's arrival minus its send."""
    publishes: list[Awaitable[Any]] = []
    started = time.perf_counter()
    for i in range(spec.latency_events):
        await asyncio.sleep(max(0.0, started + i / spec.latency_rate - time.perf_counter()))
        event_id = f"{names.suffix}-paced-{i}"
        collector.sent[event_id] = time.perf_counter()
        message = step_event(event_id, names.reply_queue)
        publishes.append(asyncio.ensure_future(exchange.publish(message, names.request_queue)))
    await asyncio.gather(*publishes)


async def open_window(
    channel: AbstractChannel, names: Names, spec: RunSpec, collector: ResultCollector
) -> None:
    """Start the clock once every process has a consumer on the request queue.

    From there to the last backlog result is the makespan of the backlog: with
    a slow endpoint it includes the first round trip, so a run bound by
    prefetch / latency measures exactly that bound when the backlog is a whole
    number of prefetch-sized waves.
    """
    deadline = time.perf_counter() + spec.stall_seconds
    while True:
        queue = await channel.declare_queue(names.request_queue, passive=True)
        consumers = queue.declaration_result.consumer_count or 0
        if consumers >= spec.processes:
            break
        if time.perf_counter() > deadline:
            raise BenchmarkError(f"{consumers} of {spec.processes} processes consuming")
        await asyncio.sleep(POLL_SECONDS)
    collector.start = collector.snapshot()
