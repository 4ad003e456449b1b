"""The long-lived pieces of a benchmark (broker connection, target API) and one run.

``open_lab`` connects once; ``Lab.bench(delay_ms)`` starts a target API with
that latency and writes the benchmark's action; ``Bench.run(pipeline, spec)``
measures one run on fresh queues and deletes them afterwards, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aio_pika
import aio_pika.exceptions
import aiohttp
import aiormq.exceptions
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractQueue

from actionrelay.broker.topology import Topology
from measure import (
    ResultCollector,
    RunSpec,
    RunStats,
    Snapshot,
    feed,
    open_window,
    paced_stream,
    percentile,
    publish_range,
)
from pipelines import (
    BenchmarkError,
    Launch,
    Names,
    PipelineProcess,
    Target,
    byte_compile_actionrelay,
    log_tail,
    results_by_status,
    start_pipeline,
    stop_pipeline,
    target_server,
    write_action,
)
from procfs import broker_pid, peak_rss_mb, rss_mb

REST_SETTLE_SECONDS = 2.0  # after the first consumer: imports done, connections open
# What a broker that closes or restarts under a run raises (a test may restart it).
CONNECTION_LOST = (ConnectionError, aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPError)


async def connect(amqp_url: str, attempts: int = 30) -> AbstractConnection:
    """The runner's connection; waits up to a minute for a broker that is restarting."""
    for attempt in range(1, attempts + 1):
        try:
            return await aio_pika.connect(
                amqp_url, client_properties={"connection_name": "benchmark runner"}
            )
        except CONNECTION_LOST:
            if attempt == attempts:
                raise
            await asyncio.sleep(2)
    raise AssertionError("unreachable")


@dataclass
class Lab:
    connection: AbstractConnection
    session: aiohttp.ClientSession
    amqp_url: str
    worker_env: tuple[str, ...] = ()
    profile: bool = False
    broker: int | None = None
    suffixes: list[str] = field(default_factory=list)  # every run's, for the final sweep

    async def live_connection(self) -> AbstractConnection:
        """The connection, opened again if the broker closed it."""
        if self.connection.is_closed:
            self.connection = await connect(self.amqp_url)
            self.broker = broker_pid()
        return self.connection

    @contextlib.asynccontextmanager
    async def bench(self, delay_ms: float) -> AsyncIterator[Bench]:
        async with target_server(delay_ms, self.session) as target:
            with tempfile.TemporaryDirectory(prefix="actionrelay-bench-") as tmp:
                # Logs apart from the actions: a growing file there would trigger hot reloads.
                actions_dir = Path(tmp) / "actions"
                actions_dir.mkdir()
                write_action(actions_dir, target.url)
                yield Bench(self, target, Path(tmp), actions_dir)


@contextlib.asynccontextmanager
async def open_lab(
    amqp_url: str, worker_env: tuple[str, ...] = (), *, profile: bool = False
) -> AsyncIterator[Lab]:
    byte_compile_actionrelay()
    lab = Lab(await connect(amqp_url, attempts=1), aiohttp.ClientSession(), amqp_url)
    lab.worker_env, lab.profile, lab.broker = worker_env, profile, broker_pid()
    try:
        yield lab
    finally:
        await lab.session.close()
        await lab.connection.close()


@dataclass
class Bench:
    """A target API with one latency, and the action file pointing at it."""

    lab: Lab
    target: Target
    workdir: Path
    actions_dir: Path

    async def run(self, pipeline: str, spec: RunSpec) -> RunStats:
        names = Names(pipeline)
        self.lab.suffixes.append(names.suffix)
        launch = Launch(
            self.lab.amqp_url,
            spec.prefetch,
            self.target.url,
            self.actions_dir,
            self.lab.worker_env,
            self.lab.profile,
            spec.delay_ms,
        )
        log_path = self.workdir / f"{pipeline}-{names.suffix}.log"
        try:
            connection = await self.lab.live_connection()
            async with connection.channel(publisher_confirms=True) as channel:
                with log_path.open("wb") as log:
                    return await self.measure(channel, names, spec, launch, log)
        except (BenchmarkError, TimeoutError, *CONNECTION_LOST):
            print(f"--- last lines of the {pipeline} log:", *log_tail(log_path), sep="\n")
            raise
        finally:
            await delete_broker_objects(await self.lab.live_connection(), names)

    async def rest_rss_mb(self, pipeline: str, prefetch: int) -> float:
        """RSS of one process of ``pipeline`` consuming an empty queue: what it costs idle."""
        names = Names(pipeline)
        self.lab.suffixes.append(names.suffix)
        spec = RunSpec(events=1, prefetch=prefetch, delay_ms=0)
        launch = Launch(
            self.lab.amqp_url, prefetch, self.target.url, self.actions_dir, self.lab.worker_env
        )
        log_path = self.workdir / f"{pipeline}-{names.suffix}-rest.log"
        connection = await self.lab.live_connection()
        try:
            async with connection.channel() as channel:
                await declare(channel, names, spec, self.lab.amqp_url)
                with log_path.open("wb") as log:
                    [process] = await start_pipeline(names, launch, 1, log)
                    try:
                        await wait_consuming(channel, names.request_queue, process)
                        await asyncio.sleep(REST_SETTLE_SECONDS)
                        return rss_mb(process.pid)
                    finally:
                        await stop_pipeline([process])
        finally:
            await delete_broker_objects(await self.lab.live_connection(), names)

    async def measure(
        self,
        channel: AbstractChannel,
        names: Names,
        spec: RunSpec,
        launch: Launch,
        log: IO[bytes],
    ) -> RunStats:
        replies = await declare(channel, names, spec, self.lab.amqp_url)
        await publish_range(channel.default_exchange, names, 0, spec.preloaded())
        await self.target.stats(reset=True)
        collector = ResultCollector(spec)
        await replies.consume(collector.on_result, no_ack=True)
        processes = await start_pipeline(names, launch, spec.processes, log)
        try:
            collector.watch([p.pid for p in processes], self.watched(names, processes), channel)
            await self.backlog(channel, names, spec, collector, processes)
            if spec.latency_events:
                collector.expected += spec.latency_events
                await paced_stream(channel.default_exchange, names, collector, spec)
                await collector.until(collector.expected, processes)
            return await self.summary(names, spec, collector, processes)
        finally:
            await stop_pipeline(processes)

    def watched(self, names: Names, processes: list[PipelineProcess]) -> dict[str, int]:
        """Every process whose CPU the run reports, by role."""
        roles = {f"{names.pipeline} {i + 1}": p.pid for i, p in enumerate(processes)}
        roles |= {"target": self.target.pid, "runner": os.getpid()}
        if self.lab.broker is not None:
            roles["broker"] = self.lab.broker
        return roles

    async def backlog(
        self,
        channel: AbstractChannel,
        names: Names,
        spec: RunSpec,
        collector: ResultCollector,
        processes: list[PipelineProcess],
    ) -> None:
        tasks = [
            asyncio.ensure_future(open_window(channel, names, spec, collector)),
            asyncio.ensure_future(feed(channel.default_exchange, names, spec, collector)),
        ]
        try:
            await collector.until(spec.events, processes, tasks)
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        if collector.start is None or collector.start.count >= spec.events:
            raise BenchmarkError("the backlog was gone before every process was measured")

    async def summary(
        self,
        names: Names,
        spec: RunSpec,
        collector: ResultCollector,
        processes: list[PipelineProcess],
    ) -> RunStats:
        start, end = collector.start, collector.end
        assert start is not None
        assert end is not None
        pipeline_roles = [role for role in start.cpu if role.startswith(names.pipeline)]
        latencies = collector.latencies_ms()
        seen = await self.target.stats()
        return RunStats(
            pipeline=names.pipeline,
            processes=spec.processes,
            events_per_s=(end.count - start.count) / (end.at - start.at),
            cpu_us_per_event=cpu_delta(start, end, pipeline_roles)
            / (end.count - start.count)
            * 1e6,
            peak_rss_mb=max(peak_rss_mb(p.pid) for p in processes),
            p50_ms=percentile(latencies, 0.50) if latencies else None,
            p99_ms=percentile(latencies, 0.99) if latencies else None,
            cpu_share={
                role: cpu_delta(start, end, [role]) / (end.at - start.at) * 100
                for role in start.cpu
                if role in end.cpu
            },
            rss_at_mb=dict(collector.rss_at),
            peak_open_calls=seen["peak"],
            metrics_successes=await self.metrics_successes(processes, collector.expected),
            results=len(collector.arrived),
            profiles=tuple(
                str(names.profile_path(i)) for i in range(spec.processes) if self.lab.profile
            ),
        )

    async def metrics_successes(
        self, processes: list[PipelineProcess], expected: int
    ) -> float | None:
        """Successful results counted by the workers' /metrics (metrics on, as deployed)."""
        ports = [p.metrics_port for p in processes if p.metrics_port is not None]
        if not ports:
            return None
        total = 0.0
        for attempt in range(3):
            counts = [await results_by_status(self.lab.session, port) for port in ports]
            total = sum(c.get("success", 0.0) for c in counts)
            if total == expected:
                break
            await asyncio.sleep(0.5 * (attempt + 1))  # a result counted just after its publish
        return total


async def wait_consuming(channel: AbstractChannel, queue: str, process: PipelineProcess) -> None:
    """Until ``queue`` has a consumer (the pipeline is up), or BenchmarkError."""
    timeout = 30.0
    deadline = time.monotonic() + timeout
    underlay = await channel.get_underlay_channel()
    while (await underlay.queue_declare(queue, passive=True)).consumer_count == 0:
        if process.process.returncode is not None or time.monotonic() > deadline:
            raise BenchmarkError(f"{queue}: no consumer after {timeout:g} s")
        await asyncio.sleep(0.1)


def cpu_delta(start: Snapshot, end: Snapshot, roles: list[str]) -> float:
    return sum(end.cpu[role] - start.cpu[role] for role in roles)


async def declare(
    channel: AbstractChannel, names: Names, spec: RunSpec, amqp_url: str
) -> AbstractQueue:
    """The request queue exactly as the worker declares it (quorum, same arguments)."""
    arguments = Topology(names.settings(amqp_url, spec.prefetch)).request_queue_arguments()
    await channel.declare_queue(names.request_queue, durable=True, arguments=arguments)
    return await channel.declare_queue(names.reply_queue, durable=True)


async def delete_broker_objects(connection: AbstractConnection, names: Names) -> None:
    async with connection.channel() as channel:
        for queue in names.queues():
            await channel.queue_delete(queue)
        await channel.exchange_delete(names.results_exchange)


def sweep_leftovers(suffixes: list[str]) -> dict[str, list[str]]:
    """Queues and exchanges these runs left behind (after a failure or a broker restart)."""
    leftovers: dict[str, list[str]] = {}
    for kind in ("queues", "exchanges"):
        try:
            listed = subprocess.run(
                ["rabbitmqctl", f"list_{kind}", "name", "-q", "--no-table-headers"],
                capture_output=True,
                text=True,
                check=False,
            )
        except FileNotFoundError:  # a remote broker: nothing to list from here
            return {}
        names = [n for n in listed.stdout.split() if n.startswith("bench.")]
        leftovers[kind] = [n for n in names if any(s in n for s in suffixes)]
    return leftovers


async def delete_leftovers(connection: AbstractConnection, leftovers: dict[str, list[str]]) -> None:
    async with connection.channel() as channel:
        for queue in leftovers.get("queues", []):
            await channel.queue_delete(queue)
        for exchange in leftovers.get("exchanges", []):
            await channel.exchange_delete(exchange)
